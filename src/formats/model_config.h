// The architecture settings of one model, read from Hugging Face config.json.
// One plain struct for every family we support; the family only changes defaults.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "util/file.h"

namespace lorafit {

enum class ModelFamily { Qwen2, Llama, Mistral };

struct ModelConfig {
  ModelFamily family = ModelFamily::Qwen2;
  std::string model_type;  // as written in config.json
  int vocab_size = 0;      // V
  int hidden_size = 0;     // C
  int intermediate_size = 0;  // F
  int num_layers = 0;
  int num_heads = 0;     // H
  int num_kv_heads = 0;  // Hkv
  int head_dim = 0;      // D (explicit, or hidden/heads)
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q,k,v biases (Qwen2: true; o_proj never has one)
  int max_position_embeddings = 0;
  std::optional<int> sliding_window;  // only when use_sliding_window (Qwen2) / set (Mistral)
  int max_window_layers = 0;          // Qwen2 only: transformers' max_window_layers (default 28)
  std::optional<int> bos_token_id, eos_token_id;  // eos_token_id: the first of eos_token_ids
  std::vector<int> eos_token_ids;     // config.json may give a list (Llama 3)
  std::string torch_dtype;            // "" when absent
};

// Parses and validates. The sizes (vocab, hidden, intermediate, layers, heads) are required;
// other absent fields take transformers 4.46's defaults for the family (e.g.
// num_key_value_heads: Qwen2 32, Mistral 8, Llama = heads). Unsupported fields (rope_scaling
// we do not implement, a hidden_act other than silu, ...) are refused with an Error naming
// the file and field.
ModelConfig parse_model_config(const std::string& json_text, const std::string& label);
ModelConfig load_model_config(const fs::path& config_json);

}  // namespace lorafit
