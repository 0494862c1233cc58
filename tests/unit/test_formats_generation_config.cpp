// generation_config.json parsing: transformers 4.46 defaults for absent fields (read from
// generation/configuration_utils.py), Qwen2.5-7B-Instruct's file, and exact error messages.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "formats/generation_config.h"
#include "util/error.h"

namespace lorafit {
namespace {

const char* kFile = "m/generation_config.json";

std::string error_of(const std::string& json) {
  try {
    parse_generation_config(json, kFile);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(GenerationConfig, Qwen25InstructFile) {
  // Verbatim from Qwen/Qwen2.5-7B-Instruct.
  const std::string text = R"({
  "bos_token_id": 151643,
  "pad_token_id": 151643,
  "do_sample": true,
  "eos_token_id": [
    151645,
    151643
  ],
  "repetition_penalty": 1.05,
  "temperature": 0.7,
  "top_p": 0.8,
  "top_k": 20,
  "transformers_version": "4.37.0"
}
)";
  GenerationConfig c = parse_generation_config(text, kFile);
  EXPECT_TRUE(c.do_sample);
  EXPECT_EQ(c.temperature, 0.7);
  EXPECT_EQ(c.top_k, 20);
  EXPECT_EQ(c.top_p, 0.8);
  EXPECT_FALSE(c.min_p.has_value());
  EXPECT_EQ(c.repetition_penalty, 1.05);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{151645, 151643}));
  EXPECT_EQ(c.bos_token_id, 151643);
  EXPECT_EQ(c.pad_token_id, 151643);
  EXPECT_EQ(c.max_length, 20);  // not in the file: transformers' default
  EXPECT_FALSE(c.max_new_tokens.has_value());
}

TEST(GenerationConfig, DefaultsAreTransformers446) {
  // GenerationConfig.__init__: do_sample False, temperature 1.0, top_k 50, top_p 1.0,
  // min_p None, repetition_penalty 1.0, max_length 20, max_new_tokens None, ids None.
  GenerationConfig c = parse_generation_config("{}", kFile);
  EXPECT_FALSE(c.do_sample);
  EXPECT_EQ(c.temperature, 1.0);
  EXPECT_EQ(c.top_k, 50);
  EXPECT_EQ(c.top_p, 1.0);
  EXPECT_FALSE(c.min_p.has_value());
  EXPECT_EQ(c.repetition_penalty, 1.0);
  EXPECT_EQ(c.max_length, 20);
  EXPECT_FALSE(c.max_new_tokens.has_value());
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_FALSE(c.bos_token_id.has_value());
  EXPECT_FALSE(c.pad_token_id.has_value());
}

TEST(GenerationConfig, ScalarEosIntegersAsFloatsMinPAndLimits) {
  GenerationConfig c = parse_generation_config(
      R"({"eos_token_id": 2, "temperature": 1, "min_p": 0.05, "max_new_tokens": 512,
          "max_length": 4096, "do_sample": true, "top_p": 1})",
      kFile);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{2}));
  EXPECT_EQ(c.temperature, 1.0);
  EXPECT_EQ(c.min_p, 0.05);
  EXPECT_EQ(c.max_new_tokens, 512);
  EXPECT_EQ(c.max_length, 4096);
  EXPECT_EQ(c.top_p, 1.0);
}

TEST(GenerationConfig, NullMeansOffAsInTransformers) {
  GenerationConfig c = parse_generation_config(
      R"({"temperature": null, "top_k": null, "top_p": null, "min_p": null,
          "repetition_penalty": null, "eos_token_id": null, "pad_token_id": null,
          "do_sample": null, "max_new_tokens": null})",
      kFile);
  EXPECT_EQ(c.temperature, 1.0);
  EXPECT_EQ(c.top_k, 0);
  EXPECT_EQ(c.top_p, 1.0);
  EXPECT_FALSE(c.min_p.has_value());
  EXPECT_EQ(c.repetition_penalty, 1.0);
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_FALSE(c.pad_token_id.has_value());
  EXPECT_FALSE(c.do_sample);
  EXPECT_FALSE(c.max_new_tokens.has_value());
}

