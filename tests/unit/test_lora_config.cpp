// LoRA settings: lora_target parsing and PEFT's matching rules, the scale (rsLoRA), and the
// errors for bad settings (exact messages).
#include <gtest/gtest.h>

#include <cmath>

#include "lora/lora_config.h"
#include "util/error.h"

namespace lorafit {
namespace {

ModelConfig tiny() {
  ModelConfig c;
  c.hidden_size = 8;
  c.intermediate_size = 20;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 3;  // H·D = 12 ≠ C: in/out features must follow head_dim, not hidden
  c.vocab_size = 50;
  return c;
}

std::vector<std::string> names_of(const std::vector<LinearModule>& m) {
  std::vector<std::string> r;
  for (const auto& x : m) r.push_back(x.name);
  return r;
}

TEST(LoraConfig, ModulesAndShapes) {
  const auto mods = linear_modules(tiny());
  ASSERT_EQ(mods.size(), 14u);
  EXPECT_EQ(mods[0].name, "model.layers.0.self_attn.q_proj");
  EXPECT_EQ(mods[13].name, "model.layers.1.mlp.down_proj");
  // (in, out) per projection: q (8→12), k, v (8→6), o (12→8), gate, up (8→20), down (20→8)
  const int64_t want[7][2] = {{8, 12}, {8, 6}, {8, 6}, {12, 8}, {8, 20}, {8, 20}, {20, 8}};
  for (int p = 0; p < 7; ++p) {
    EXPECT_EQ(mods[static_cast<size_t>(p)].in, want[p][0]) << p;
    EXPECT_EQ(mods[static_cast<size_t>(p)].out, want[p][1]) << p;
  }
}

TEST(LoraConfig, NamesMatchExactlyOrAsDottedSuffix) {
  const LoraTarget t = parse_lora_target("q_proj, mlp.down_proj");
  ASSERT_EQ(t.kind, LoraTarget::Kind::Names);
  EXPECT_TRUE(lora_target_matches(t, "model.layers.3.self_attn.q_proj"));
  EXPECT_TRUE(lora_target_matches(t, "model.layers.3.mlp.down_proj"));
  EXPECT_TRUE(lora_target_matches(t, "q_proj"));
  EXPECT_FALSE(lora_target_matches(t, "model.layers.3.self_attn.xq_proj"));  // suffix must follow a dot
  EXPECT_FALSE(lora_target_matches(t, "model.layers.3.self_attn.k_proj"));
}

TEST(LoraConfig, AllLinearAndRegex) {
  LoraConfig c;
  c.target = parse_lora_target("all-linear");
  EXPECT_EQ(select_lora_modules(c, tiny()).size(), 14u);
  c.target = parse_lora_target(R"(.*\.1\.self_attn\.(q|v)_proj)");
  ASSERT_EQ(c.target.kind, LoraTarget::Kind::Regex);
  EXPECT_EQ(names_of(select_lora_modules(c, tiny())),
            (std::vector<std::string>{"model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"}));
  // A regex must match the whole name (re.fullmatch), not a part of it.
  const LoraTarget part = parse_lora_target(R"(self_attn\.q_proj)");
  ASSERT_EQ(part.kind, LoraTarget::Kind::Regex);
  EXPECT_FALSE(lora_target_matches(part, "model.layers.0.self_attn.q_proj"));
  EXPECT_TRUE(lora_target_matches(part, "self_attn.q_proj"));
}

TEST(LoraConfig, DefaultTargetsAreQAndV) {
  LoraConfig c;
  EXPECT_EQ(names_of(select_lora_modules(c, tiny())),
            (std::vector<std::string>{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                                      "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"}));
}

TEST(LoraConfig, Scale) {
  LoraConfig c;
  c.r = 64;
  c.alpha = 16;
  EXPECT_EQ(c.scale(), 0.25);
  c.use_rslora = true;
  EXPECT_EQ(c.scale(), 2.0);  // 16/√64
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(LoraConfig, TargetMatchingNothingListsTheModules) {
  LoraConfig c;
  c.target = parse_lora_target("query,value");
  EXPECT_EQ(error_of([&] { select_lora_modules(c, tiny()); }),
            "lora_target query,value matches no module of the model; the Linear modules are "
            "model.layers.{0..1}.{self_attn.q_proj, self_attn.k_proj, self_attn.v_proj, self_attn.o_proj, "
            "mlp.gate_proj, mlp.up_proj, mlp.down_proj} (lm_head is never adapted); use names such as "
            "q_proj,v_proj, all-linear, or a regex over the full names");
}

TEST(LoraConfig, BadSettings) {
  LoraConfig c;
  c.r = 0;
  EXPECT_EQ(error_of([&] { c.validate(); }), "lora_r = 0: the LoRA rank must be a positive integer (e.g. 8, 16, 64)");
  c.r = -3;
  EXPECT_EQ(error_of([&] { select_lora_modules(c, tiny()); }),
            "lora_r = -3: the LoRA rank must be a positive integer (e.g. 8, 16, 64)");
  c.r = 8;
  c.dropout = 1.0;
  EXPECT_EQ(error_of([&] { c.validate(); }), "lora_dropout = 1: expected a probability in [0, 1) (e.g. 0.05 or 0.1)");
  c.dropout = -0.1;
  EXPECT_EQ(error_of([&] { c.validate(); }), "lora_dropout = -0.1: expected a probability in [0, 1) (e.g. 0.05 or 0.1)");
  c.dropout = NAN;
  EXPECT_EQ(error_of([&] { c.validate(); }), "lora_dropout = nan: expected a probability in [0, 1) (e.g. 0.05 or 0.1)");
  EXPECT_EQ(error_of([] { parse_lora_target(" "); }),
            "lora_target is empty: expected module names (q_proj,v_proj), all-linear, or a regex");
  EXPECT_EQ(error_of([] { parse_lora_target("q_proj,,v_proj"); }),
            "lora_target 'q_proj,,v_proj': empty module name between commas; write e.g. q_proj,v_proj");
  EXPECT_NE(error_of([] { parse_lora_target("(q_proj"); }).find("is neither a list of module names nor a valid regex"),
            std::string::npos);
}

}  // namespace
}  // namespace lorafit
