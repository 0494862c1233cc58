// config.json -> ModelConfig. Defaults are those of transformers 4.46.3's Qwen2Config,
// LlamaConfig and MistralConfig __init__ (a field absent from config.json takes them).
#include "formats/model_config.h"

#include <cmath>
#include <limits>

#include "formats/json_util.h"
#include "util/error.h"

namespace lorafit {

namespace {

// Reads typed fields of one config object; every message names the file and the field.
class Fields {
 public:
  Fields(const ordered_json& j, const std::string& label) : j_(j), label_(label) {}

  // Present and not null.
  bool has(const char* k) const { return j_.contains(k) && !j_[k].is_null(); }
  bool present(const char* k) const { return j_.contains(k); }
  const ordered_json& raw(const char* k) const { return j_[k]; }

  int integer(const char* k, const ordered_json& v) const {
    if (!v.is_number_integer())
      throw Error("{}: field `{}` = {} must be an integer", label_, k, v.dump());
    if (v.is_number_unsigned() ? v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int>::max())
                               : v.get<int64_t>() < std::numeric_limits<int>::min())
      throw Error("{}: field `{}` = {} is out of range", label_, k, v.dump());
    return v.get<int>();
  }
  int required_size(const char* k) const {
    if (!has(k)) throw Error("{}: missing required field `{}`", label_, k);
    return positive(k, integer(k, j_[k]));
  }
  int size_or(const char* k, int def) const { return has(k) ? positive(k, integer(k, j_[k])) : def; }
  int positive(const char* k, int v) const {
    if (v <= 0) throw Error("{}: field `{}` = {} must be positive", label_, k, v);
    return v;
  }
  double positive_number_or(const char* k, double def) const {
    if (!has(k)) return def;
    const auto& v = j_[k];
    if (!v.is_number()) throw Error("{}: field `{}` = {} must be a number", label_, k, v.dump());
    double d = v.get<double>();
    if (!(d > 0) || !std::isfinite(d)) throw Error("{}: field `{}` = {} must be a positive number", label_, k, v.dump());
    return d;
  }
  bool boolean_or(const char* k, bool def) const {
    if (!has(k)) return def;
    if (!j_[k].is_boolean()) throw Error("{}: field `{}` = {} must be true or false", label_, k, j_[k].dump());
    return j_[k].get<bool>();
  }
  std::string string_or(const char* k, const std::string& def) const {
    if (!has(k)) return def;
    if (!j_[k].is_string()) throw Error("{}: field `{}` = {} must be a string", label_, k, j_[k].dump());
    return j_[k].get<std::string>();
  }
  std::optional<int> token_or(const char* k, std::optional<int> def) const {
    if (!present(k)) return def;
    if (j_[k].is_null()) return std::nullopt;
    return integer(k, j_[k]);
  }

 private:
  const ordered_json& j_;
  const std::string& label_;
};

struct FamilyDefaults {
  ModelFamily family;
  int num_kv_heads;  // 0: = num_attention_heads
  int max_position_embeddings;
  std::optional<int> bos, eos;
};

}  // namespace

