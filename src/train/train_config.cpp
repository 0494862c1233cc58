#include "train/train_config.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "util/error.h"
#include "util/one_line.h"
#include "util/parse.h"
#include "util/suggest.h"

namespace lorafit {

namespace {

// "a, b,c" → {"a", "b", "c"} (YAML lists arrive joined with ',').
std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t a = 0;
  while (a <= s.size()) {
    size_t b = std::min(s.find(',', a), s.size());
    std::string item = s.substr(a, b - a);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) out.push_back(item);
    a = b + 1;
  }
  return out;
}

std::string fmt_double(double x) { return fmt::format("{}", x); }

template <class T>
SettingKey key_of(const char* name, T TrainSettings::*member, const char* help) {
  SettingKey k;
  k.name = name;
  k.help = help;
  if constexpr (std::is_same_v<T, bool>) {
    k.is_bool = true;
    k.set = [member, name](TrainSettings& s, const std::string& v) { s.*member = parse_bool(v, name); };
    k.get = [member](const TrainSettings& s) { return std::string(s.*member ? "true" : "false"); };
  } else if constexpr (std::is_same_v<T, int64_t>) {
    k.set = [member, name](TrainSettings& s, const std::string& v) { s.*member = parse_int(v, name); };
    k.get = [member](const TrainSettings& s) { return std::to_string(s.*member); };
  } else if constexpr (std::is_same_v<T, double>) {
    k.set = [member, name](TrainSettings& s, const std::string& v) { s.*member = parse_double(v, name); };
    k.get = [member](const TrainSettings& s) { return fmt_double(s.*member); };
  } else {
    k.set = [member](TrainSettings& s, const std::string& v) { s.*member = v; };
    k.get = [member](const TrainSettings& s) { return s.*member; };
  }
  return k;
}

// bf16: a boolean (a bare --bf16 is true) that may also be auto, the default.
SettingKey bf16_key() {
  SettingKey k;
  k.name = "bf16";
  k.help = "bf16 mixed precision as HF bf16=True: true, false, auto (bf16 on cuda, fp32 on cpu)";
  k.is_bool = true;
  k.set = [](TrainSettings& s, const std::string& v) {
    if (v == "auto")
      s.bf16.assign("auto");
    else
      s.bf16.assign(parse_bool(v, "bf16 (true, false or auto)") ? "true" : "false");
  };
  k.get = [](const TrainSettings& s) { return s.bf16; };
  return k;
}

// Aliases people type from other tools; they map to our names.
std::string canonical(const std::string& key_in) {
  const std::string key = snake_case(key_in);  // kebab-case is an alias of every key
  if (key == "model") return "model_name_or_path";
  if (key == "dataset" || key == "train_file") return "data";
  if (key == "lora_rank") return "lora_r";
  if (key == "target_modules") return "lora_target";
  return key;
}

}  // namespace

