// config.json's quantization_config (formats/bnb_checkpoint.h): bitsandbytes 4-bit is read (as
// transformers 4.57.6's BitsAndBytesConfig, whose config.json the fixtures in
// tests/fixtures/models/*-bnb-* hold), every other scheme refused with an exact message; the
// skip-module rule of transformers' replace_with_bnb_linear; --quantization_bit values.
#include <gtest/gtest.h>

#include "formats/bnb_checkpoint.h"
#include "formats/model_config.h"
#include "util/error.h"

namespace lorafit {
namespace {

const std::string kLabel = "/m/config.json";

// A Qwen2 config.json with `quant` as its quantization_config (JSON text).
std::string config_with(const std::string& quant) {
  return R"({"model_type": "qwen2", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48,
             "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "torch_dtype": "bfloat16",
             "quantization_config": )" + quant + "}";
}

std::string error_of(const std::string& quant) {
  try {
    parse_model_config(config_with(quant), kLabel);
    return "(accepted)";
  } catch (const Error& e) {
    return e.what();
  }
}

const std::string kSupported =
    "lorafit loads bitsandbytes 4-bit checkpoints (quant_method \"bitsandbytes\" with load_in_4bit, nf4 or fp4), or "
    "quantizes a 16/32-bit model itself with --quantization_bit 4; use the unquantized model folder";

TEST(BnbCheckpoint, ReadsTransformersBitsAndBytesConfig) {
  // As transformers 4.57.6 saves BitsAndBytesConfig(load_in_4bit=True, nf4, double quant, bf16).
  const ModelConfig c = parse_model_config(config_with(R"({
    "_load_in_4bit": true, "_load_in_8bit": false, "bnb_4bit_compute_dtype": "bfloat16",
    "bnb_4bit_quant_storage": "uint8", "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": true,
    "llm_int8_enable_fp32_cpu_offload": false, "llm_int8_has_fp16_weight": false, "llm_int8_skip_modules": null,
    "llm_int8_threshold": 6.0, "load_in_4bit": true, "load_in_8bit": false, "quant_method": "bitsandbytes"})"),
                                           kLabel);
  ASSERT_TRUE(c.bnb4.has_value());
  EXPECT_EQ(c.bnb4->quant_type, Quant4Type::NF4);
  EXPECT_TRUE(c.bnb4->double_quant);
  EXPECT_FALSE(c.bnb4->skip_modules.has_value());
  EXPECT_EQ(c.bnb4->compute_dtype, "bfloat16");
  EXPECT_EQ(c.bnb4->quant_storage, "uint8");
  // BitsAndBytesConfig's defaults: fp4, no double quantization.
  const ModelConfig d = parse_model_config(config_with(R"({"load_in_4bit": true})"), kLabel);
  ASSERT_TRUE(d.bnb4.has_value());
  EXPECT_EQ(d.bnb4->quant_type, Quant4Type::FP4);
  EXPECT_FALSE(d.bnb4->double_quant);
  // No quantization_config, or null: an ordinary folder.
  EXPECT_FALSE(parse_model_config(config_with("null"), kLabel).bnb4.has_value());
}

TEST(BnbCheckpoint, SkipModulesFollowReplaceWithBnbLinear) {
  Bnb4bitConfig c;  // llm_int8_skip_modules null: get_keys_to_not_convert keeps the lm head only
  EXPECT_TRUE(bnb_skips_module(c, "lm_head"));
  EXPECT_FALSE(bnb_skips_module(c, "model.layers.0.self_attn.q_proj"));
  c.skip_modules = std::vector<std::string>{"model.layers.1.mlp.down_proj", "o_proj", "layers.2"};
  EXPECT_FALSE(bnb_skips_module(c, "lm_head"));  // a given list replaces the default
  EXPECT_TRUE(bnb_skips_module(c, "model.layers.1.mlp.down_proj"));   // the full name
  EXPECT_FALSE(bnb_skips_module(c, "model.layers.11.mlp.down_proj"));
  EXPECT_TRUE(bnb_skips_module(c, "model.layers.5.self_attn.o_proj"));  // the module's own name
  EXPECT_TRUE(bnb_skips_module(c, "model.layers.2.mlp.up_proj"));       // "layers.2." inside the name
  EXPECT_FALSE(bnb_skips_module(c, "model.layers.12.mlp.up_proj"));
}

TEST(BnbCheckpoint, StateNamesAreTransformersBnbKeys) {
  Bnb4bitConfig c;
  c.quant_type = Quant4Type::FP4;
  EXPECT_EQ(bnb4_state_names("w", c),
            (std::vector<std::string>{"w.absmax", "w.quant_map", "w.quant_state.bitsandbytes__fp4"}));
  c.quant_type = Quant4Type::NF4;
  c.double_quant = true;
  EXPECT_EQ(bnb4_state_names("w", c), (std::vector<std::string>{"w.absmax", "w.quant_map", "w.nested_absmax",
                                                                "w.nested_quant_map", "w.quant_state.bitsandbytes__nf4"}));
}

