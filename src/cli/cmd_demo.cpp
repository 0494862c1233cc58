// lorafit demo: two short runs on bundled models, no download, a few minutes on a CPU.
//  Part 1, the pipeline: the reference recipe (DISC legal QA, ChatML with the legal system
//   prompt, LoRA r 64 / alpha 16 / dropout 0.1 on all seven projections, batch 2 × 8, linear
//   lr, cutoff 384) on a tiny RANDOM Qwen2-shaped model with the real Qwen2.5 tokenizer
//   (learning_rate 2e-3 instead of 1e-4 so that 17 steps move it). A random model learns no
//   law in minutes; this part shows that every stage runs, honestly labelled.
//  Part 2, the learning: the real pretrained stories260K model (llama2.c TinyStories) is
//   LoRA-trained on 20 short stories about a dragon named Zuzu (4 more held out for the eval
//   loss); its greedy continuations before and after, of the stories' opening and of a
//   sentence no trained story contains, show learning anyone can check by eye.
// Any `lorafit train` flag changes part 1 (--max_steps 3); --output_dir DIR moves the runs
// folder (default ./lorafit-demo: DIR/recipe and DIR/stories).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "formats/json_util.h"
#include "cli/command.h"
#include "cli/train_common.h"
#include "eval/text_metrics.h"
#include "generate/inference.h"
#include "tokenizer/jieba.h"
#include "train/demo_model.h"
#include "train/train_config.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/file.h"
#include "util/sysinfo.h"

namespace lorafit::cli {

namespace {

std::string one_line(std::string s, size_t max_bytes) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  if (s.size() <= max_bytes) return s;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
  return s.substr(0, cut) + "…";
}

// The bundled data: the source tree's tests/data, else an installed share/lorafit/data.
fs::path data_root() {
  const fs::path src = fs::path(LORAFIT_SOURCE_DIR) / "tests/data";
  if (fs::exists(src / "stories260K/model.safetensors")) return src;
  const fs::path exe = sys::executable_path();
  const fs::path installed = exe.parent_path().parent_path() / "share/lorafit/data";
  if (!exe.empty() && fs::exists(installed / "stories260K/model.safetensors")) return installed;
  throw Error("the demo's bundled data is neither in {} nor in {}; run the demo from a source build or reinstall",
              src.string(), installed.string());
}

// A folder the demo must write: created and probed; one line naming it and the way out.
void check_writable(const fs::path& dir, const std::string& how_to_move) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path probe = dir / ".lorafit-write-test";
  std::FILE* f = ec ? nullptr : std::fopen(probe.c_str(), "w");
  if (!f)
    throw Error("the demo needs to write to {} but cannot ({}); {}", dir.string(),
                ec ? ec.message() : std::string(std::strerror(errno)), how_to_move);
  std::fclose(f);
  fs::remove(probe, ec);
}

// Takes --output_dir DIR out of `args` (the demo's runs folder, not part 1's run folder).
fs::path take_runs_dir(std::vector<std::string>& args) {
  fs::path dir = "lorafit-demo";
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--output_dir" && i + 1 < args.size()) {
      dir = args[i + 1];
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i), args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
      break;
    }
  }
  return fs::absolute(dir).lexically_normal();
}

TrainResult part1_recipe(const fs::path& data, const fs::path& model_dir, const fs::path& out,
                         const std::vector<std::string>& user) {
  std::vector<std::string> a = {"--model_name_or_path", model_dir.string(),
                                "--data", (data / "disc-law/disc_law_eval_sft.jsonl").string(),
                                "--output_dir", out.string(),
                                "--overwrite_output_dir", "true",
                                "--system", "你是一个法律专家，请根据用户的问题给出专业的回答",
                                "--dataset_format", "pair",
                                "--cutoff_len", "384",
                                "--eval_range", "0:3", "--train_range", "3:300",
                                "--lora_r", "64", "--lora_alpha", "16", "--lora_dropout", "0.1",
                                "--lora_target", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
                                "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "8",
                                "--learning_rate", "2e-3", "--lr_scheduler_type", "linear", "--num_train_epochs", "1",
                                "--logging_steps", "2", "--save_steps", "100", "--gradient_checkpointing", "true",
                                "--num_samples", "3", "--max_new_tokens", "24"};
  a.insert(a.end(), user.begin(), user.end());  // the user's flags win
  TrainHooks hooks;
  hooks.generate = greedy_generate_fn();
  hooks.lorafit_version = LORAFIT_VERSION;
  hooks.eval_before = true;
  hooks.progress_label = "part 1";
  hooks.resume_command = resume_command();
  return run_training(parse_train_args(a), hooks);
}

