// The architecture settings of one model, read from Hugging Face config.json.
// One plain struct for every family we support; the family only changes defaults.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "formats/bnb_checkpoint.h"
#include "formats/rope.h"
#include "util/file.h"

namespace lorafit {

enum class ModelFamily { Qwen2, Qwen3, Llama, Mistral };
const char* family_name(ModelFamily f);  // "qwen2", ...

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
  double rope_theta = 10000.0;  // = rope.theta
  RopeConfig rope;              // rope_theta + rope_scaling (transformers 4) or rope_parameters (5)
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q,k,v biases (Qwen2: always; Llama, Qwen3: attention_bias)
  bool o_bias = false;          // o_proj bias (Llama, Qwen3: attention_bias; Qwen2 never)
  bool qk_norm = false;         // Qwen3: per-head RMSNorm (D) on q and k before RoPE
  int max_position_embeddings = 0;
  std::optional<int> sliding_window;  // set only when some layer slides (Qwen: use_sliding_window and
                                      // layers >= max_window_layers; Mistral: sliding_window)
  int max_window_layers = 0;          // Qwen2/Qwen3 only: transformers' max_window_layers (default 28)
  std::optional<int> bos_token_id, eos_token_id;  // eos_token_id: the first of eos_token_ids
  std::vector<int> eos_token_ids;     // config.json may give a list (Llama 3)
  std::string torch_dtype;            // torch_dtype (transformers 4) or dtype (5); "" when absent
  std::optional<Bnb4bitConfig> bnb4;  // quantization_config of a bitsandbytes 4-bit checkpoint (others are refused)
};

// Parses and validates. The sizes (vocab, hidden, intermediate, layers, heads) are required;
// other absent fields take transformers' defaults for the family (e.g. num_key_value_heads:
// Qwen2/Qwen3 32, Mistral 8, Llama = heads; Qwen3 head_dim 128). Every field that changes the
// numbers is honoured or refused with an Error naming the file and field (a rope type,
// hidden_act, attention_dropout, layer type... that lorafit does not implement; an
// architecture it does not support, by name; a quantization_config other than bitsandbytes 4-bit,
// by its quant_method: formats/bnb_checkpoint.h).
ModelConfig parse_model_config(const std::string& json_text, const std::string& label);
ModelConfig load_model_config(const fs::path& config_json);

}  // namespace lorafit
