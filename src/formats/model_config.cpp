// config.json -> ModelConfig. Defaults are those of transformers 4.57.6's Qwen2Config,
// Qwen3Config, LlamaConfig and MistralConfig __init__ (a field absent from config.json takes
// them; they equal 4.46.3's for the three older families). Files written by transformers 5
// (rope_parameters, dtype, layer_types) are read too; see formats/rope.h for the rope fields.
#include "formats/model_config.h"

#include "formats/config_fields.h"

namespace lorafit {

namespace {

constexpr const char* kSupportedTypes = "qwen2, qwen3, llama, mistral";

struct FamilyDefaults {
  ModelFamily family;
  int num_kv_heads;  // 0: = num_attention_heads
  int max_position_embeddings;
  std::optional<int> bos, eos;
};

// Architectures people ask for that lorafit does not implement: the message names them.
const char* known_unsupported(const std::string& t) {
  if (t == "qwen3_moe" || t == "qwen2_moe") return "a mixture-of-experts model (Qwen MoE)";
  if (t == "qwen3_next") return "Qwen3-Next (hybrid linear attention with mixture of experts)";
  if (t == "qwen3_5" || t == "qwen3_5_text" || t == "qwen3_5_moe" || t == "qwen3_5_moe_text")
    return "Qwen3.5 (hybrid linear attention: Gated DeltaNet layers between attention layers)";
  if (t == "qwen3_vl" || t == "qwen3_vl_moe" || t == "qwen2_5_vl" || t == "qwen2_vl")
    return "a vision-language model (Qwen-VL)";
  return nullptr;
}

FamilyDefaults family_of(const std::string& type, const std::string& label) {
  if (type == "qwen2") return {ModelFamily::Qwen2, 32, 32768, std::nullopt, std::nullopt};
  if (type == "qwen3") return {ModelFamily::Qwen3, 32, 32768, std::nullopt, std::nullopt};
  if (type == "llama") return {ModelFamily::Llama, 0, 2048, 1, 2};
  if (type == "mistral") return {ModelFamily::Mistral, 8, 4096 * 32, 1, 2};
  if (const char* what = known_unsupported(type))
    throw Error("{}: model_type \"{}\" is {}, which lorafit does not support yet; supported model types: {}", label,
                type, what, kSupportedTypes);
  throw Error("{}: model_type \"{}\" is not supported; supported model types: {}", label, type, kSupportedTypes);
}

// head_dim: Qwen2 uses hidden/heads (4.46 ignores a head_dim field, so one that differs is
// refused); Qwen3 defaults to 128; Llama and Mistral use it when given (Mistral also when
// 0: `head_dim or ...`).
int head_dim_of(const ConfigFields& f, const ModelConfig& c) {
  const std::string& label = f.label();
  if (c.family == ModelFamily::Qwen3) {
    if (f.present("head_dim") && !f.has("head_dim"))
      throw Error("{}: field `head_dim` is null; Qwen3 needs it (transformers' default is 128)", label);
    return f.size_or("head_dim", 128);
  }
  const bool explicit_hd = f.has("head_dim") && !(c.family == ModelFamily::Mistral && f.raw("head_dim") == 0);
  if (explicit_hd && c.family != ModelFamily::Qwen2) return f.size_or("head_dim", 0);
  if (c.hidden_size % c.num_heads != 0)
    throw Error("{}: hidden_size ({}) is not divisible by num_attention_heads ({}){}", label, c.hidden_size,
                c.num_heads, c.family == ModelFamily::Qwen2 ? "" : " and no head_dim is given");
  const int hd = c.hidden_size / c.num_heads;
  if (explicit_hd && f.size_or("head_dim", 0) != hd)
    throw Error("{}: field `head_dim` = {} differs from hidden_size / num_attention_heads = {}, which "
                "transformers' Qwen2 uses (it ignores head_dim); fix the config",
                label, f.raw("head_dim").dump(), hd);
  return hd;
}

// Which layers use sliding-window attention. transformers 4 derives it (Qwen: use_sliding_window
// and layers ≥ max_window_layers; Mistral: every layer when sliding_window is set);
// transformers ≥ 4.53 and 5 also write `layer_types`, which must agree with the derivation.
void read_attention_layout(const ConfigFields& f, ModelConfig& c) {
  const std::string& label = f.label();
  std::optional<int> window;
  std::vector<bool> sliding(static_cast<size_t>(c.num_layers), false);
  switch (c.family) {
    case ModelFamily::Qwen2:
    case ModelFamily::Qwen3:
      c.max_window_layers = f.has("max_window_layers") ? f.integer("max_window_layers", f.raw("max_window_layers")) : 28;
      if (c.max_window_layers < 0)
        throw Error("{}: field `max_window_layers` = {} must not be negative", label, c.max_window_layers);
      if (f.boolean_or("use_sliding_window", false)) {
        if (!f.present("sliding_window")) window = 4096;
        else if (f.has("sliding_window")) window = f.size_or("sliding_window", 0);
      }
      if (window)
        for (int i = c.max_window_layers; i < c.num_layers; ++i) sliding[static_cast<size_t>(i)] = true;
      break;
    case ModelFamily::Mistral:
      if (!f.present("sliding_window")) window = 4096;
      else if (f.has("sliding_window")) window = f.size_or("sliding_window", 0);
      if (window) sliding.assign(sliding.size(), true);
      break;
    case ModelFamily::Llama: break;
  }
  if (f.has("layer_types")) {
    const auto& lt = f.raw("layer_types");
    if (!lt.is_array() || static_cast<int>(lt.size()) != c.num_layers)
      throw Error("{}: field `layer_types` must be a list of {} entries (num_hidden_layers), got {}", label,
                  c.num_layers, lt.is_array() ? std::to_string(lt.size()) + " entries" : json_type_name(lt));
    for (size_t i = 0; i < lt.size(); ++i) {
      const std::string t = lt[i].is_string() ? lt[i].get<std::string>() : lt[i].dump();
      if (t == "linear_attention")
        throw Error("{}: field `layer_types`[{}] = \"linear_attention\": this is a hybrid linear-attention model, which "
                    "lorafit does not support yet",
                    label, i);
      if (t != "full_attention" && t != "sliding_attention")
        throw Error("{}: field `layer_types`[{}] = \"{}\" is not supported; supported layer types: full_attention, "
                    "sliding_attention",
                    label, i, t);
      if ((t == "sliding_attention") != sliding[i])
        throw Error("{}: field `layer_types`[{}] = \"{}\" disagrees with {} ({}); fix one of them", label, i, t,
                    c.family == ModelFamily::Mistral ? "sliding_window" : "use_sliding_window / max_window_layers",
                    sliding[i] ? "sliding_attention" : "full_attention");
    }
  }
  bool any = false;
  for (bool s : sliding) any = any || s;
  if (any) c.sliding_window = window;
}

// Fields that change the numbers and that lorafit does not implement: refused unless they
// hold the value that changes nothing.
void refuse_unimplemented(const ConfigFields& f, const ModelConfig& c) {
  const std::string& label = f.label();
  std::string act = f.string_or("hidden_act", "silu");
  if (act != "silu")
    throw Error("{}: field `hidden_act` = \"{}\" is not supported; lorafit implements \"silu\" only", label, act);
  if (f.has("attention_dropout") && f.number("attention_dropout") != 0.0)
    throw Error("{}: field `attention_dropout` = {} is not supported (transformers drops attention probabilities while "
                "training); set it to 0.0",
                label, f.raw("attention_dropout").dump());
  if (c.family == ModelFamily::Llama && f.boolean_or("mlp_bias", false))
    throw Error("{}: field `mlp_bias` = true is not supported; lorafit's MLP has no biases", label);
  for (const char* k : {"attn_logit_softcapping", "final_logit_softcapping", "logits_scaling", "embedding_multiplier",
                        "residual_multiplier", "attention_multiplier", "use_qk_norm", "num_experts",
                        "num_local_experts"})
    if (f.has(k) && !(f.raw(k).is_boolean() && !f.raw(k).get<bool>()))
      throw Error("{}: field `{}` = {} is not supported by lorafit's {} implementation", label, k, f.raw(k).dump(),
                  c.model_type);
}

}  // namespace

const char* family_name(ModelFamily f) {
  switch (f) {
    case ModelFamily::Qwen2: return "qwen2";
    case ModelFamily::Qwen3: return "qwen3";
    case ModelFamily::Llama: return "llama";
    case ModelFamily::Mistral: return "mistral";
  }
  return "?";
}

ModelConfig parse_model_config(const std::string& json_text, const std::string& label) {
  ordered_json j = parse_json_strict(json_text, label);
  if (!j.is_object()) throw Error("{}: config.json is a JSON {}, expected an object", label, json_type_name(j));
  ConfigFields f(j, label);

  ModelConfig c;
  if (!f.has("model_type")) throw Error("{}: missing required field `model_type`", label);
  c.model_type = f.string_or("model_type", "");
  const FamilyDefaults d = family_of(c.model_type, label);
  c.family = d.family;
  c.bnb4 = parse_quantization_config(j, label);

  c.vocab_size = f.required_size("vocab_size");
  c.hidden_size = f.required_size("hidden_size");
  c.intermediate_size = f.required_size("intermediate_size");
  c.num_layers = f.required_size("num_hidden_layers");
  c.num_heads = f.required_size("num_attention_heads");
  // Absent takes the class default; an explicit null means "= heads" in all four classes.
  if (f.has("num_key_value_heads")) c.num_kv_heads = f.size_or("num_key_value_heads", 0);
  else if (f.present("num_key_value_heads") || d.num_kv_heads == 0) c.num_kv_heads = c.num_heads;
  else c.num_kv_heads = d.num_kv_heads;
  if (c.num_heads % c.num_kv_heads != 0)
    throw Error("{}: num_attention_heads ({}) must be a multiple of num_key_value_heads ({}{})", label, c.num_heads,
                c.num_kv_heads,
                f.present("num_key_value_heads") ? "" : fmt::format(", transformers' default for {}", c.model_type));
  c.head_dim = head_dim_of(f, c);
  if (c.head_dim % 2 != 0) throw Error("{}: head_dim {} must be even (RoPE rotates pairs of halves)", label, c.head_dim);

  c.rope = parse_rope_config(f);
  c.rope_theta = c.rope.theta;
  c.rms_norm_eps = f.positive_number_or("rms_norm_eps", 1e-6);
  c.tie_word_embeddings = f.boolean_or("tie_word_embeddings", false);
  c.max_position_embeddings = f.size_or("max_position_embeddings", d.max_position_embeddings);
  // torch_dtype (transformers 4) / dtype (5): recorded only (lorafit computes in its own dtype).
  const std::string td = f.string_or("torch_dtype", ""), dt = f.string_or("dtype", "");
  if (!td.empty() && !dt.empty() && td != dt)
    throw Error("{}: fields `torch_dtype` = \"{}\" and `dtype` = \"{}\" disagree; keep one", label, td, dt);
  c.torch_dtype = dt.empty() ? td : dt;
  refuse_unimplemented(f, c);
  read_attention_layout(f, c);

  switch (c.family) {
    case ModelFamily::Qwen2:
      c.attention_bias = true;  // Qwen2Attention: q/k/v always have a bias, o_proj never
      break;
    case ModelFamily::Qwen3:
      c.attention_bias = f.boolean_or("attention_bias", false);  // q/k/v and o_proj alike
      c.o_bias = c.attention_bias;
      c.qk_norm = true;
      break;
    case ModelFamily::Llama:
      c.attention_bias = f.boolean_or("attention_bias", false);
      c.o_bias = c.attention_bias;
      break;
    case ModelFamily::Mistral:
      c.attention_bias = false;
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
