// RoPE frequencies against transformers 4.57.6's ROPE_INIT_FUNCTIONS
// (tests/fixtures/forward/rope_tables.json, tools/golden/make_forward_recent.py): published
// Llama 3.1 / 3.2 and Qwen2.5 / Qwen3 yarn settings and yarn edge cases (no truncation, betas,
// mscale, explicit attention_factor). lorafit computes every op in transformers' fp32 order.
// torch's fp32 `base ** tensor` is platform dependent (shown by the fixture script): on its
// default kernels (ATEN_CPU_CAPABILITY=default) it is std::pow, and there the tables are equal
// bit for bit (`inv_freq_no_avx`); on AVX2 / AVX512 it is Sleef_powf_u10, 1 ulp off the
// correctly rounded power at some exponents, so `inv_freq` (the AVX512 run) may differ by
// 1 ulp exactly where the two torch runs differ from each other, nowhere else. The attention
// factor is a double in transformers, compared after the one rounding to fp32 the kernels apply.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/model_config.h"
#include "formats/rope.h"

namespace lorafit {
namespace {

TEST(Rope, TablesEqualTransformers) {
  const fs::path p = fs::path(LORAFIT_FIXTURES) / "forward" / "rope_tables.json";
  std::ifstream f(p);
  ASSERT_TRUE(f) << p;
  const auto cases = nlohmann::json::parse(f);
  int yarn = 0, llama3 = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const ModelConfig cfg = parse_model_config(c["config"].dump(), c["name"].get<std::string>());
    ASSERT_EQ(cfg.head_dim, c["head_dim"].get<int>());
    EXPECT_EQ(rope_type_name(cfg.rope.type), c["rope_type"].get<std::string>());
    const RopeTable t = rope_table(cfg.rope, cfg.head_dim, cfg.max_position_embeddings);
    const auto ref = c["inv_freq_no_avx"].get<std::vector<double>>();
    const auto avx = c["inv_freq"].get<std::vector<double>>();
    ASSERT_EQ(t.inv_freq.size(), ref.size());
    ASSERT_EQ(avx.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      EXPECT_EQ(t.inv_freq[i], static_cast<float>(ref[i])) << i;
      const float a = static_cast<float>(avx[i]);
      if (ref[i] == avx[i]) EXPECT_EQ(t.inv_freq[i], a) << i;
      else EXPECT_TRUE(std::nextafter(a, 0.0f) == t.inv_freq[i] || std::nextafter(a, 1.0f) == t.inv_freq[i]) << i;
    }
    EXPECT_EQ(t.attention_scaling, static_cast<float>(c["attention_scaling"].get<double>()));
    yarn += cfg.rope.type == RopeType::Yarn;
    llama3 += cfg.rope.type == RopeType::Llama3;
  }
  EXPECT_GE(yarn, 4);
  EXPECT_GE(llama3, 2);
}

// The llama3 table really differs from the plain one (so the test above could fail).
TEST(Rope, Llama3ScalesOnlyLowFrequencies) {
  RopeConfig r;
  r.type = RopeType::Llama3;
  r.theta = 500000;
  r.factor = 8;
  r.original_max_position_embeddings = 8192;
  const RopeTable t = rope_table(r, 128, 131072);
  const std::vector<float> plain = rope_default_inv_freq(128, 500000);
  EXPECT_EQ(t.inv_freq.front(), plain.front());                // wavelength 2π: untouched
  EXPECT_FLOAT_EQ(t.inv_freq.back(), plain.back() / 8.0f);     // longest wavelengths: / factor
  EXPECT_EQ(t.attention_scaling, 1.0f);
}

}  // namespace
}  // namespace lorafit
