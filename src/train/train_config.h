// The settings of `lorafit train` (docs/DESIGN.md §8): one flat struct whose keys carry the names
// users already type for Transformers, PEFT and LLaMA-Factory. They come from a YAML file
// (--config) and/or `--key value` flags (flags win); every key is usable as a flag. Unknown
// keys are an Error naming the closest valid key. The resolved settings are written back as
// config.yaml in the run folder.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "formats/quant4.h"
#include "tensor/dtype.h"
#include "util/file.h"

namespace lorafit {

struct TrainSettings {
  // ---- where ----
  std::string model_name_or_path;  // HF model folder
  std::string data;                // dataset file (.jsonl or a .json array)
  std::string output_dir;          // run folder: config.yaml, metrics.jsonl, checkpoint-N/, final/
  bool overwrite_output_dir = false;
  std::string resume_from_checkpoint;  // DIR or "latest"
  std::string adapter_name_or_path;    // start from this PEFT adapter instead of a fresh one
  std::string device = "cpu";

  // ---- data ----
  std::string dataset_format = "auto";  // auto | pair | alpaca | chat | sharegpt | text
  std::string columns;                  // column map "input=question,output=answer"
  std::string system;                   // fixed system prompt ("" = the template's default)
  std::string chat_template;            // `template`: a Jinja file replacing the model folder's chat template
  std::string enable_thinking;          // "" (the template's default), "true" or "false": Qwen3's switch
  bool include_reference = false;       // DISC triplet: append the `reference` statutes to the input
  bool train_on_prompt = false;         // loss on every token, not only assistant turns
  int64_t cutoff_len = 1024;
  std::string train_range;  // "5:5000" = records [5, 5000) (Python slice); "" = all not in eval
  std::string eval_range;   // "0:5"
  double val_size = 0;      // < 1: fraction, ≥ 1: count of records held out (when no eval_range)
  std::string on_bad_record = "error";  // error | skip
  std::string cache_dir;    // tokenized-dataset cache ("" = $XDG_CACHE_HOME/lorafit/tokenized)
  bool overwrite_cache = false;

  // ---- batching ----
  int64_t per_device_train_batch_size = 2;
  int64_t per_device_eval_batch_size = 2;
  int64_t gradient_accumulation_steps = 8;
  bool shuffle = true;
  bool group_by_length = false;
  bool packing = false;  // several samples per cutoff_len row, attention kept inside each sample

  // ---- optimisation ----
  double learning_rate = 1e-4;
  double num_train_epochs = 1;
  int64_t max_steps = -1;
  int64_t warmup_steps = 0;
  double warmup_ratio = 0;
  std::string lr_scheduler_type = "linear";
  double weight_decay = 0;
  double max_grad_norm = 1.0;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8;
  bool gradient_checkpointing = true;
  // Activations: true = TrainingArguments(bf16=True) (docs/precision.md), false = fp32,
  // auto = bf16 on cuda, fp32 on cpu. Resolved by train_act_dtype().
  std::string bf16 = "auto";
  int64_t seed = 42;

  // ---- LoRA ----
  int64_t lora_r = 8;
  double lora_alpha = 16;
  double lora_dropout = 0;
  std::string lora_target = "q_proj,v_proj";
  bool use_rslora = false;
  // QLoRA (LLaMA-Factory's names): 4 = the base weights quantized to 4 bits at load.
  int64_t quantization_bit = 0;             // 0: none
  std::string quantization_type = "nf4";    // nf4 | fp4
  bool double_quantization = true;          // quantize the absmax values too
  bool use_dora = false;  // PEFT use_dora: CPU backend; fp32 compute on a 4-bit base (refused otherwise)

  // ---- logging, evaluation, checkpoints ----
  int64_t logging_steps = 10;
  int64_t save_steps = 500;
  int64_t save_total_limit = -1;  // ≤ 0: keep every checkpoint
  int64_t eval_steps = 0;         // 0: eval loss only at the end
  int64_t sample_steps = 0;       // 0: samples only before training and at each epoch end
  int64_t num_samples = 3;        // eval prompts answered in samples
  int64_t max_new_tokens = 64;    // length of each sample answer
  // Benchmark evaluation during training (lorafit eval's scorers): before the first step,
  // every eval_steps and at the end, logged as eval_<task>_* metrics.
  std::string eval_data;            // "" = none; an eval set as `lorafit eval --data` reads
  std::string eval_task = "mcq";    // mcq | qa
  int64_t eval_limit = 0;           // first N rows (0: all)
  int64_t eval_max_new_tokens = 0;  // 0: the task's default (mcq 64, qa 512)
  bool quiet = false;             // no per-step terminal lines
  std::string report_to = "none";  // none | tensorboard | all (as HF; TensorBoard is the only tracker)

  // Not a setting: where each key given was set ("run.yaml:6", "--model_name_or_path"), for
  // messages about its value.
  std::map<std::string, std::string> where;
};

// report_to as validated by validate_settings: true when TensorBoard event files are written.
bool reports_to_tensorboard(const TrainSettings& s);

// One key of the table: its name, a one-line help, and text get/set.
struct SettingKey {
  std::string name;
  std::string help;
  bool is_bool = false;
  std::function<void(TrainSettings&, const std::string&)> set;  // throws Error on a bad value
  std::function<std::string(const TrainSettings&)> get;
};
const std::vector<SettingKey>& setting_keys();

// "; did you mean --x?" for an unknown key, over the settings and `extra_flags` (other flags
// of the command); "" when no name is close (util/suggest.h).
std::string setting_suggestion(const std::string& name, const std::vector<std::string>& extra_flags = {});

// Sets one key from text; `where` names the source in messages ("--lora_r", "run.yaml:3").
void apply_setting(TrainSettings& s, const std::string& key, const std::string& value, const std::string& where);

// Applies a YAML mapping of key: value (scalars; lists are joined with ',').
void apply_yaml_file(TrainSettings& s, const fs::path& path);

// Parses `--key value`, `--key=value` and bare `--bool_key`; `--config FILE` is applied first
// wherever it appears, so flags win. Keys are snake_case; kebab-case is accepted too. Throws
// Error for unknown keys, suggesting close names among the settings and `other_flags`.
TrainSettings parse_train_args(const std::vector<std::string>& args, const std::vector<std::string>& other_flags = {});

// The resolved settings as YAML (every key, table order).
std::string settings_to_yaml(const TrainSettings& s);

// The QLoRA settings, checked (quantization_bit 0 or 4, quantization_type nf4/fp4).
QuantConfig train_quant_config(const TrainSettings& s);

// Checks ranges and required keys; Error naming the key and what to do.
void validate_settings(const TrainSettings& s);

// The activation dtype of the run: bf16 true → BF16, false → F32, auto → BF16 on cuda, F32 on cpu.
DType train_act_dtype(const TrainSettings& s);

// DoRA (from --use_dora or an adapter's use_dora) needs the CPU backend, and fp32 compute on a
// 4-bit base: Error "<what>: ..." naming the setting to change otherwise.
void refuse_unsupported_dora(const TrainSettings& s, const std::string& what);

}  // namespace lorafit
