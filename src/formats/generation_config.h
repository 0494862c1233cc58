// Decoding settings read from a Hugging Face generation_config.json.
// Absent fields take transformers' GenerationConfig defaults (4.46,
// generation/configuration_utils.py): do_sample false, temperature 1.0, top_k 50, top_p 1.0,
// min_p None, repetition_penalty 1.0, max_length 20, max_new_tokens None, token ids None.
// A JSON null means what None means to transformers: the setting is off (temperature,
// top_p, repetition_penalty → 1.0; top_k → 0, which disables top-k).
// Fallbacks from tokenizer_config.json / config.json (eos, pad) are the caller's business.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/file.h"

namespace lorafit {

struct GenerationConfig {
  bool do_sample = false;
  double temperature = 1.0;          // > 0 when do_sample; 1.0 = no TemperatureLogitsWarper
  int top_k = 50;                    // 0 = no TopKLogitsWarper
  double top_p = 1.0;                // in (0, 1]; 1.0 = no TopPLogitsWarper
  std::optional<double> min_p;       // in [0, 1]; absent = no MinPLogitsWarper
  double repetition_penalty = 1.0;   // > 0; 1.0 = no RepetitionPenaltyLogitsProcessor
  int max_length = 20;               // prompt + new tokens, used when max_new_tokens is absent
  std::optional<int> max_new_tokens; // > 0
  std::vector<int32_t> eos_token_ids;  // int or list in the file; empty when absent
  std::optional<int32_t> bos_token_id, pad_token_id;
};

// Parses and validates; `label` (the file path) starts every error message, which also names
// the field, the value found and what is allowed. Unknown fields are ignored, as transformers
// keeps them as plain attributes.
GenerationConfig parse_generation_config(const std::string& json_text, const std::string& label);
GenerationConfig load_generation_config(const fs::path& generation_config_json);

}  // namespace lorafit