const std::vector<SettingKey>& setting_keys() {
  using S = TrainSettings;
  static const std::vector<SettingKey> keys = {
      key_of("model_name_or_path", &S::model_name_or_path, "Hugging Face model folder (alias --model)"),
      key_of("data", &S::data, "dataset: .jsonl or a .json array (alias --dataset)"),
      key_of("output_dir", &S::output_dir, "run folder: config.yaml, metrics.jsonl, checkpoint-N/, final/"),
      key_of("overwrite_output_dir", &S::overwrite_output_dir, "reuse an output_dir that already holds a run"),
      key_of("resume_from_checkpoint", &S::resume_from_checkpoint, "checkpoint folder or 'latest'"),
      key_of("adapter_name_or_path", &S::adapter_name_or_path, "start from this PEFT adapter"),
      key_of("device", &S::device, "cpu or cuda"),
      key_of("dataset_format", &S::dataset_format, "auto, pair, alpaca, chat, sharegpt or text"),
      key_of("columns", &S::columns, "column map, e.g. input=question,output=answer"),
      key_of("system", &S::system, "fixed system prompt"),
      key_of("template", &S::chat_template, "Jinja chat template file (default: the model folder's); saved in every "
                                            "checkpoint and adapter"),
      key_of("enable_thinking", &S::enable_thinking, "true or false: the template variable (Qwen3 thinking); "
                                                     "recorded in adapters, used by chat/generate"),
      key_of("include_reference", &S::include_reference, "append a record's `reference` to its input"),
      key_of("train_on_prompt", &S::train_on_prompt, "compute the loss on prompt tokens too"),
      key_of("cutoff_len", &S::cutoff_len, "truncate samples to this many tokens"),
      key_of("train_range", &S::train_range, "records used for training, Python slice a:b"),
      key_of("eval_range", &S::eval_range, "records held out for eval and samples, a:b"),
      key_of("val_size", &S::val_size, "held-out fraction (<1) or count (>=1) when no eval_range"),
      key_of("on_bad_record", &S::on_bad_record, "error or skip"),
      key_of("cache_dir", &S::cache_dir, "tokenized-dataset cache folder"),
      key_of("overwrite_cache", &S::overwrite_cache, "re-tokenize even when cached"),
      key_of("per_device_train_batch_size", &S::per_device_train_batch_size, "samples per micro-batch"),
      key_of("per_device_eval_batch_size", &S::per_device_eval_batch_size, "samples per eval batch"),
      key_of("gradient_accumulation_steps", &S::gradient_accumulation_steps, "micro-batches per step"),
      key_of("shuffle", &S::shuffle, "seeded shuffle per epoch (false keeps file order)"),
      key_of("group_by_length", &S::group_by_length, "batch samples of similar length"),
      key_of("packing", &S::packing, "pack samples into cutoff_len rows (attention stays inside each sample)"),
      key_of("learning_rate", &S::learning_rate, "peak learning rate"),
      key_of("num_train_epochs", &S::num_train_epochs, "epochs"),
      key_of("max_steps", &S::max_steps, "optimizer steps (overrides epochs when > 0)"),
      key_of("warmup_steps", &S::warmup_steps, "warmup steps"),
      key_of("warmup_ratio", &S::warmup_ratio, "warmup as a fraction of the steps"),
      key_of("lr_scheduler_type", &S::lr_scheduler_type, "linear, cosine, constant, constant_with_warmup"),
      key_of("weight_decay", &S::weight_decay, "AdamW weight decay"),
      key_of("max_grad_norm", &S::max_grad_norm, "gradient clipping norm (0: none)"),
      key_of("adam_beta1", &S::adam_beta1, "AdamW beta1"),
      key_of("adam_beta2", &S::adam_beta2, "AdamW beta2"),
      key_of("adam_epsilon", &S::adam_epsilon, "AdamW epsilon"),
      key_of("gradient_checkpointing", &S::gradient_checkpointing, "recompute layers in the backward"),
      bf16_key(),
      key_of("seed", &S::seed, "seed of LoRA init, shuffle and dropout"),
      key_of("lora_r", &S::lora_r, "LoRA rank"),
      key_of("lora_alpha", &S::lora_alpha, "LoRA alpha"),
      key_of("lora_dropout", &S::lora_dropout, "LoRA dropout"),
      key_of("lora_target", &S::lora_target, "q_proj,v_proj ... or all-linear"),
      key_of("use_rslora", &S::use_rslora, "scale alpha/sqrt(r)"),
      key_of("quantization_bit", &S::quantization_bit, "4: QLoRA, base weights quantized to 4 bits at load (0: none)"),
      key_of("quantization_type", &S::quantization_type, "nf4 or fp4: the 4-bit code (with quantization_bit 4)"),
      key_of("double_quantization", &S::double_quantization, "quantize the 4-bit absmax values too (bitsandbytes)"),
      key_of("use_dora", &S::use_dora, "DoRA: a trained magnitude per output row (PEFT use_dora; cpu backend)"),
      key_of("logging_steps", &S::logging_steps, "log every N steps"),
      key_of("save_steps", &S::save_steps, "checkpoint every N steps"),
      key_of("save_total_limit", &S::save_total_limit, "keep at most N checkpoints (<=0: all)"),
      key_of("eval_steps", &S::eval_steps, "eval loss (and eval_data scores) every N steps (0: at the end only)"),
      key_of("sample_steps", &S::sample_steps, "answer the eval prompts every N steps too"),
      key_of("num_samples", &S::num_samples, "eval prompts answered in samples"),
      key_of("max_new_tokens", &S::max_new_tokens, "tokens per sample answer"),
      key_of("eval_data", &S::eval_data, "benchmark scored during training (as lorafit eval --data)"),
      key_of("eval_task", &S::eval_task, "mcq or qa: the scorer of eval_data"),
      key_of("eval_limit", &S::eval_limit, "first N rows of eval_data (0: all)"),
      key_of("eval_max_new_tokens", &S::eval_max_new_tokens, "tokens per eval_data answer (0: mcq 64, qa 512)"),
      key_of("quiet", &S::quiet, "no per-step terminal lines"),
      key_of("report_to", &S::report_to, "none, or tensorboard (also: all) for TensorBoard event files in output_dir"),
  };
  return keys;
}

std::string setting_suggestion(const std::string& name, const std::vector<std::string>& extra_flags) {
  std::vector<std::string> names = extra_flags;
  for (const SettingKey& k : setting_keys()) names.push_back(k.name);
  return did_you_mean(name, names, "--");
}

