// lorafit train: LoRA fine-tuning of a Hugging Face model folder on a dataset.
//   lorafit train --model DIR --data FILE.jsonl --output_dir DIR [--key value ...]
//   lorafit train --config run.yaml [--key value ...]   (flags win over the file)
//   --dashboard [--dashboard_host H] [--dashboard_port P]: serve the live dashboard of the
//   runs folder (the output_dir's parent) beside training and print its URL.
// Every key of the settings table (docs/DESIGN.md §8) is usable as a flag; see --help.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/command.h"
#include "cli/train_common.h"
#include "eval/evaluate.h"
#include "formats/model_config.h"
#include "generate/generate.h"
#include "lora/lora_config.h"
#include "track/dashboard.h"
#include "train/train_config.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/parse.h"
#include "util/signals.h"
#include "util/suggest.h"
#include "util/sysinfo.h"

namespace lorafit::cli {

EvaluateFn benchmark_eval_fn(const TrainSettings& s) {
  if (s.eval_data.empty()) return {};
  eval::Settings es;
  es.task = eval::parse_task(s.eval_task, "--eval_task");
  es.max_new_tokens = static_cast<int>(s.eval_max_new_tokens);
  es.batch_size = static_cast<int>(std::max<int64_t>(1, s.per_device_eval_batch_size * 8));
  auto items = std::make_shared<std::vector<eval::Item>>(eval::load_items(s.eval_data, es.task));  // bad rows fail now
  if (s.eval_limit > 0 && static_cast<int64_t>(items->size()) > s.eval_limit) items->resize(static_cast<size_t>(s.eval_limit));
  return [items, es](const Model& m, const LoraParams* lora, const std::function<std::vector<int32_t>(const std::string&)>& encode,
                     const std::function<std::string(const std::vector<int32_t>&)>& decode, const std::vector<int32_t>& eos) {
    eval::Generation g{&m, lora, encode, decode, eos};
    const auto rows = eval::run(g, *items, es);
    const auto sum = eval::summarize(es.task, rows);
    const std::string pre = fmt::format("eval_{}_", eval::task_name(es.task));
    std::vector<std::pair<std::string, double>> out;
    if (es.task == eval::Task::Mcq) {
      out.emplace_back(pre + "accuracy", sum["accuracy"].get<double>());
      for (const auto& [src, acc] : sum["per_source"].items()) out.emplace_back(pre + "acc_" + src, acc.get<double>());
    } else {
      for (const char* k : {"rouge-1", "rouge-2", "rouge-l", "bleu-4"}) {
        std::string name = k;
        std::replace(name.begin(), name.end(), '-', '_');
        out.emplace_back(pre + name, sum[k].get<double>());
      }
    }
    int64_t truncated = 0;
    for (const auto& r : rows) truncated += r.truncated;
    out.emplace_back(pre + "n", static_cast<double>(rows.size()));
    if (truncated) out.emplace_back(pre + "truncated_n", static_cast<double>(truncated));
    return out;
  };
}

GenerateFn greedy_generate_fn() {
  return [](const Model& m, const LoraParams* lora, std::span<const int32_t> prompt, const std::vector<int32_t>& eos,
            int max_new) {
    const int64_t cap = std::min<int64_t>(context_length(m.config()), static_cast<int64_t>(prompt.size()) + max_new);
    if (static_cast<int64_t>(prompt.size()) >= cap) return std::vector<int32_t>{};  // no room to answer
    Generator g(m, cap, lora);
    GenerateSettings gs;
    gs.max_new_tokens = static_cast<int>(cap - static_cast<int64_t>(prompt.size()));
    gs.eos_ids = eos;
    GenerateResult r = g.generate(prompt, gs);
    if (r.stop == StopReason::Eos && !r.ids.empty()) r.ids.pop_back();
    return r.ids;
  };
}

std::string settings_help() {
  std::string s = "Settings (YAML keys and --flags; flags win over --config FILE.yaml):\n";
  for (const SettingKey& k : setting_keys()) {
    const TrainSettings d;
    s += fmt::format("  --{:<30} {} [{}]\n", k.name, k.help, k.get(d));
  }
  return s;
}

std::string shell_quote(const std::string& a) {
  if (!a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%_+=:,./-") ==
                        std::string::npos)
    return a;
  std::string q = "'";
  for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string self_command() {
  const std::vector<std::string> argv = sys::process_command_line();
  if (!argv.empty() && argv[0].find('/') == std::string::npos) return argv[0];  // found on PATH
  const fs::path exe = sys::executable_path();
  if (!exe.empty()) return shell_quote(exe.string());
  return argv.empty() ? "lorafit" : shell_quote(fs::absolute(argv[0]).lexically_normal().string());
}

std::string resume_command() {
  std::vector<std::string> argv = sys::process_command_line();
  std::vector<std::string> out;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--resume_from_checkpoint") {
      ++i;  // its value
      continue;
    }
    if (argv[i].rfind("--resume_from_checkpoint=", 0) == 0) continue;
    out.push_back(argv[i]);
  }
  out.push_back("--resume_from_checkpoint");
  out.push_back("latest");
  std::string cmd = self_command();  // the program, then its arguments (relative paths: run from the same folder)
  for (size_t i = 1; i < out.size(); ++i) cmd += " " + shell_quote(out[i]);
  return cmd;
}