const char* kStoriesOpening = "Once upon a time, there was a little";
const char* kHeldOutPrompt = "Tom went to the park. He saw a little dragon named";
constexpr int kStoriesHeldOut = 4;  // the first 4 stories are the held-out loss set

TrainResult part2_stories(const fs::path& data, const fs::path& out) {
  const std::vector<std::string> a = {
      "--model_name_or_path", (data / "stories260K").string(), "--data", (data / "demo/zuzu_stories.jsonl").string(),
      "--output_dir", out.string(), "--overwrite_output_dir", "true", "--dataset_format", "text",
      "--eval_range", "0:" + std::to_string(kStoriesHeldOut), "--lora_target", "all-linear", "--lora_r", "8", "--lora_alpha", "16",
      "--learning_rate", "5e-3", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
      "--num_train_epochs", "4", "--logging_steps", "1", "--save_steps", "1000", "--num_samples", "0"};
  TrainHooks hooks;
  hooks.lorafit_version = LORAFIT_VERSION;
  hooks.eval_before = true;
  hooks.progress_label = "part 2";
  hooks.resume_command = resume_command();
  return run_training(parse_train_args(a), hooks);
}

struct Continuation {
  std::string label, prompt, before, after;
  std::string reference;  // what the trained data says after the prompt; empty when held out
};

// What every trained story says after kStoriesOpening: the longest common prefix of their
// continuations (the stories from index `first_trained` on; the ones before it are held out).
std::string trained_continuation(const fs::path& stories_jsonl, size_t first_trained) {
  const std::string text = read_file(stories_jsonl);
  std::optional<std::string> common;
  size_t line_no = 0, start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line_no++ < first_trained) continue;
    std::string story = parse_json(line, stories_jsonl.string()).value("text", "");
    if (!story.starts_with(kStoriesOpening)) continue;
    story = story.substr(std::strlen(kStoriesOpening));
    if (!common) {
      common = story;
      continue;
    }
    size_t n = 0;
    while (n < common->size() && n < story.size() && (*common)[n] == story[n]) ++n;
    common->resize(n);
  }
  return common.value_or("");
}

// ROUGE-L F1 ×100 as `lorafit eval --task qa` scores an answer (LLaMA-Factory's metric).
double rouge_l(const std::string& prediction, const std::string& reference) {
  return eval::qa_scores(prediction, reference, tok::Jieba::builtin()).rougel;
}

// The mean ROUGE-L of part 1's sample answers against their references.
double mean_rouge_l(const std::vector<SampleAnswer>& answers, const std::vector<SampleAnswer>& refs) {
  if (answers.empty()) return -1;
  double sum = 0;
  for (size_t i = 0; i < answers.size() && i < refs.size(); ++i) sum += rouge_l(answers[i].answer, refs[i].reference);
  return sum / static_cast<double>(answers.size());
}

// Greedy continuations of the two prompts by the base model and with the trained adapter.
std::vector<Continuation> continuations(const fs::path& model, const fs::path& adapter,
                                        const std::string& trained_reference) {
  InferenceOptions o;
  o.model = model.string();
  o.adapters = {adapter.string()};
  o.raw = true;
  Inference inf(o);
  std::vector<Continuation> got = {{"the stories' opening (trained)", kStoriesOpening, "", "", trained_reference},
                                   {"a sentence no trained story has (held out)", kHeldOutPrompt, "", "", ""}};
  for (Continuation& c : got) {
    const std::vector<int32_t> prompt = inf.encode_prompt(c.prompt, std::nullopt);
    GenerateSettings gs;
    gs.max_new_tokens = 40;
    gs.eos_ids = inf.defaults().eos_ids;
    for (const LoraParams* lora : {static_cast<const LoraParams*>(nullptr), inf.default_adapter()}) {
      Generator g(inf.model(), static_cast<int64_t>(prompt.size()) + gs.max_new_tokens, lora);
      GenerateResult r = g.generate(prompt, gs);
      if (r.stop == StopReason::Eos && !r.ids.empty()) r.ids.pop_back();
      (lora ? c.after : c.before) = inf.tokenizer()->decode(r.ids);
    }
  }
  return got;
}

