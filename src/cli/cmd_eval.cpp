// lorafit eval: answer an evaluation set and score it, for the base model and each adapter.
//   lorafit eval --model DIR --adapter base --adapter RUN/adapter --data tests/data/disc-law/eval/objective --task mcq
//   lorafit eval --data qa.json --task qa --predictions preds.jsonl --json     (score given answers, no model)
// Prints a table (one column per model), --json prints the summary object (one per model
// under its name when several), --output_dir writes eval_results.json and predictions.jsonl.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/gen_flags.h"
#include "eval/evaluate.h"
#include "track/progress.h"
#include "util/error.h"
#include "util/file.h"

namespace lorafit::cli {

namespace {

using nlohmann::ordered_json;

struct EvalOptions {
  InferenceOptions inf;
  std::string data, task = "mcq", output_dir, predictions;
  std::optional<std::string> system;
  int max_new_tokens = 0, batch_size = 16, num_few_shot = 4;
  int64_t limit = 0;
  bool json = false;
};

struct ModelResult {
  std::string name;
  std::vector<eval::Scored> rows;
  ordered_json summary;
};

std::string dump(const ordered_json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string table(eval::Task task, const std::vector<ModelResult>& res) {
  std::vector<std::string> keys;  // row labels
  if (task == eval::Task::Mcq) {
    for (const auto& [k, v] : res.front().summary["per_source"].items()) keys.push_back(k);
    keys.push_back("accuracy");
  } else {
    keys = {"rouge-1", "rouge-2", "rouge-l", "bleu-4"};
  }
  size_t w0 = 10;
  for (const auto& k : keys) w0 = std::max(w0, k.size());
  std::vector<size_t> w;  // column widths: the model names
  for (const auto& r : res) w.push_back(std::max<size_t>(8, r.name.size()));
  std::string out = fmt::format("{:<{}}", task == eval::Task::Mcq ? "source" : "metric", w0);
  for (size_t c = 0; c < res.size(); ++c) out += fmt::format("  {:>{}}", res[c].name, w[c]);
  out += "\n";
  for (const auto& k : keys) {
    out += fmt::format("{:<{}}", k == "accuracy" ? "mean" : k, w0);
    for (size_t c = 0; c < res.size(); ++c) {
      const ordered_json& s = res[c].summary;
      const ordered_json* v = k == "accuracy" || task == eval::Task::Qa ? &s[k] : &s["per_source"][k];
      out += v->is_number() ? fmt::format("  {:>{}.2f}", v->get<double>(), w[c]) : fmt::format("  {:>{}}", "-", w[c]);
    }
    out += "\n";
  }
  out += fmt::format("{:<{}}", "n", w0);
  for (size_t c = 0; c < res.size(); ++c) out += fmt::format("  {:>{}}", res[c].summary["n"].get<int64_t>(), w[c]);
  out += "\n";
  return out;
}

std::vector<ModelResult> generate_all(EvalOptions& o, eval::Task task, const std::vector<eval::Item>& items,
                                      int64_t& truncated) {
  // --adapter base is the model without an adapter; the rest are adapter folders. Models are
  // evaluated in the order given; no --adapter: the base model alone.
  std::vector<std::string> order = o.inf.adapters;
  if (order.empty()) order.push_back("base");
  o.inf.adapters.clear();
  for (const auto& a : order)
    if (a != "base") o.inf.adapters.push_back(a);
  if (o.inf.model.empty() && o.inf.adapters.empty())
    throw Error("eval: give the model with --model DIR (or an adapter folder with --adapter DIR)");
  Inference inf(o.inf);
  const Tokenizer* tok = inf.tokenizer();
  if (!tok) throw Error("{}: no tokenizer.json; eval needs the tokenizer", inf.model().dir().string());
  const auto names = inf.adapter_names();  // the adapter folders' names, in --adapter order

  eval::Generation g;
  g.model = &inf.model();
  g.encode = [&](const std::string& text) { return inf.encode_prompt(text, o.system); };
  g.decode = [&](const std::vector<int32_t>& ids) { return tok->decode(ids, /*skip_special=*/true); };
  g.eos_ids = inf.defaults().eos_ids;
  eval::Settings s;
  s.task = task;
  s.max_new_tokens = o.max_new_tokens;
  s.batch_size = o.batch_size;
  s.num_few_shot = o.num_few_shot;

  std::vector<ModelResult> res;
  size_t next = 0;
  for (const auto& a : order) {
    ModelResult r;
    r.name = a == "base" ? "base" : names.at(next++);
    g.lora = a == "base" ? nullptr : inf.adapter(r.name);
    track::Progress bar("eval " + r.name, static_cast<int64_t>(items.size()));
    r.rows = eval::run(g, items, s, [&](size_t done) { bar.update(static_cast<int64_t>(done)); });
    bar.finish();
    r.summary = eval::summarize(task, r.rows);
    res.push_back(std::move(r));
  }
  truncated = 0;
  for (const auto& row : res.front().rows) truncated += row.truncated;
  return res;
}

std::vector<ModelResult> from_predictions(const EvalOptions& o, eval::Task task) {
  std::vector<ModelResult> res;
  for (auto& [model, rows] : eval::load_predictions(o.predictions, task)) {
    ModelResult r;
    r.name = model.empty() ? "predictions" : model;
    r.rows = std::move(rows);
    if (o.limit > 0 && static_cast<int64_t>(r.rows.size()) > o.limit) r.rows.resize(static_cast<size_t>(o.limit));
    r.summary = eval::summarize(task, r.rows);
    res.push_back(std::move(r));
  }
  return res;
}

void write_outputs(const EvalOptions& o, eval::Task task, const std::vector<ModelResult>& res, int64_t truncated) {
  const fs::path dir(o.output_dir);
  fs::create_directories(dir);
  ordered_json j;
  j["task"] = eval::task_name(task);
  j["data"] = o.predictions.empty() ? o.data : o.predictions;
  j["model"] = o.inf.model;
  j["n"] = res.front().rows.size();
  j["truncated"] = truncated;
  j["settings"] = {{"max_new_tokens", o.max_new_tokens > 0 ? o.max_new_tokens : eval::default_max_new_tokens(task)},
                   {"batch_size", o.batch_size},
                   {"num_few_shot", task == eval::Task::Mcq ? o.num_few_shot : 0},
                   {"decoding", "greedy"},
                   {"limit", o.limit}};
  j["models"] = ordered_json::array();
  for (const auto& r : res) j["models"].push_back(r.name);
  j["results"] = ordered_json::object();
  for (const auto& r : res) j["results"][r.name] = r.summary;
  std::string lines;
  for (const auto& r : res)
    for (const auto& row : r.rows) lines += dump(eval::prediction_json(task, r.name, row)) + "\n";
  write_file_atomic(dir / "predictions.jsonl", lines);
  write_file_atomic(dir / "eval_results.json", dump(j, 2) + "\n");  // last: its presence means complete
}

void run_eval(EvalOptions& o) {
  const eval::Task task = eval::parse_task(o.task, "--task");
  if (o.limit < 0) throw Error("--limit is {}; give a positive number of rows (0: all)", o.limit);
  std::vector<ModelResult> res;
  int64_t truncated = 0;
  if (!o.predictions.empty()) {
    res = from_predictions(o, task);
  } else {
    if (o.data.empty()) throw Error("eval: give the evaluation set with --data FILE (or --predictions FILE.jsonl)");
    std::vector<eval::Item> items = eval::load_items(o.data, task);
    if (o.limit > 0 && static_cast<int64_t>(items.size()) > o.limit) items.resize(static_cast<size_t>(o.limit));
    res = generate_all(o, task, items, truncated);
  }
  if (truncated > 0)
    std::fprintf(stderr, "lorafit: warning: %lld of %zu prompts were longer than the context allows and lost their "
                 "first tokens (counted as \"truncated\" in eval_results.json)\n",
                 static_cast<long long>(truncated), res.front().rows.size());
  if (!o.output_dir.empty()) write_outputs(o, task, res, truncated);
  if (o.json) {
    ordered_json out;
    if (res.size() == 1) {
      out = res.front().summary;
    } else {
      for (const auto& r : res) out[r.name] = r.summary;
    }
    std::printf("%s\n", dump(out).c_str());
  } else {
    std::printf("%s", table(task, res).c_str());
    if (!o.output_dir.empty()) std::printf("results: %s\n", (fs::path(o.output_dir) / "eval_results.json").c_str());
  }
}

void setup(CLI::App& sub) {
  auto o = std::make_shared<EvalOptions>();
  sub.add_option("--model", o->inf.model, "Hugging Face model folder (default: the first adapter's base model)");
  sub.add_option("--adapter", o->inf.adapters, "PEFT adapter folder, or base (the model without one); repeat to "
                                               "compare several side by side");
  sub.add_option("--data", o->data, "evaluation set: DISC-Law-Eval CSV(s) or a folder of them (mcq), the QA JSON list, "
                                    "or JSONL {\"input\", \"output\", \"source\"?}");
  sub.add_option("--task", o->task, "mcq (DISC-Law-Eval multiple choice, accuracy) or qa (ROUGE-1/2/L, BLEU-4)")
      ->capture_default_str();
  sub.add_option("--predictions", o->predictions, "score these predictions instead of generating: JSONL rows "
                                                  "{\"id\", \"prediction\", \"reference\", \"source\"?}");
  sub.add_option("--max_new_tokens", o->max_new_tokens, "most tokens per answer (default: 64 for mcq, 512 for qa)");
  sub.add_option("--batch_size", o->batch_size, "answers generated together")->capture_default_str();
  sub.add_option("--limit", o->limit, "only the first N rows (a quick look)");
  sub.add_option("--num_few_shot", o->num_few_shot, "examples in the MCQ prompt (official default 4, at most 9)")
      ->capture_default_str();
  sub.add_option("--system", o->system, "system prompt for the chat template");
  sub.add_flag("--raw", o->inf.raw, "no chat template: the prompt text goes to the model as it is");
  sub.add_option("--device", o->inf.device, "cpu or cuda")->capture_default_str();
  add_quant_flags(sub, o->inf.quant);
  sub.add_flag("--json", o->json, "print the summary as one JSON object (one per model under its name when several)");
  sub.add_option("--output_dir", o->output_dir, "write eval_results.json and predictions.jsonl here");
  sub.callback([o] { run_eval(*o); });
}

const bool registered = register_command("eval", "answer an evaluation set and score it (base vs adapters)", setup);

}  // namespace

}  // namespace lorafit::cli
