// config.json -> ModelConfig. Expected values are what transformers 4.46.3's
// Qwen2Config / LlamaConfig / MistralConfig (and their attention modules) make of the same
// JSON; defaults were checked with `XConfig.from_dict({...})` in that version.
#include <gtest/gtest.h>

#include "formats/model_config.h"
#include "util/error.h"

namespace lorafit {
namespace {

// Qwen/Qwen2.5-0.5B-Instruct config.json as published.
const char* kQwen05B = R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
  "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 21,
  "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true,
  "torch_dtype": "bfloat16", "transformers_version": "4.43.1", "use_cache": true,
  "use_sliding_window": false, "vocab_size": 151936})";

// Qwen/Qwen2.5-7B-Instruct config.json as published.
const char* kQwen7B = R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 3584, "initializer_range": 0.02,
  "intermediate_size": 18944, "max_position_embeddings": 32768, "max_window_layers": 28,
  "model_type": "qwen2", "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4,
  "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": false,
  "torch_dtype": "bfloat16", "transformers_version": "4.43.1", "use_cache": true,
  "use_sliding_window": false, "vocab_size": 152064})";

// TinyLlama/TinyLlama-1.1B-Chat-v1.0 (a Llama with GQA and rope_scaling null).
const char* kTinyLlama = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 5632,
  "max_position_embeddings": 2048, "model_type": "llama", "num_attention_heads": 32,
  "num_hidden_layers": 22, "num_key_value_heads": 4, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": null, "rope_theta": 10000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.35.0", "use_cache": true, "vocab_size": 32000})";

// mistralai/Mistral-7B-v0.1.
const char* kMistral = R"({
  "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 32,
  "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
  "sliding_window": 4096, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.34.0.dev0", "use_cache": true, "vocab_size": 32000})";

// The smallest config each family accepts; tests add or replace fields.
std::string minimal(const std::string& type, const std::string& extra = "") {
  return R"({"model_type":")" + type +
         R"(","vocab_size":10,"hidden_size":64,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":8)" +
         (extra.empty() ? "" : "," + extra) + "}";
}

std::string error_of(const std::string& json) {
  try {
    (void)parse_model_config(json, "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(ModelConfig, Qwen25_05B) {
  ModelConfig c = parse_model_config(kQwen05B, "q05.json");
  EXPECT_EQ(c.family, ModelFamily::Qwen2);
  EXPECT_EQ(c.model_type, "qwen2");
  EXPECT_EQ(c.vocab_size, 151936);
  EXPECT_EQ(c.hidden_size, 896);
  EXPECT_EQ(c.intermediate_size, 4864);
  EXPECT_EQ(c.num_layers, 24);
  EXPECT_EQ(c.num_heads, 14);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_EQ(c.max_position_embeddings, 32768);
  EXPECT_FALSE(c.sliding_window.has_value());  // use_sliding_window false
  EXPECT_EQ(c.max_window_layers, 21);
  EXPECT_EQ(c.bos_token_id, 151643);
  EXPECT_EQ(c.eos_token_id, 151645);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{151645});
  EXPECT_EQ(c.torch_dtype, "bfloat16");
}

TEST(ModelConfig, Qwen25_7B) {
  ModelConfig c = parse_model_config(kQwen7B, "q7.json");
  EXPECT_EQ(c.vocab_size, 152064);
  EXPECT_EQ(c.hidden_size, 3584);
  EXPECT_EQ(c.intermediate_size, 18944);
  EXPECT_EQ(c.num_layers, 28);
  EXPECT_EQ(c.num_heads, 28);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.sliding_window.has_value());
}

TEST(ModelConfig, Stories260KFromFile) {
  ModelConfig c = load_model_config(fs::path(LORAFIT_TEST_DATA) / "stories260K" / "config.json");
  EXPECT_EQ(c.family, ModelFamily::Qwen2);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);  // explicit and equal to 64 / 8
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_theta, 1e4);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.sliding_window.has_value());
}

TEST(ModelConfig, TinyLlama) {
  ModelConfig c = parse_model_config(kTinyLlama, "tl.json");
  EXPECT_EQ(c.family, ModelFamily::Llama);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_EQ(c.eos_token_id, 2);
}