namespace {
// As setting_suggestion, for a YAML key: `did you mean "lora_r"?` (no -- before a key).
std::string yaml_key_suggestion(const std::string& name) {
  std::vector<std::string> names;
  for (const SettingKey& k : setting_keys()) names.push_back(k.name);
  return did_you_mean(name, names, "", /*quoted=*/true);
}
}  // namespace

void apply_setting(TrainSettings& s, const std::string& key_in, const std::string& value, const std::string& where) {
  const std::string key = canonical(key_in);
  for (const SettingKey& k : setting_keys())
    if (k.name == key) {
      try {
        k.set(s, value);
      } catch (const Error& e) {
        throw Error("{}: {}", where, e.what());
      }
      s.where[key] = where;
      return;
    }
  throw Error("{}: unknown setting \"{}\"{} (`lorafit train --help` lists every key)", where, one_line(key_in),
              yaml_key_suggestion(key_in));
}

void apply_yaml_file(TrainSettings& s, const fs::path& path) {
  YAML::Node root;
  try {
    root = YAML::Load(read_file(path));
  } catch (const YAML::DeepRecursion& e) {  // its msg is a bare "bad file"
    throw Error("{}:{}: not valid YAML (nested deeper than yaml-cpp's limit of 2000 levels); write one `key: value` "
                "per line",
                path.string(), e.mark.line + 1);
  } catch (const YAML::Exception& e) {
    throw Error("{}:{}: not valid YAML ({}); write one `key: value` per line", path.string(), e.mark.line + 1,
                one_line(e.msg));  // e.msg is yaml-cpp's reason alone ("illegal map value"), without its "yaml-cpp: error at" prefix
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw Error("{}: expected a mapping of `key: value` lines", path.string());
  for (const auto& kv : root) {
    // yaml-cpp's as<std::string>() throws "bad conversion" for a map or list: check first so
    // the message is ours and names the line.
    if (!kv.first.IsScalar())
      throw Error("{}:{}: a setting name must be plain text, not a list or mapping; write `key: value`",
                  path.string(), kv.first.Mark().line + 1);
    const std::string key = kv.first.as<std::string>();
    const std::string where = fmt::format("{}:{}", path.string(), kv.first.Mark().line + 1);
    std::string value;
    if (kv.second.IsSequence()) {
      for (const auto& item : kv.second) {
        if (!item.IsScalar())
          throw Error("{}:{}: {}: each list item must be a plain value (text, number, true/false), not a {}",
                      path.string(), item.Mark().line + 1, key, item.IsSequence() ? "list" : item.IsMap() ? "mapping" : "null");
        value += (value.empty() ? "" : ",") + item.as<std::string>();
      }
    } else if (kv.second.IsScalar()) {
      value = kv.second.as<std::string>();
    } else if (kv.second.IsNull()) {
      value = "";
    } else {
      throw Error("{}: {} must be a scalar or a list", where, key);
    }
    apply_setting(s, key, value, where);
  }
}

TrainSettings parse_train_args(const std::vector<std::string>& args, const std::vector<std::string>& other_flags) {
  TrainSettings s;
  struct Flag {
    std::string key, value;
  };
  std::vector<Flag> flags;
  std::string config;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    // `lorafit train recipe.yaml`, as `llamafactory-cli train recipe.yaml`: the first argument
    // may be the config file itself.
    const bool yaml_name = a.ends_with(".yaml") || a.ends_with(".yml");
    if (i == 0 && yaml_name) {
      config = a;
      continue;
    }
    if (a.rfind("--", 0) != 0)
      throw Error("unexpected argument \"{}\"; settings are written --key value (e.g. --lora_r 64){}", a,
                  yaml_name ? "; give a config file first or as --config FILE.yaml" : "");
    std::string key = a.substr(2), value;
    const size_t eq = key.find('=');
    bool have_value = false;
    if (eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
      have_value = true;
    }
    const std::string ck = canonical(key);
    bool is_bool = false, known = ck == "config";
    for (const SettingKey& k : setting_keys())
      if (k.name == ck) known = true, is_bool = k.is_bool;
    if (!known)
      throw Error("--{}: unknown setting{} (`lorafit train --help` lists every key)", one_line(key),
                  setting_suggestion(ck, other_flags));
    if (!have_value) {
      const bool next_is_value = i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0;
      if (is_bool && !next_is_value) {
        value = "true";
      } else if (!next_is_value) {
        throw Error("--{}: expected a value after it", key);
      } else {
        value = args[++i];
      }
    }
    if (ck == "config" && !config.empty() && config != value)
      throw Error("--config {}: a config file was already given ({}); give one", value, config);
    if (ck == "config")
      config = value;
    else
      flags.push_back({key, value});
  }
  if (!config.empty()) apply_yaml_file(s, config);
  for (const Flag& f : flags) apply_setting(s, f.key, f.value, "--" + f.key);
  return s;
}

