// The training run as users run it (docs/DESIGN.md §2): dataset → examples → batches → LoRA steps,
// with logging (terminal + OUTPUT_DIR/metrics.jsonl), eval loss, before/after answers
// (samples.jsonl), checkpoints with exact resume, and the final adapter in OUTPUT_DIR/final/.
//
// Run folder (docs/DESIGN.md §7), through track::RunStore: config.yaml (resolved settings),
// config.json, env.json, status.json, metrics.jsonl (one JSON object per log/eval event),
// samples.jsonl (answers to the eval prompts with the ground truth), system.jsonl; plus
// train.log (the terminal lines), train_results.json (the end-of-run summary), checkpoint-N/
// and final/.
//
// Interruption: SIGINT or SIGTERM during the steps finishes the current optimizer step,
// writes checkpoint-{step} (atomically), sets status.json to "interrupted" and returns with
// TrainResult::interrupted; a second signal ends the process at once (status.json still says
// "interrupted", at the last checkpoint). A resume drops the metrics/samples rows logged
// after the checkpoint it starts from, so no step appears twice.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lora/lora_params.h"
#include "model/model.h"
#include "train/train_config.h"

namespace lorafit {

// Generation is provided by the caller (the generate layer sits beside train, not below it):
// greedy answer ids for `prompt`, stopping at any of `eos_ids` or after max_new_tokens.
using GenerateFn = std::function<std::vector<int32_t>(const Model& m, const LoraParams* lora,
                                                      std::span<const int32_t> prompt,
                                                      const std::vector<int32_t>& eos_ids, int max_new_tokens)>;

struct SampleAnswer {
  int64_t step = 0;
  std::string question, answer, reference;
};

struct TrainResult {
  fs::path final_dir;
  int64_t steps = 0, start_step = 0;
  double first_loss = 0, last_loss = 0;  // first and last logged loss
  std::vector<std::pair<int64_t, double>> loss_curve;  // (step, logged loss)
  double eval_loss_before = -1, eval_loss_after = -1;  // −1: no eval split
  std::vector<SampleAnswer> samples_before, samples_after;
  double seconds = 0;
  double train_loss = 0;         // mean step loss of this session (the summary's train_loss)
  int64_t trainable_params = 0;
  bool interrupted = false;      // stopped by a signal at `steps` (< total) with a checkpoint
  int stop_signal = 0;           // SIGINT or SIGTERM when interrupted
};

// Benchmark evaluation (train --eval_data), provided by the caller like generation: the
// scores of `m` with `lora` (null: the base model) as flat metrics, e.g.
// {"eval_mcq_accuracy": 41.25, "eval_mcq_n": 80}. `encode` renders a user turn through the
// run's chat template (and system prompt); `decode` turns answer ids into text.
using EvaluateFn = std::function<std::vector<std::pair<std::string, double>>(
    const Model& m, const LoraParams* lora, const std::function<std::vector<int32_t>(const std::string&)>& encode,
    const std::function<std::string(const std::vector<int32_t>&)>& decode, const std::vector<int32_t>& eos_ids)>;

struct TrainHooks {
  GenerateFn generate;                         // null: no samples
  EvaluateFn evaluate;                         // null: eval_data is refused
  std::function<void(const std::string&)> print;  // terminal lines (null: stdout)
  bool eval_before = false;                    // eval loss before the first step too (demo)
  std::string lorafit_version;                 // for the run folder's env.json
  bool progress = true;                        // live bar on a terminal / plain lines in logs
  std::string progress_label = "train";
  std::string resume_command;                  // printed after an interruption ("" : generic hint)
};

// Runs (or resumes) a training run. Throws Error for bad settings, data or model, for an
// output_dir that already holds a run (unless overwrite_output_dir or resume), and when the
// memory plan does not fit the RAM available.
TrainResult run_training(const TrainSettings& s, const TrainHooks& hooks = {});

// The pre-flight memory plan, printed before the weights load.
struct MemoryPlan {
  double weights = 0, lora_optimizer = 0, activations = 0, workspace = 0;  // bytes
  // QLoRA (part of weights): the 4-bit projections (codes + absmax) and the one layer they are
  // dequantized into at a time; 0 without quantization.
  double quantized = 0, dequant_scratch = 0;
  double total() const { return weights + lora_optimizer + activations + workspace; }
  double available = -1;  // bytes this process may take (sys::memory_budget), −1 when unknown
  std::string available_source;  // which limit that is: "MemAvailable in /proc/meminfo", "cgroup v2 ..."
};
// act: the run's activation dtype (2 bytes per activation for BF16, 4 for F32); a BF16 run
// from an F32/F16 checkpoint also holds the weights rounded to bf16. With quantization_bit 4
// the weights are counted from config.json alone (so a folder with only config.json plans too):
// the projections at their 4-bit size, the rest at the run's weight dtype, plus one layer's
// dequantization scratch.
MemoryPlan plan_memory(const fs::path& model_dir, const TrainSettings& s, int64_t longest_batch_T, DType act);

}  // namespace lorafit