void exit_if_interrupted(const TrainResult& r) {
  if (r.interrupted) throw ExitStatus{128 + r.stop_signal};
}

namespace {

struct DashboardFlags {
  bool on = false;
  std::string host = "127.0.0.1";
  int port = 7860;
};
const std::vector<std::string> kDashboardFlags = {"dashboard", "dashboard_host", "dashboard_port"};

// After training the dashboard keeps serving the finished run until Ctrl-C, so the last
// charts and samples stay readable; says so, and says when it stopped.
void serve_until_interrupt(const track::DashboardServer& server) {
  std::printf("training finished; the dashboard keeps serving at %s (Ctrl-C to stop)\n", server.url().c_str());
  std::fflush(stdout);
  InterruptScope scope;
  while (!interrupt_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::printf("dashboard stopped\n");
  std::fflush(stdout);
}

// Takes the dashboard flags out of `args` (they are not training settings).
DashboardFlags take_dashboard_flags(std::vector<std::string>& args) {
  DashboardFlags d;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string a = args[i].starts_with("--") ? "--" + snake_case(args[i].substr(2)) : args[i];  // kebab alias
    auto value = [&](const char* name) {
      if (i + 1 >= args.size()) throw Error("{} needs a value", name);
      return args[++i];
    };
    if (a == "--dashboard") {
      d.on = true;
    } else if (a == "--dashboard_host") {
      d.host = value("--dashboard_host");
    } else if (a == "--dashboard_port") {
      d.port = static_cast<int>(parse_int_in(value("--dashboard_port"), "--dashboard_port", 0, 65535));
    } else {
      rest.push_back(args[i]);
    }
  }
  args = std::move(rest);
  return d;
}

// Names of lora_target that match no module are warned about before any weight is read
// (the trainer stops when none matches).
void warn_lora_target(const TrainSettings& s) {
  const fs::path cfg = fs::path(s.model_name_or_path) / "config.json";
  if (!s.adapter_name_or_path.empty() || !fs::exists(cfg)) return;  // the trainer reports a bad model
  for (const std::string& w : lora_target_warnings(parse_lora_target(s.lora_target), load_model_config(cfg)))
    std::fprintf(stderr, "lorafit: warning: %s\n", w.c_str());
}

void setup(CLI::App& sub) {
  // Settings are parsed by our own table (every key a flag, unknown keys with the closest
  // name), so CLI11 passes everything through.
  sub.allow_extras();
  sub.footer(settings_help());
  sub.callback([&sub] {
    std::vector<std::string> args = sub.remaining();
    const DashboardFlags dash = take_dashboard_flags(args);
    const TrainSettings s = parse_train_args(args, kDashboardFlags);
    std::unique_ptr<track::DashboardServer> server;
    if (dash.on) {
      fs::path runs = fs::absolute(s.output_dir).parent_path();
      fs::create_directories(runs);
      track::DashboardOptions o;
      o.runs_dir = runs;
      o.host = dash.host;
      o.port = dash.port;
      o.host_flag = "--dashboard_host";
      o.port_flag = "--dashboard_port";
      server = track::start_dashboard_background(o);
      std::printf("dashboard: %s\n", server->url().c_str());
      std::fflush(stdout);
    }
    warn_lora_target(s);
    TrainHooks hooks;
    hooks.generate = greedy_generate_fn();
    hooks.evaluate = benchmark_eval_fn(s);
    hooks.lorafit_version = LORAFIT_VERSION;
    hooks.resume_command = resume_command();
    hooks.eval_before = true;  // a step-0 eval point: the eval-loss chart starts at the untrained model
    exit_if_interrupted(run_training(s, hooks));
    if (server) serve_until_interrupt(*server);
  });
}

const bool registered = register_command("train", "LoRA fine-tuning: --model DIR --data FILE --output_dir DIR", setup);

}  // namespace

}  // namespace lorafit::cli