ModelConfig parse_model_config(const std::string& json_text, const std::string& label) {
  ordered_json j = parse_json_strict(json_text, label);
  if (!j.is_object()) throw Error("{}: config.json is a JSON {}, expected an object", label, json_type_name(j));
  Fields f(j, label);

  ModelConfig c;
  if (!f.has("model_type")) throw Error("{}: missing required field `model_type`", label);
  c.model_type = f.string_or("model_type", "");
  FamilyDefaults d;
  if (c.model_type == "qwen2") d = {ModelFamily::Qwen2, 32, 32768, std::nullopt, std::nullopt};
  else if (c.model_type == "llama") d = {ModelFamily::Llama, 0, 2048, 1, 2};
  else if (c.model_type == "mistral") d = {ModelFamily::Mistral, 8, 4096 * 32, 1, 2};
  else
    throw Error("{}: model_type \"{}\" is not supported; supported model types: qwen2, llama, mistral", label,
                c.model_type);
  c.family = d.family;

  c.vocab_size = f.required_size("vocab_size");
  c.hidden_size = f.required_size("hidden_size");
  c.intermediate_size = f.required_size("intermediate_size");
  c.num_layers = f.required_size("num_hidden_layers");
  c.num_heads = f.required_size("num_attention_heads");
  // Absent takes the class default; an explicit null means "= heads" in all three classes.
  if (f.has("num_key_value_heads")) c.num_kv_heads = f.size_or("num_key_value_heads", 0);
  else if (f.present("num_key_value_heads") || d.num_kv_heads == 0) c.num_kv_heads = c.num_heads;
  else c.num_kv_heads = d.num_kv_heads;
  if (c.num_heads % c.num_kv_heads != 0)
    throw Error("{}: num_attention_heads ({}) must be a multiple of num_key_value_heads ({}{})", label, c.num_heads,
                c.num_kv_heads,
                f.present("num_key_value_heads") ? "" : fmt::format(", transformers' default for {}", c.model_type));

  // head_dim: Qwen2Attention (4.46) always uses hidden/heads and ignores a head_dim field;
  // Llama and Mistral use head_dim when given (Mistral also when it is 0: `head_dim or ...`).
  const bool explicit_hd = f.has("head_dim") && !(c.family == ModelFamily::Mistral && f.raw("head_dim") == 0);
  if (explicit_hd && c.family != ModelFamily::Qwen2) {
    c.head_dim = f.size_or("head_dim", 0);
  } else {
    if (c.hidden_size % c.num_heads != 0)
      throw Error("{}: hidden_size ({}) is not divisible by num_attention_heads ({}){}", label, c.hidden_size,
                  c.num_heads, c.family == ModelFamily::Qwen2 ? "" : " and no head_dim is given");
    c.head_dim = c.hidden_size / c.num_heads;
    if (explicit_hd && f.size_or("head_dim", 0) != c.head_dim)
      throw Error("{}: field `head_dim` = {} differs from hidden_size / num_attention_heads = {}, which "
                  "transformers' Qwen2 uses (it ignores head_dim); fix the config",
                  label, f.raw("head_dim").dump(), c.head_dim);
  }
  if (c.head_dim % 2 != 0) throw Error("{}: head_dim {} must be even (RoPE rotates pairs of halves)", label, c.head_dim);

  c.rope_theta = f.positive_number_or("rope_theta", 10000.0);
  c.rms_norm_eps = f.positive_number_or("rms_norm_eps", 1e-6);
  c.tie_word_embeddings = f.boolean_or("tie_word_embeddings", false);
  c.max_position_embeddings = f.size_or("max_position_embeddings", d.max_position_embeddings);
  c.torch_dtype = f.string_or("torch_dtype", "");

  std::string act = f.string_or("hidden_act", "silu");
  if (act != "silu")
    throw Error("{}: field `hidden_act` = \"{}\" is not supported; lorafit implements \"silu\" only", label, act);
  if (f.has("rope_scaling")) {
    const auto& rs = f.raw("rope_scaling");
    std::string kind = json_type_name(rs);
    if (rs.is_object()) {
      for (const char* k : {"rope_type", "type"})
        if (rs.contains(k) && rs[k].is_string()) {
          kind = fmt::format("rope_type \"{}\"", rs[k].get<std::string>());
          break;
        }
    }
    throw Error("{}: field `rope_scaling` ({}) is not supported; lorafit implements plain RoPE only "
                "(rope_scaling null or absent)",
                label, kind);
  }

  switch (c.family) {
    case ModelFamily::Qwen2:
      c.attention_bias = true;  // Qwen2Attention: q/k/v always have a bias
      c.max_window_layers = f.size_or("max_window_layers", 28);
      if (f.boolean_or("use_sliding_window", false)) {
        if (!f.present("sliding_window")) c.sliding_window = 4096;
        else if (f.has("sliding_window")) c.sliding_window = f.size_or("sliding_window", 0);
      }
      break;
    case ModelFamily::Llama:
      c.attention_bias = f.boolean_or("attention_bias", false);
      if (f.boolean_or("mlp_bias", false))
        throw Error("{}: field `mlp_bias` = true is not supported; lorafit's MLP has no biases", label);
      break;
    case ModelFamily::Mistral:
      c.attention_bias = false;
      if (!f.present("sliding_window")) c.sliding_window = 4096;
      else if (f.has("sliding_window")) c.sliding_window = f.size_or("sliding_window", 0);
      break;
  }

  c.bos_token_id = f.token_or("bos_token_id", d.bos);
  if (f.has("eos_token_id") && f.raw("eos_token_id").is_array()) {
    for (const auto& v : f.raw("eos_token_id")) c.eos_token_ids.push_back(f.integer("eos_token_id", v));
    if (!c.eos_token_ids.empty()) c.eos_token_id = c.eos_token_ids.front();
  } else {
    c.eos_token_id = f.token_or("eos_token_id", d.eos);
    if (c.eos_token_id) c.eos_token_ids.push_back(*c.eos_token_id);
  }
  return c;
}

ModelConfig load_model_config(const fs::path& config_json) {
  return parse_model_config(read_file(config_json), config_json.string());
}

}  // namespace lorafit