struct RefusedCase {
  std::string quant, message;
};

class Refused : public testing::TestWithParam<RefusedCase> {};

TEST_P(Refused, WithExactMessage) { EXPECT_EQ(error_of(GetParam().quant), GetParam().message); }

std::string method_msg(const std::string& method, const std::string& what) {
  return "/m/config.json: quantization_config has quant_method \"" + method + "\" (" + what +
         "), which lorafit does not support; " + kSupported;
}

INSTANTIATE_TEST_SUITE_P(
    QuantMethods, Refused,
    testing::Values(
        RefusedCase{R"({"load_in_8bit": true, "load_in_4bit": false, "quant_method": "bitsandbytes"})",
                    "/m/config.json: quantization_config is bitsandbytes 8-bit (quant_method \"bitsandbytes\", "
                    "load_in_8bit true), which lorafit does not support; " + kSupported},
        RefusedCase{R"({"bits": 4, "group_size": 128, "quant_method": "gptq", "desc_act": false})",
                    method_msg("gptq", "a GPTQ checkpoint")},
        RefusedCase{R"({"bits": 4, "group_size": 128, "quant_method": "awq", "version": "gemm"})",
                    method_msg("awq", "an AWQ checkpoint")},
        RefusedCase{R"({"quant_method": "aqlm", "nbits_per_codebook": 16})", method_msg("aqlm", "an AQLM checkpoint")},
        RefusedCase{R"({"quant_method": "eetq", "weights": "int8"})", method_msg("eetq", "an EETQ checkpoint")},
        RefusedCase{R"({"quant_method": "hqq", "quant_config": {}})", method_msg("hqq", "an HQQ checkpoint")},
        RefusedCase{R"({"quant_method": "fp8", "activation_scheme": "dynamic"})", method_msg("fp8", "an FP8 checkpoint")},
        RefusedCase{R"({"quant_method": "compressed-tensors", "format": "pack-quantized"})",
                    method_msg("compressed-tensors", "a compressed-tensors checkpoint")},
        RefusedCase{R"({"quant_method": "torchao", "quant_type": {}})", method_msg("torchao", "a torchao checkpoint")},
        RefusedCase{R"({"quant_method": "mxfp4"})", method_msg("mxfp4", "an MXFP4 checkpoint")},
        RefusedCase{R"({"quant_method": "something_new"})",
                    method_msg("something_new", "a quantization scheme lorafit does not know")},
        RefusedCase{R"({"bits": 4})",
                    "/m/config.json: quantization_config has no quant_method (and no load_in_4bit); " + kSupported},
        RefusedCase{R"({"quant_method": "bitsandbytes", "load_in_4bit": false, "load_in_8bit": false})",
                    "/m/config.json: quantization_config has quant_method \"bitsandbytes\" but neither load_in_4bit nor "
                    "load_in_8bit is true; " + kSupported},
        RefusedCase{R"({"load_in_4bit": true, "bnb_4bit_quant_type": "int4"})",
                    "/m/config.json: field `quantization_config.bnb_4bit_quant_type` = \"int4\"; bitsandbytes 4-bit "
                    "types are nf4 and fp4"},
        RefusedCase{R"({"load_in_4bit": true, "llm_int8_skip_modules": "lm_head"})",
                    "/m/config.json: field `quantization_config.llm_int8_skip_modules` must be a list of names"},
        RefusedCase{R"([1])", "/m/config.json: field `quantization_config` is a JSON array, expected an object"}));

// transformers decides by load_in_4bit first: a 4-bit flag wins over another quant_method name.
TEST(BnbCheckpoint, LoadIn4bitDecidesAsTransformersDoes) {
  EXPECT_EQ(error_of(R"({"load_in_4bit": true, "load_in_8bit": true, "quant_method": "bitsandbytes"})"), "(accepted)");
}

TEST(BnbCheckpoint, QuantizationBitOtherThan4IsRefused) {
  for (int64_t bit : {8, 2, 3, 16, -1}) {
    try {
      parse_quant_config(bit, "nf4", true, "--");
      ADD_FAILURE() << bit << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()),
                fmt::format("--quantization_bit {}: only 4-bit quantization (bitsandbytes NF4/FP4, QLoRA) is "
                            "implemented; use --quantization_bit 4, or leave it unset for 16-bit weights as stored",
                            bit));
    }
  }
  EXPECT_TRUE(parse_quant_config(4, "fp4", false, "--").enabled);
  EXPECT_FALSE(parse_quant_config(0, "nf4", true, "--").enabled);
}

}  // namespace
}  // namespace lorafit