TEST(ModelConfig, Mistral) {
  ModelConfig c = parse_model_config(kMistral, "m.json");
  EXPECT_EQ(c.family, ModelFamily::Mistral);
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.max_position_embeddings, 32768);
}

TEST(ModelConfig, FamilyDefaultsMatchTransformers446) {
  // XConfig.from_dict of the minimal dict: kv heads 32 / 8 (= heads) / 8, head_dim 8,
  // max_position 32768 / 2048 / 131072, bos/eos none / 1,2 / 1,2, tie false everywhere.
  ModelConfig q = parse_model_config(minimal("qwen2", R"("num_key_value_heads":8)"), "q");
  EXPECT_EQ(q.head_dim, 8);
  EXPECT_EQ(q.max_position_embeddings, 32768);
  EXPECT_EQ(q.max_window_layers, 28);
  EXPECT_FALSE(q.bos_token_id.has_value());
  EXPECT_FALSE(q.eos_token_id.has_value());
  EXPECT_FALSE(q.tie_word_embeddings);
  EXPECT_EQ(q.rope_theta, 10000.0);
  EXPECT_EQ(q.rms_norm_eps, 1e-6);
  ModelConfig l = parse_model_config(minimal("llama"), "l");
  EXPECT_EQ(l.num_kv_heads, 8);
  EXPECT_EQ(l.max_position_embeddings, 2048);
  EXPECT_EQ(l.bos_token_id, 1);
  EXPECT_EQ(l.eos_token_id, 2);
  EXPECT_FALSE(l.tie_word_embeddings);
  EXPECT_FALSE(l.attention_bias);
  ModelConfig m = parse_model_config(minimal("mistral"), "m");
  EXPECT_EQ(m.num_kv_heads, 8);
  EXPECT_EQ(m.max_position_embeddings, 131072);
  EXPECT_EQ(m.sliding_window, 4096);  // absent: MistralConfig's default 4096
  EXPECT_FALSE(m.tie_word_embeddings);
  // Qwen2 without num_key_value_heads takes Qwen2Config's 32, which 8 heads cannot use.
  EXPECT_EQ(error_of(minimal("qwen2")),
            "cfg.json: num_attention_heads (8) must be a multiple of num_key_value_heads (32, transformers' "
            "default for qwen2)");
  // An explicit null means "= heads" in every family.
  EXPECT_EQ(parse_model_config(minimal("qwen2", R"("num_key_value_heads":null)"), "q").num_kv_heads, 8);
}

TEST(ModelConfig, FieldVariants) {
  // Llama: explicit head_dim need not be hidden/heads; attention_bias read from the config.
  ModelConfig l = parse_model_config(minimal("llama", R"("head_dim":16,"attention_bias":true)"), "l");
  EXPECT_EQ(l.head_dim, 16);
  EXPECT_TRUE(l.attention_bias);
  // Mistral: explicit head_dim; sliding_window null = none; head_dim 0 means derived.
  ModelConfig m = parse_model_config(minimal("mistral", R"("head_dim":4,"sliding_window":null)"), "m");
  EXPECT_EQ(m.head_dim, 4);
  EXPECT_FALSE(m.sliding_window.has_value());
  EXPECT_EQ(parse_model_config(minimal("mistral", R"("head_dim":0)"), "m").head_dim, 8);
  // Qwen2: sliding window only with use_sliding_window, on layers >= max_window_layers (as
  // Qwen2Attention: `layer_idx >= max_window_layers`); q/k/v bias regardless.
  ModelConfig q = parse_model_config(
      minimal("qwen2",
              R"("num_key_value_heads":2,"use_sliding_window":true,"sliding_window":1024,"max_window_layers":0)"),
      "q");
  EXPECT_EQ(q.sliding_window, 1024);
  EXPECT_TRUE(q.attention_bias);
  EXPECT_EQ(parse_model_config(
                minimal("qwen2", R"("num_key_value_heads":2,"use_sliding_window":true,"max_window_layers":0)"), "q")
                .sliding_window,
            4096);
  // The one layer is below the default max_window_layers (28): no layer slides.
  EXPECT_FALSE(parse_model_config(minimal("qwen2", R"("num_key_value_heads":2,"use_sliding_window":true)"), "q")
                   .sliding_window.has_value());
  // Llama 3 lists several eos ids.
  ModelConfig l3 = parse_model_config(minimal("llama", R"("eos_token_id":[128001,128008,128009])"), "l");
  EXPECT_EQ(l3.eos_token_ids, (std::vector<int>{128001, 128008, 128009}));
  EXPECT_EQ(l3.eos_token_id, 128001);
  // rope_scaling null and unknown fields are fine.
  EXPECT_EQ(error_of(minimal("llama", R"("rope_scaling":null,"something_new":{"a":1})")), "(accepted)");
}

