// The LoRA parameter table (one flat buffer, PEFT keys and shapes), PEFT's initialisation
// statistics, and the PEFT adapter folder: adapter_config.json byte-identical to what PEFT
// 0.13.2 writes, adapter_model.safetensors round trip, and the load errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <set>

#include "formats/safetensors.h"
#include "lora/lora_adapter.h"
#include "lora/lora_params.h"
#include "util/error.h"

namespace lorafit {
namespace {

ModelConfig model(int64_t C = 64) {
  ModelConfig c;
  c.hidden_size = static_cast<int>(C);
  c.intermediate_size = 96;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = static_cast<int>(C / 4);
  c.vocab_size = 50;
  return c;
}

LoraConfig cfg(const std::string& target, int r = 8) {
  LoraConfig c;
  c.r = r;
  c.alpha = 16;
  c.dropout = 0.05;
  c.target = parse_lora_target(target);
  return c;
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

TEST(LoraParams, TableIsContiguousWithPeftKeys) {
  auto be = make_backend("cpu");
  LoraParams p(*be, cfg("all-linear"), model());
  ASSERT_EQ(p.tensors().size(), 28u);  // 2 layers × 7 modules × (A, B)
  int64_t off = 0;
  for (const LoraTensor& t : p.tensors()) {
    EXPECT_EQ(t.offset, off) << t.key;
    off += t.numel();
  }
  EXPECT_EQ(off, p.num_params());
  EXPECT_EQ(p.tensors()[0].key, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  EXPECT_EQ(p.tensors()[27].key, "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
  EXPECT_EQ(p.tensors()[27].rows, 64);  // B (O, r) of down_proj: O = C
  EXPECT_EQ(p.tensors()[26].cols, 96);  // A (r, I) of down_proj: I = F
  // Sections are P floats apart and the per-module views point into them.
  const LoraWeights* w = p.weights(1, Proj::Down);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->A.as<float>(), p.params().as<float>() + p.tensors()[26].offset);
  EXPECT_EQ(w->dB.as<float>(), p.grads().as<float>() + p.tensors()[27].offset);
  EXPECT_EQ(p.adam_v().as<float>(), p.params().as<float>() + 3 * p.num_params());
  EXPECT_FLOAT_EQ(w->scale, 2.f);  // 16 / 8
  LoraParams qv(*be, cfg("q_proj,v_proj"), model());
  EXPECT_EQ(qv.weights(0, Proj::K), nullptr);
}

// kaiming_uniform(a=√5) on (r, I) is U(−1/√I, 1/√I): every value inside the bound, mean 0 and
// variance bound²/3 within 5 standard errors (n ≥ 3000 values per check); B exactly 0.
TEST(LoraParams, PeftInitStatistics) {
  auto be = make_backend("cpu");
  LoraParams p(*be, cfg("all-linear"), model());
  lora_init_peft(p, 42, false);
  const std::vector<float> h = p.download_params();
  for (const LoraTensor& t : p.tensors()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(t.cols));
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double v = h[static_cast<size_t>(t.offset + i)];
      if (t.is_B) {
        ASSERT_EQ(v, 0.0) << t.key;
        continue;
      }
      ASSERT_LE(std::fabs(v), bound) << t.key;
      s += v;
      s2 += v * v;
    }
    if (t.is_B) continue;
    const double n = static_cast<double>(t.numel()), var = bound * bound / 3;
    // mean: sd = √(var/n); second moment: Var(v²) = E v⁴ − var² = bound⁴/5 − bound⁴/9.
    EXPECT_NEAR(s / n, 0.0, 5 * std::sqrt(var / n)) << t.key;
    EXPECT_NEAR(s2 / n, var, 5 * std::sqrt((1.0 / 5 - 1.0 / 9) * std::pow(bound, 4) / n)) << t.key;
  }
  // Deterministic in the seed; another seed differs.
  LoraParams q(*be, cfg("all-linear"), model());
  lora_init_peft(q, 42, false);
  EXPECT_EQ(q.download_params(), h);
  lora_init_peft(q, 43, false);
  EXPECT_NE(q.download_params(), h);
}

TEST(LoraParams, Bf16BaseRoundsInitialA) {
  auto be = make_backend("cpu");
  LoraParams f(*be, cfg("q_proj"), model()), b(*be, cfg("q_proj"), model());
  lora_init_peft(f, 7, false);
  lora_init_peft(b, 7, true);
  const auto hf = f.download_params(), hb = b.download_params();
  for (size_t i = 0; i < hf.size(); ++i) {
    EXPECT_EQ(hb[i], bf16_to_f32(f32_to_bf16(hf[i])));  // the same draw, rounded once to bf16
  }
}

// What PEFT 0.13.2 writes for LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16,
// lora_dropout=0.05, target_modules=["q_proj","v_proj"], base_model_name_or_path="models/tiny")
// .save_pretrained() (printed with the pinned stack; target_modules is a set there, we sort).
const char* kPeftConfig =
    "{\n  \"alpha_pattern\": {},\n  \"auto_mapping\": null,\n  \"base_model_name_or_path\": \"models/tiny\",\n"
    "  \"bias\": \"none\",\n  \"fan_in_fan_out\": false,\n  \"inference_mode\": true,\n  \"init_lora_weights\": true,\n"
    "  \"layer_replication\": null,\n  \"layers_pattern\": null,\n  \"layers_to_transform\": null,\n"
    "  \"loftq_config\": {},\n  \"lora_alpha\": 16,\n  \"lora_dropout\": 0.05,\n  \"megatron_config\": null,\n"
    "  \"megatron_core\": \"megatron.core\",\n  \"modules_to_save\": null,\n  \"peft_type\": \"LORA\",\n  \"r\": 8,\n"
    "  \"rank_pattern\": {},\n  \"revision\": null,\n  \"target_modules\": [\n    \"q_proj\",\n    \"v_proj\"\n  ],\n"
    "  \"task_type\": \"CAUSAL_LM\",\n  \"use_dora\": false,\n  \"use_rslora\": false\n}";

TEST(LoraAdapter, ConfigTextMatchesPeft) {
  auto be = make_backend("cpu");
  LoraParams p(*be, cfg("v_proj,q_proj"), model());
  EXPECT_EQ(peft_adapter_config_json(p, "models/tiny"), kPeftConfig);
  // all-linear is saved as the names it expanded to, like PEFT.
  LoraParams a(*be, cfg("all-linear"), model());
  EXPECT_NE(peft_adapter_config_json(a, "m").find("\"target_modules\": [\n    \"down_proj\",\n    \"gate_proj\",\n"
                                                  "    \"k_proj\",\n    \"o_proj\",\n    \"q_proj\",\n    \"up_proj\",\n"
                                                  "    \"v_proj\"\n  ]"),
            std::string::npos);
}

fs::path temp_dir(const char* name) {
  fs::path d = fs::temp_directory_path() / (std::string("lorafit_h6_") + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

TEST(LoraAdapter, SaveLoadRoundTrip) {
  auto be = make_backend("cpu");
  LoraConfig c = cfg("all-linear", 4);
  c.use_rslora = true;
  LoraParams p(*be, c, model());
  std::vector<float> h(static_cast<size_t>(p.num_params()));
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<float>(i % 1000) * 0.001f - 0.5f;
  p.upload_params(h);
  const fs::path dir = temp_dir("roundtrip");
  save_peft_adapter(dir, p, "base");
  SafetensorsFile f(dir / "adapter_model.safetensors");
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  ASSERT_EQ(f.tensors().size(), p.tensors().size());
  const TensorInfo* b = f.find("base_model.model.model.layers.1.mlp.up_proj.lora_B.weight");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::F32);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{96, 4}));

