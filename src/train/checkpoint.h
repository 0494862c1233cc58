// Checkpoints (docs/DESIGN.md §7): OUTPUT_DIR/checkpoint-{step}/ is a self-contained adapter folder
//   adapter_config.json, adapter_model.safetensors   (PEFT loads these)
//   tokenizer.json, tokenizer_config.json, ...        (copied from the base model folder)
//   lorafit_base_model.json                            (base model path + fingerprint)
// plus what exact resume needs:
//   optimizer.safetensors  (Adam m and v over the flat LoRA buffer, F32)
//   trainer_state.json     (step, epoch position, seed, schedule, logging accumulators)
// Writes go to checkpoint-{step}.tmp/ (every file fsynced), then one rename, so a run killed
// at any moment leaves earlier checkpoints intact and never a half-written checkpoint-N/.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lora/lora_params.h"
#include "util/file.h"

namespace lorafit {

struct TrainerState {
  int64_t global_step = 0;   // optimizer steps done
  int64_t total_steps = 0;   // of the whole run
  int64_t steps_per_epoch = 0;
  uint64_t seed = 42;        // shuffle per epoch and dropout derive from (seed, epoch/step)
  std::string lr_scheduler_type;
  int64_t warmup_steps = 0;
  double learning_rate = 0;
  int64_t num_examples = 0;  // training examples (must match on resume)
  // Logging window since the last log line (so the first log after a resume is the same).
  double log_loss_sum = 0;
  int64_t log_loss_count = 0;
  double last_loss = 0;
  std::string settings_hash;  // settings that must not change across a resume
};

// The base model's identity for the adapter folder: FNV-1a-64 over config.json and every
// safetensors header (names, shapes, dtypes, offsets), not the whole weights (fast).
std::string base_model_fingerprint(const fs::path& model_dir);

struct CheckpointInfo {
  std::string base_model_path;  // written into adapter_config.json and lorafit_base_model.json
  fs::path model_dir;           // where the tokenizer files are copied from
  std::string chat_template;    // the template the run trains with: saved as chat_template.jinja ("" = none)
  std::string chat_template_from;       // its file, recorded in lorafit_base_model.json
  std::optional<bool> enable_thinking;  // recorded there too; chat/generate use it by default
  nlohmann::ordered_json quantization;  // the 4-bit base ({bits, quant_type, double_quant, source}), null for none
};

// A self-contained adapter folder (no optimizer state), written atomically as dir.
void save_adapter_folder(const fs::path& dir, const LoraParams& lora, const CheckpointInfo& info);
// The same plus optimizer.safetensors and trainer_state.json.
void save_checkpoint(const fs::path& dir, const LoraParams& lora, Backend& be, const CheckpointInfo& info,
                     const TrainerState& st);

// Restores A/B, Adam m/v and the state from a checkpoint folder. Error naming the file when
// something is missing or does not match the current LoRA table.
TrainerState load_checkpoint(const fs::path& dir, LoraParams& lora, Backend& be);

// checkpoint-N folders of `output_dir` (complete ones only: no .tmp), sorted by N.
std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& output_dir);
// Removes the oldest checkpoints so that at most `limit` remain (limit ≤ 0: keep all).
void prune_checkpoints(const fs::path& output_dir, int64_t limit);

}  // namespace lorafit