// Qwen/Qwen3-4B config.json as published (tied, head_dim 128 ≠ hidden/heads = 80).
const char* kQwen3_4B = R"({
  "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 2560,
  "initializer_range": 0.02, "intermediate_size": 9728, "max_position_embeddings": 262144,
  "max_window_layers": 36, "model_type": "qwen3", "num_attention_heads": 32, "num_hidden_layers": 36,
  "num_key_value_heads": 8, "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 5000000,
  "sliding_window": null, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "transformers_version": "4.51.0", "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})";

// meta-llama/Llama-3.1-8B-Instruct config.json as published.
const char* kLlama31_8B = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu", "hidden_size": 4096,
  "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072, "mlp_bias": false,
  "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0,
  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.42.3", "use_cache": true, "vocab_size": 128256})";

TEST(ModelConfig, Qwen3_4B) {
  ModelConfig c = parse_model_config(kQwen3_4B, "q3.json");
  EXPECT_EQ(c.family, ModelFamily::Qwen3);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope.type, RopeType::Default);
  EXPECT_EQ(c.rope_theta, 5e6);
  EXPECT_FALSE(c.sliding_window.has_value());
  // Qwen3Config defaults: head_dim 128 when absent (not hidden/heads), kv heads 32.
  ModelConfig d = parse_model_config(minimal("qwen3", R"("num_key_value_heads":8)"), "q");
  EXPECT_EQ(d.head_dim, 128);
  EXPECT_EQ(parse_model_config(minimal("qwen3", R"("num_key_value_heads":8,"attention_bias":true)"), "q").o_bias,
            true);
}

TEST(ModelConfig, Llama31RopeScaling) {
  ModelConfig c = parse_model_config(kLlama31_8B, "l31.json");
  EXPECT_EQ(c.rope.type, RopeType::Llama3);
  EXPECT_EQ(c.rope.factor, 8.0);
  EXPECT_EQ(c.rope.low_freq_factor, 1.0);
  EXPECT_EQ(c.rope.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int>{128001, 128008, 128009}));
}

// The same model in transformers 5's spelling (rope_parameters, dtype, layer_types) parses to
// the same numbers; a file holding both spellings is fine while they agree.
TEST(ModelConfig, Transformers5SpellingEqualsTransformers4) {
  std::string v5 = kLlama31_8B;
  const std::string scaling = R"("rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0,
  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0)";
  ASSERT_NE(v5.find(scaling), std::string::npos);
  v5.replace(v5.find(scaling), scaling.size(),
             R"("rope_parameters": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
             "original_max_position_embeddings": 8192, "rope_theta": 500000.0, "rope_type": "llama3"})");
  v5.replace(v5.find("torch_dtype"), 11, "dtype");
  ModelConfig a = parse_model_config(kLlama31_8B, "4"), b = parse_model_config(v5, "5");
  EXPECT_TRUE(a.rope == b.rope);
  EXPECT_EQ(b.torch_dtype, "bfloat16");
  // Both spellings, agreeing (a theta given twice, "type" next to "rope_type").
  ModelConfig both = parse_model_config(
      minimal("qwen2", R"("num_key_value_heads":8,"rope_theta":1e6,"rope_scaling":{"type":"yarn","factor":4.0},)"
                       R"("rope_parameters":{"rope_theta":1e6,"rope_type":"yarn","type":"yarn","factor":4.0},)"
                       R"("dtype":"bfloat16","torch_dtype":"bfloat16","layer_types":["full_attention"])"),
      "both");
  EXPECT_EQ(both.rope.type, RopeType::Yarn);
  EXPECT_EQ(both.rope.theta, 1e6);
  // layer_types agreeing with use_sliding_window / max_window_layers: the window is in effect.
  ModelConfig sw = parse_model_config(
      R"({"model_type":"qwen3","vocab_size":10,"hidden_size":64,"intermediate_size":8,"num_hidden_layers":2,)"
      R"("num_attention_heads":8,"num_key_value_heads":8,"use_sliding_window":true,"sliding_window":16,)"
      R"("max_window_layers":1,"layer_types":["full_attention","sliding_attention"]})",
      "sw");
  EXPECT_EQ(sw.sliding_window, 16);
}