  const LoraConfig back = load_peft_adapter_config(dir);
  EXPECT_EQ(back.r, 4);
  EXPECT_EQ(back.alpha, 16);
  EXPECT_EQ(back.dropout, 0.05);
  EXPECT_TRUE(back.use_rslora);
  LoraParams q(*be, back, model());
  ASSERT_EQ(q.num_params(), p.num_params());
  load_peft_adapter_weights(dir, q);
  EXPECT_EQ(q.download_params(), h);
  fs::remove_all(dir);
}

TEST(LoraAdapter, LoadErrors) {
  auto be = make_backend("cpu");
  LoraParams p(*be, cfg("q_proj,v_proj", 4), model());
  const fs::path dir = temp_dir("errors");
  save_peft_adapter(dir, p, "base");
  // Loading into a table with another rank: the first tensor's shape is named.
  LoraParams r8(*be, cfg("q_proj,v_proj", 8), model());
  EXPECT_EQ(error_of([&] { load_peft_adapter_weights(dir, r8); }),
            (dir / "adapter_model.safetensors").string() +
                ": tensor 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' has shape [4, 64], "
                "expected [8, 64] (r = 8); was the adapter trained with another rank or base model?");
  // Loading into a table with more modules: the missing one is named.
  LoraParams more(*be, cfg("q_proj,k_proj,v_proj", 4), model());
  EXPECT_EQ(error_of([&] { load_peft_adapter_weights(dir, more); }),
            (dir / "adapter_model.safetensors").string() +
                ": tensor 'base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight' is missing; the "
                "adapter must have lora_A/lora_B for every target module (r = 4)");
  write_file_atomic(dir / "adapter_config.json", R"({"peft_type": "LORA", "r": 0, "lora_alpha": 8, "target_modules": ["q_proj"]})");
  EXPECT_EQ(error_of([&] { load_peft_adapter_config(dir); }),
            (dir / "adapter_config.json").string() +
                ": lora_r = 0: the LoRA rank must be a positive integer (e.g. 8, 16, 64)");
  // DoRA is read; the one combination PEFT 0.13.2 refuses (megatron) is refused with its reason.
  write_file_atomic(dir / "adapter_config.json", R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_dora": true, "target_modules": ["q_proj"]})");
  EXPECT_TRUE(load_peft_adapter_config(dir).use_dora);
  write_file_atomic(dir / "adapter_config.json", R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_dora": "yes", "target_modules": ["q_proj"]})");
  EXPECT_EQ(error_of([&] { load_peft_adapter_config(dir); }),
            (dir / "adapter_config.json").string() + ": field \"use_dora\" must be true or false");
  write_file_atomic(dir / "adapter_config.json", R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_dora": true, "megatron_config": {"tp": 2}, "target_modules": ["q_proj"]})");
  EXPECT_EQ(error_of([&] { load_peft_adapter_config(dir); }),
            (dir / "adapter_config.json").string() +
                ": use_dora true with a megatron_config: DoRA does not support megatron_core, please set "
                "`use_dora=False` (PEFT's reason)");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lorafit