TEST(GenerationConfig, TemperatureZeroIsGreedyOnlyWithoutSampling) {
  EXPECT_EQ(parse_generation_config(R"({"temperature": 0})", kFile).temperature, 0.0);
  EXPECT_EQ(error_of(R"({"temperature": 0, "do_sample": true})"),
            "m/generation_config.json: field `temperature` is 0 with `do_sample` true, which "
            "transformers refuses too; set do_sample to false for greedy decoding, or a temperature > 0");
}

TEST(GenerationConfig, BadValuesNameFileAndField) {
  EXPECT_EQ(error_of(R"({"temperature": -0.5})"),
            "m/generation_config.json: field `temperature` is -0.5; expected a number >= 0. "
            "Fix generation_config.json");
  EXPECT_EQ(error_of(R"({"top_p": 0})"),
            "m/generation_config.json: field `top_p` is 0; expected a number in (0, 1] "
            "(1 disables top-p). Fix generation_config.json");
  EXPECT_EQ(error_of(R"({"top_p": 1.5})"),
            "m/generation_config.json: field `top_p` is 1.5; expected a number in (0, 1] "
            "(1 disables top-p). Fix generation_config.json");
  EXPECT_EQ(error_of(R"({"top_k": -1})"),
            "m/generation_config.json: field `top_k` is -1; expected a whole number >= 0 "
            "(0 disables top-k). Fix generation_config.json");
  EXPECT_EQ(error_of(R"({"top_k": 2.5})"),
            "m/generation_config.json: field `top_k` is number 2.5; expected a whole number >= 0 "
            "(0 disables top-k). Fix generation_config.json");
  EXPECT_EQ(error_of(R"({"min_p": 1.5})"),
            "m/generation_config.json: field `min_p` is 1.5; expected a number in [0, 1] or null. "
            "Fix generation_config.json");
  EXPECT_EQ(error_of(R"({"repetition_penalty": 0})"),
            "m/generation_config.json: field `repetition_penalty` is 0; expected a number > 0 "
            "(1 disables it). Fix generation_config.json");
  EXPECT_EQ(error_of(R"({"do_sample": "yes"})"),
            "m/generation_config.json: field `do_sample` is string \"yes\"; expected true or false. "
            "Fix generation_config.json");
  EXPECT_EQ(error_of(R"({"temperature": "0.7"})"),
            "m/generation_config.json: field `temperature` is string \"0.7\"; expected a number >= 0. "
            "Fix generation_config.json");
  EXPECT_EQ(error_of(R"({"max_new_tokens": 0})"),
            "m/generation_config.json: field `max_new_tokens` is 0; expected a whole number >= 1 or "
            "null. Fix generation_config.json");
  EXPECT_EQ(error_of(R"({"eos_token_id": [151645, "x"]})"),
            "m/generation_config.json: field `eos_token_id` is string \"x\"; expected a token id "
            "(whole number >= 0) or a list of them. Fix generation_config.json");
  EXPECT_EQ(error_of(R"({"pad_token_id": 99999999999})"),
            "m/generation_config.json: field `pad_token_id` is 99999999999; expected a token id "
            "(whole number >= 0). Fix generation_config.json");
  EXPECT_EQ(error_of("[1, 2]"),
            "m/generation_config.json: expected a JSON object at the top level, found array; this "
            "is not a generation_config.json");
}

TEST(GenerationConfig, NonFiniteNumbersAreRefused) {
  // Python's json.dump writes NaN / Infinity bare; they are not JSON.
  std::string e = error_of(R"({"temperature": NaN})");
  EXPECT_NE(e.find("m/generation_config.json: field `temperature` is NaN"), std::string::npos) << e;
  e = error_of(R"({"top_p": Infinity})");
  EXPECT_NE(e.find("m/generation_config.json: field `top_p` is Infinity"), std::string::npos) << e;
  // A literal that overflows double: the strict JSON reader names the field it was reading.
  EXPECT_EQ(error_of(R"({"temperature": 1e999})"),
            "m/generation_config.json: 1e999 in field `temperature` is too large for a 64-bit float; use a smaller "
            "number");
}

TEST(GenerationConfig, LoadNamesMissingFile) {
  const std::filesystem::path p = "/nonexistent-dir-h7/generation_config.json";
  try {
    load_generation_config(p);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lorafit