void write_continuations(const fs::path& file, const std::vector<Continuation>& cs) {
  nlohmann::ordered_json j = nlohmann::ordered_json::array();
  for (const Continuation& c : cs)
    j.push_back({{"label", c.label}, {"prompt", c.prompt}, {"before", c.before}, {"after", c.after},
                 {"reference", c.reference}});
  write_file_atomic(file, j.dump(2) + "\n");
}

std::string loss_cell(double v) { return v >= 0 ? fmt::format("{:.4f}", v) : "-"; }
std::string score_cell(double v) { return v >= 0 ? fmt::format("{:.1f}", v) : "-"; }

void print_summary(const TrainResult& r1, const TrainResult& r2, const std::vector<Continuation>& cs,
                   const fs::path& runs, const fs::path& model_dir, const fs::path& data) {
  std::printf("\n=== part 1: the recipe on a RANDOM model (a pipeline check: nothing is learned) ===\n");
  for (size_t i = 0; i < r1.samples_before.size(); ++i) {
    std::printf("Q%zu: %s\n", i + 1, one_line(r1.samples_before[i].question, 120).c_str());
    const SampleAnswer& q = r1.samples_before[i];
    std::printf("  before: %s  [ROUGE-L %.1f]\n", one_line(q.answer, 120).c_str(), rouge_l(q.answer, q.reference));
    if (i < r1.samples_after.size())
      std::printf("  after:  %s  [ROUGE-L %.1f]\n", one_line(r1.samples_after[i].answer, 120).c_str(),
                  rouge_l(r1.samples_after[i].answer, q.reference));
    std::printf("  truth:  %s\n", one_line(r1.samples_before[i].reference, 120).c_str());
  }
  std::printf("\n=== part 2: stories260K (a real 260K-parameter TinyStories model) learns a new character ===\n");
  std::printf("trained: 20 stories about a little dragon named Zuzu who bakes cakes; held out: 4 more for the loss,\n"
              "and the second prompt below, which no trained story contains. This is memorisation of a tiny\n"
              "data set by a tiny model: the same mechanism that adapts a real model to a field.\n");
  for (const Continuation& c : cs) {
    std::printf("\nprompt, %s: \"%s\"\n", c.label.c_str(), c.prompt.c_str());
    if (c.reference.empty()) {
      std::printf("  before: %s\n", one_line(c.before, 150).c_str());
      std::printf("  after:  %s\n", one_line(c.after, 150).c_str());
    } else {
      std::printf("  before: %s  [ROUGE-L %.1f]\n", one_line(c.before, 150).c_str(), rouge_l(c.before, c.reference));
      std::printf("  after:  %s  [ROUGE-L %.1f]\n", one_line(c.after, 150).c_str(), rouge_l(c.after, c.reference));
      std::printf("  trained text: %s\n", one_line(c.reference, 150).c_str());
    }
  }
  std::printf("\n=== before -> after ===\n");
  std::printf("%-44s %10s %10s\n", "", "before", "after");
  std::printf("%-44s %10s %10s\n", "part 1 training loss (first/last log)", loss_cell(r1.first_loss).c_str(),
              loss_cell(r1.last_loss).c_str());
  std::printf("%-44s %10s %10s\n", "part 1 held-out loss (3 questions)", loss_cell(r1.eval_loss_before).c_str(),
              loss_cell(r1.eval_loss_after).c_str());
  std::printf("%-44s %10s %10s\n", "part 1 answers' ROUGE-L vs truth (mean)",
              score_cell(mean_rouge_l(r1.samples_before, r1.samples_before)).c_str(),
              score_cell(mean_rouge_l(r1.samples_after, r1.samples_before)).c_str());
  std::printf("%-44s %10s %10s\n", "part 2 training loss (step 1 / last step)", loss_cell(r2.first_loss).c_str(),
              loss_cell(r2.last_loss).c_str());
  std::printf("%-44s %10s %10s\n", "part 2 held-out loss (4 stories)", loss_cell(r2.eval_loss_before).c_str(),
              loss_cell(r2.eval_loss_after).c_str());
  const Continuation& opening = cs.front();
  std::printf("%-44s %10s %10s\n", "part 2 opening's ROUGE-L vs trained text", score_cell(rouge_l(opening.before, opening.reference)).c_str(),
              score_cell(rouge_l(opening.after, opening.reference)).c_str());
  std::printf("(ROUGE-L: F1 x100 over jieba words, as `lorafit eval --task qa` and LLaMA-Factory score answers;\n"
              " part 1's small change is the random model repeating a common token such as '，', not law)\n");
  const std::string bin = self_command();
  std::printf("\nruns folder: %s (each run: config.yaml, metrics.jsonl, samples.jsonl, train.log, final/)\n",
              runs.string().c_str());
  std::printf("next steps (each works as printed):\n");
  std::printf("  watch the runs:  %s dashboard %s   (then open http://127.0.0.1:7860/)\n", bin.c_str(),
              shell_quote(runs.string()).c_str());
  std::printf("  try part 2:      %s generate --model %s --adapter %s --raw --max_new_tokens 40 --prompt %s\n",
              bin.c_str(), shell_quote((data / "stories260K").string()).c_str(),
              shell_quote((runs / "stories/final").string()).c_str(), shell_quote(kHeldOutPrompt).c_str());
  std::printf("  chat (part 1):   %s chat --model %s --adapter %s\n", bin.c_str(),
              shell_quote(model_dir.string()).c_str(), shell_quote(fs::absolute(r1.final_dir).string()).c_str());
  std::printf("a real run (Qwen2.5-7B-Instruct on DISC-Law-SFT): README.md, \"From the demo to a real run\"\n");
}

