// PEFT adapter folders (docs/SPEC.md "LoRA"): adapter_config.json (sorted keys, indent 2) and
// adapter_model.safetensors (F32 lora_A [r, I] / lora_B [O, r], metadata {"format":"pt"}).
// Both files are written atomically; PeftModel.from_pretrained loads what we write.
#pragma once
#include <string>

#include "lora/lora_params.h"
#include "util/file.h"

namespace lorafit {

// adapter_config.json text for `cfg` (target_modules: the sorted short names of the adapted
// modules, or the regex string).
std::string peft_adapter_config_json(const LoraParams& p, const std::string& base_model_name_or_path);

// Writes dir/adapter_config.json and dir/adapter_model.safetensors (creates dir).
void save_peft_adapter(const fs::path& dir, const LoraParams& p, const std::string& base_model_name_or_path);

// Reads r, lora_alpha, lora_dropout, use_rslora and target_modules from dir/adapter_config.json;
// refuses (Error naming the file and field) what we cannot honour (peft_type other than LORA,
// bias other than "none", rank/alpha patterns, layers_to_transform, ...). use_dora is read
// (the weights then need a lora_magnitude_vector per module).
LoraConfig load_peft_adapter_config(const fs::path& dir);

// Fills A/B from dir/adapter_model.safetensors; every table key must be present with its shape,
// and the file must hold no lora tensor the table lacks.
void load_peft_adapter_weights(const fs::path& dir, LoraParams& p);

}  // namespace lorafit