struct Refusal {
  std::string json;
  std::string message;  // exact
};

class Refused : public ::testing::TestWithParam<Refusal> {};

TEST_P(Refused, WithExactMessage) { EXPECT_EQ(error_of(GetParam().json), GetParam().message); }

INSTANTIATE_TEST_SUITE_P(
    Formats, Refused,
    ::testing::Values(
        Refusal{minimal("gemma"),
                "cfg.json: model_type \"gemma\" is not supported; supported model types: qwen2, qwen3, llama, mistral"},
        Refusal{minimal("qwen3_moe"),
                "cfg.json: model_type \"qwen3_moe\" is a mixture-of-experts model (Qwen MoE), which lorafit does not "
                "support yet; supported model types: qwen2, qwen3, llama, mistral"},
        Refusal{minimal("qwen3_5"),
                "cfg.json: model_type \"qwen3_5\" is Qwen3.5 (hybrid linear attention: Gated DeltaNet layers between "
                "attention layers), which lorafit does not support yet; supported model types: qwen2, qwen3, llama, "
                "mistral"},
        Refusal{minimal("qwen3_next"),
                "cfg.json: model_type \"qwen3_next\" is Qwen3-Next (hybrid linear attention with mixture of experts), "
                "which lorafit does not support yet; supported model types: qwen2, qwen3, llama, mistral"},
        Refusal{minimal("qwen3", R"("num_key_value_heads":8,"layer_types":["linear_attention"])"),
                "cfg.json: field `layer_types`[0] = \"linear_attention\": this is a hybrid linear-attention model, "
                "which lorafit does not support yet"},
        Refusal{minimal("qwen3", R"("num_key_value_heads":8,"layer_types":["chunked_attention"])"),
                "cfg.json: field `layer_types`[0] = \"chunked_attention\" is not supported; supported layer types: "
                "full_attention, sliding_attention"},
        Refusal{minimal("qwen3", R"("num_key_value_heads":8,"layer_types":["full_attention","full_attention"])"),
                "cfg.json: field `layer_types` must be a list of 1 entries (num_hidden_layers), got 2 entries"},
        Refusal{minimal("qwen3", R"("num_key_value_heads":8,"layer_types":["sliding_attention"])"),
                "cfg.json: field `layer_types`[0] = \"sliding_attention\" disagrees with use_sliding_window / "
                "max_window_layers (full_attention); fix one of them"},
        Refusal{minimal("qwen3", R"("num_key_value_heads":8,"head_dim":null)"),
                "cfg.json: field `head_dim` is null; Qwen3 needs it (transformers' default is 128)"},
        Refusal{minimal("llama", R"("rope_scaling":{"factor":8.0,"rope_type":"dynamic"})"),
                "cfg.json: field `rope_scaling`: rope_type \"dynamic\" is not supported; supported rope types: "
                "default, llama3, yarn"},
        Refusal{minimal("llama", R"("rope_parameters":{"rope_theta":1e4,"rope_type":"longrope"})"),
                "cfg.json: field `rope_parameters`: rope_type \"longrope\" is not supported; supported rope types: "
                "default, llama3, yarn"},
        Refusal{minimal("llama", R"("rope_scaling":{"factor":8.0})"),
                "cfg.json: field `rope_scaling` has no `rope_type`; supported rope types: default, llama3, yarn"},
        Refusal{minimal("llama", R"("rope_scaling":{"factor":8.0,"rope_type":"llama3"})"),
                "cfg.json: rope_type \"llama3\" needs field `rope_scaling.low_freq_factor`"},
        Refusal{minimal("llama", R"("rope_scaling":{"factor":8.0,"rope_type":"yarn","low_freq_factor":1})"),
                "cfg.json: field `rope_scaling.low_freq_factor` is not a parameter of rope_type \"yarn\" that lorafit "
                "implements; remove it or use a model whose config does not need it"},
        Refusal{minimal("llama", R"("rope_scaling":{"type":"yarn","rope_type":"llama3"})"),
                "cfg.json: fields `rope_scaling.rope_type` = \"llama3\" and `rope_scaling.type` = \"yarn\" disagree; "
                "keep one"},
        Refusal{minimal("llama", R"("rope_theta":10000.0,"rope_parameters":{"rope_theta":500000.0,"rope_type":"default"})"),
                "cfg.json: fields `rope_theta` = 10000 and `rope_parameters.rope_theta` = 500000 disagree; keep one"},
        Refusal{minimal("llama", R"("rope_scaling":null,"rope_parameters":{"rope_theta":1e4,"rope_type":"yarn","factor":4})"),
                "cfg.json: fields `rope_scaling` (default (theta 10000)) and `rope_parameters` (yarn (theta 10000, "
                "factor 4)) disagree; keep one"},
        Refusal{minimal("llama", R"("rope_scaling":{"rope_type":"yarn","factor":2},"rope_parameters":{"rope_theta":1e4,"rope_type":"yarn","factor":4})"),
                "cfg.json: fields `rope_scaling` (yarn (theta 10000, factor 2)) and `rope_parameters` (yarn (theta "
                "10000, factor 4)) disagree; keep one"},
        Refusal{minimal("llama", R"("rope_parameters":{"rope_type":"default"})"),
                "cfg.json: missing field `rope_parameters.rope_theta`"},
        Refusal{minimal("llama", R"("rope_parameters":{"full_attention":{"rope_theta":1e4,"rope_type":"default"}})"),
                "cfg.json: field `rope_parameters` gives one rope per layer type; lorafit supports one rope for all "
                "layers"},
        Refusal{minimal("llama", R"("rope_parameters":{"rope_theta":1e4,"rope_type":"default","partial_rotary_factor":0.5})"),
                "cfg.json: field `rope_parameters.partial_rotary_factor` is not a parameter of rope_type \"default\" "
                "that lorafit implements; remove it or use a model whose config does not need it"},
        Refusal{minimal("llama", R"("torch_dtype":"bfloat16","dtype":"float16")"),
                "cfg.json: fields `torch_dtype` = \"bfloat16\" and `dtype` = \"float16\" disagree; keep one"},
        Refusal{minimal("llama", R"("attention_dropout":0.1)"),
                "cfg.json: field `attention_dropout` = 0.1 is not supported (transformers drops attention probabilities "
                "while training); set it to 0.0"},
        Refusal{minimal("llama", R"("partial_rotary_factor":0.5)"),
                "cfg.json: field `partial_rotary_factor` = 0.5 is not supported; lorafit rotates the whole head (1.0)"},
        Refusal{R"({"hidden_size":4})", "cfg.json: missing required field `model_type`"},
        Refusal{R"({"model_type":"llama","vocab_size":10})", "cfg.json: missing required field `hidden_size`"},
        Refusal{"[1]", "cfg.json: config.json is a JSON array, expected an object"},
        Refusal{minimal("llama", R"("hidden_act":"gelu")"),
                "cfg.json: field `hidden_act` = \"gelu\" is not supported; lorafit implements \"silu\" only"},
        Refusal{minimal("llama", R"("rope_scaling":2)"),
                "cfg.json: field `rope_scaling` = 2 must be an object or null"},
        Refusal{minimal("llama", R"("mlp_bias":true)"),
                "cfg.json: field `mlp_bias` = true is not supported; lorafit's MLP has no biases"},
        Refusal{minimal("llama", R"("rope_theta":NaN)"),
                "cfg.json: field `rope_theta` is NaN, which is not valid JSON (Python's json writes non-finite "
                "floats this way); replace it with a finite number"},
        Refusal{minimal("llama", R"("rms_norm_eps":Infinity)"),
                "cfg.json: field `rms_norm_eps` is Infinity, which is not valid JSON (Python's json writes "
                "non-finite floats this way); replace it with a finite number"},
        Refusal{minimal("llama", R"("rope_scaling":{"factor":-Infinity})"),
                "cfg.json: field `rope_scaling.factor` is -Infinity, which is not valid JSON (Python's json "
                "writes non-finite floats this way); replace it with a finite number"},
        Refusal{minimal("llama", R"("hidden_size":0)"), "cfg.json: duplicate key \"hidden_size\" (JSON readers would silently keep only the last one); "
                "remove the duplicate"},
        Refusal{R"({"model_type":"llama","vocab_size":10,"hidden_size":0,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":8})",
                "cfg.json: field `hidden_size` = 0 must be positive"},
        Refusal{minimal("llama", R"("num_key_value_heads":-2)"), "cfg.json: field `num_key_value_heads` = -2 must be positive"},
        Refusal{minimal("llama", R"("rope_theta":0)"), "cfg.json: field `rope_theta` = 0 must be a positive number"},
        Refusal{minimal("llama", R"("rms_norm_eps":-1e-6)"), "cfg.json: field `rms_norm_eps` = -1e-06 must be a positive number"},
        Refusal{R"({"model_type":"llama","vocab_size":10.5,"hidden_size":64,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":8})",
                "cfg.json: field `vocab_size` = 10.5 must be an integer"},
        Refusal{R"({"model_type":"llama","vocab_size":"10","hidden_size":64,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":8})",
                "cfg.json: field `vocab_size` = \"10\" must be an integer"},
        Refusal{R"({"model_type":"llama","vocab_size":10,"hidden_size":64,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":8000000000})",
                "cfg.json: field `num_attention_heads` = 8000000000 is out of range"},
        Refusal{R"({"model_type":"llama","vocab_size":10,"hidden_size":100,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":3})",
                "cfg.json: hidden_size (100) is not divisible by num_attention_heads (3) and no head_dim is given"},
        Refusal{R"({"model_type":"qwen2","vocab_size":10,"hidden_size":100,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":3,"num_key_value_heads":3,"head_dim":32})",
                "cfg.json: hidden_size (100) is not divisible by num_attention_heads (3)"},
        Refusal{minimal("qwen2", R"("num_key_value_heads":8,"head_dim":16)"),
                "cfg.json: field `head_dim` = 16 differs from hidden_size / num_attention_heads = 8, which "
                "transformers' Qwen2 uses (it ignores head_dim); fix the config"},
        Refusal{minimal("llama", R"("num_key_value_heads":3)"),
                "cfg.json: num_attention_heads (8) must be a multiple of num_key_value_heads (3)"},
        Refusal{minimal("llama", R"("head_dim":7)"), "cfg.json: head_dim 7 must be even (RoPE rotates pairs of halves)"},
        Refusal{minimal("llama", R"("tie_word_embeddings":"yes")"),
                "cfg.json: field `tie_word_embeddings` = \"yes\" must be true or false"},
        Refusal{minimal("mistral", R"("sliding_window":0)"), "cfg.json: field `sliding_window` = 0 must be positive"},
        Refusal{minimal("llama", R"("eos_token_id":[1,"x"])"), "cfg.json: field `eos_token_id` = \"x\" must be an integer"}));

TEST(ModelConfig, InvalidJsonNamesThePosition) {
  std::string e = error_of(R"({"model_type": "llama",)");
  // Our own position and nlohmann's reason, without its "[json.exception.parse_error.101]" tag.
  EXPECT_EQ(e, "cfg.json: not valid JSON at line 1, column 24 (reading field `model_type`): syntax error while "
               "parsing object key - unexpected end of input; expected string literal");
}

TEST(ModelConfig, NumberTooLargeForADouble) {
  EXPECT_EQ(error_of(minimal("llama", R"("rope_theta":1e400)")),
            "cfg.json: 1e400 in field `rope_theta` is too large for a 64-bit float; use a smaller number");
}

TEST(ModelConfig, MissingFileNamed) {
  try {
    (void)load_model_config("/nonexistent/config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/config.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace lorafit