void run_demo(std::vector<std::string> args) {
  const fs::path data = data_root();
  const fs::path runs = take_runs_dir(args);
  const fs::path model_dir = default_demo_model_dir();
  check_writable(runs, "run it from a writable folder or pass --output_dir DIR");
  check_writable(model_dir.parent_path(),
                 "set XDG_CACHE_HOME to a writable folder (the demo model and tokenized data are cached there)");
  std::printf("lorafit demo: two short runs on bundled models, no download.\n"
              "  part 1: the DISC-Law recipe on a tiny model with RANDOM weights (hidden 64, 2 layers, the real Qwen2.5\n"
              "          tokenizer): every stage of a real run, but a random model learns no law in minutes, so its\n"
              "          answers stay gibberish (learning_rate 2e-3 instead of 1e-4 so that 17 steps move it).\n"
              "  part 2: a real pretrained model (stories260K) learns a new character from 20 short stories; its\n"
              "          continuations before and after show the learning.\n\n");
  if (ensure_demo_model(model_dir, data / "qwen-tokenizer/qwen2.5"))
    std::printf("created the demo model in %s\n", model_dir.string().c_str());
  else
    std::printf("demo model: %s\n", model_dir.string().c_str());

  const TrainResult r1 = part1_recipe(data, model_dir, runs / "recipe", args);
  exit_if_interrupted(r1);
  std::printf("\n");
  const TrainResult r2 = part2_stories(data, runs / "stories");
  exit_if_interrupted(r2);
  const std::vector<Continuation> cs = continuations(data / "stories260K", r2.final_dir,
                                                     trained_continuation(data / "demo/zuzu_stories.jsonl", kStoriesHeldOut));
  write_continuations(runs / "stories/continuations.json", cs);
  print_summary(r1, r2, cs, runs, model_dir, data);
}

void setup(CLI::App& sub) {
  sub.allow_extras();
  sub.footer(
      "Any `lorafit train` setting changes part 1 (the recipe), e.g. --max_steps 3; --output_dir DIR moves the runs "
      "folder (default ./lorafit-demo).");
  sub.callback([&sub] { run_demo(sub.remaining()); });
}

const bool registered = register_command(
    "demo", "two short runs on bundled models: the legal recipe's pipeline, and a real model learning (CPU)", setup);

}  // namespace

}  // namespace lorafit::cli