std::string settings_to_yaml(const TrainSettings& s) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const SettingKey& k : setting_keys()) {
    out << YAML::Key << k.name << YAML::Value;
    const std::string v = k.get(s);
    if (k.is_bool && v != "auto")
      out << (v == "true");
    else
      out << YAML::DoubleQuoted << v;
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

void validate_settings(const TrainSettings& s) {
  auto need = [](bool ok, const char* key, const std::string& what) {
    if (!ok) throw Error("{}: {}", key, what);
  };
  need(!s.model_name_or_path.empty(), "--model_name_or_path", "required: the Hugging Face model folder");
  need(!s.data.empty(), "--data", "required: the dataset file (.jsonl or .json)");
  need(!s.output_dir.empty(), "--output_dir", "required: where the run folder goes");
  need(s.cutoff_len >= 2, "cutoff_len", "must be at least 2");
  need(s.per_device_train_batch_size >= 1, "per_device_train_batch_size", "must be at least 1");
  need(s.per_device_eval_batch_size >= 1, "per_device_eval_batch_size", "must be at least 1");
  need(s.gradient_accumulation_steps >= 1, "gradient_accumulation_steps", "must be at least 1");
  need(s.learning_rate >= 0, "learning_rate", "must not be negative");
  need(s.num_train_epochs > 0 || s.max_steps > 0, "num_train_epochs", "must be > 0 (or set max_steps)");
  need(s.logging_steps >= 1, "logging_steps", "must be at least 1");
  need(s.save_steps >= 1, "save_steps", "must be at least 1");
  need(s.eval_steps >= 0 && s.sample_steps >= 0, "eval_steps/sample_steps", "must not be negative");
  need(s.lora_r >= 1, "lora_r", "must be at least 1");
  need(s.val_size >= 0, "val_size", "must not be negative");
  need(s.on_bad_record == "error" || s.on_bad_record == "skip", "on_bad_record", "must be error or skip");
  need(s.enable_thinking.empty() || s.enable_thinking == "true" || s.enable_thinking == "false", "--enable_thinking",
       fmt::format("\"{}\" is not true or false", s.enable_thinking));
  need(s.chat_template.empty() || fs::is_regular_file(s.chat_template), "--template",
       fmt::format("{} is not a file; give a Jinja chat template file (or leave it out to use the model folder's)",
                   s.chat_template));
  need(s.num_samples >= 0 && s.max_new_tokens >= 1, "num_samples/max_new_tokens", "out of range");
  need(s.eval_task == "mcq" || s.eval_task == "qa", "--eval_task", "unknown task; use mcq or qa");
  need(s.eval_limit >= 0 && s.eval_max_new_tokens >= 0, "--eval_limit/--eval_max_new_tokens", "must not be negative");
  reports_to_tensorboard(s);
  if (s.use_dora) refuse_unsupported_dora(s, "--use_dora true");
  train_quant_config(s);
}

QuantConfig train_quant_config(const TrainSettings& s) {
  return parse_quant_config(s.quantization_bit, s.quantization_type, s.double_quantization, "--");
}

void refuse_unsupported_dora(const TrainSettings& s, const std::string& what) {
  if (s.device == "cuda")
    throw Error("{}: DoRA runs on the CPU backend only (its CUDA kernels have not been checked on a GPU yet); use "
                "--device cpu, or train plain LoRA on cuda (--use_dora false)",
                what);
  if (s.quantization_bit != 0 && train_act_dtype(s) == DType::BF16)
    throw Error("{}: DoRA on a 4-bit (QLoRA) base trains with fp32 compute only; under bf16 autocast PEFT's "
                "bitsandbytes DoRA layer takes another path (the norm summed in bf16, an fp32 layer output), which is "
                "not implemented; use --bf16 false, or --quantization_bit 0 for bf16 DoRA",
                what);
}

bool reports_to_tensorboard(const TrainSettings& s) {
  // HF's report_to is a list: "none", "all" or integration names; lorafit has TensorBoard.
  bool tb = false;
  for (std::string item : split_list(s.report_to)) {
    if (item == "tensorboard" || item == "all") tb = true;
    else if (item != "none")
      throw Error("report_to: \"{}\" is not supported; use tensorboard or none (lorafit writes TensorBoard event "
                  "files; the dashboard reads the run folder itself)",
                  item);
  }
  return tb;
}

DType train_act_dtype(const TrainSettings& s) {
  if (s.bf16 == "auto") return s.device == "cuda" ? DType::BF16 : DType::F32;
  return s.bf16 == "true" ? DType::BF16 : DType::F32;
}

}  // namespace lorafit
