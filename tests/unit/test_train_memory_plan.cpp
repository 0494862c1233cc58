// The pre-flight memory plan of a QLoRA run, from config.json alone: Qwen2.5-14B (its published
// config.json, tests/fixtures/models/qwen2.5-14b-config), batch 2, T 1024, gradient
// checkpointing, bf16, LoRA r 64 on all seven projections (docs/DESIGN.md's reference recipe), NF4
// with double quantization: the plan fits a 24 GB card. The 4-bit bytes are recomputed here
// from the shapes (n/2 code bytes, one absmax byte per 64, one fp32 per 64·256) independently
// of the library's quant4_nbytes.
#include <gtest/gtest.h>

#include <cmath>

#include "train/trainer.h"

namespace lorafit {
namespace {

const fs::path kDir = fs::path(LORAFIT_FIXTURES) / "models" / "qwen2.5-14b-config";

TrainSettings qlora_settings() {
  TrainSettings s;
  s.model_name_or_path = kDir.string();
  s.per_device_train_batch_size = 2;
  s.gradient_checkpointing = true;
  s.lora_r = 64;
  s.lora_target = "all-linear";
  s.quantization_bit = 4;
  s.quantization_type = "nf4";
  s.double_quantization = true;
  return s;
}

TEST(MemoryPlan, Qwen14BQloraFits24GB) {
  const MemoryPlan p = plan_memory(kDir, qlora_settings(), 1024, DType::BF16);
  const double C = 5120, F = 13824, KV = 8 * 128, V = 152064, L = 48;
  const double mats[7][2] = {{C, C}, {KV, C}, {KV, C}, {C, C}, {F, C}, {F, C}, {C, F}};
  double q = 0, per_layer = 0;
  for (const auto& m : mats) {
    const double n = m[0] * m[1], blocks = std::ceil(n / 64);
    q += L * (n / 2 + blocks + 4 * std::ceil(blocks / 256));
    per_layer += n;
  }
  EXPECT_DOUBLE_EQ(p.quantized, q);
  EXPECT_DOUBLE_EQ(p.dequant_scratch, 2 * per_layer);  // one layer in bf16
  // The rest in bf16: embedding + lm head, 2 norms per layer + the final one, q/k/v biases.
  const double rest = 2 * (2 * V * C + L * (2 * C + C + 2 * KV) + C);
  EXPECT_DOUBLE_EQ(p.weights, rest + q + p.dequant_scratch);
  const double GB24 = 24e9;
  EXPECT_LT(p.total(), GB24) << "weights " << p.weights / 1e9 << " GB, LoRA+Adam " << p.lora_optimizer / 1e9
                             << " GB, activations " << p.activations / 1e9 << " GB";
  // Not quantized, the 14.8 B bf16 weights alone (29.5 GB) would not fit: the plan's fit is the
  // quantization's doing.
  EXPECT_GT(rest + 2 * L * per_layer, GB24);
}

TEST(MemoryPlan, FourBitFp4WithoutDoubleQuantCountsFp32Absmax) {
  TrainSettings s = qlora_settings();
  s.quantization_type = "fp4";
  s.double_quantization = false;
  const MemoryPlan p = plan_memory(kDir, s, 1024, DType::BF16);
  const MemoryPlan dq = plan_memory(kDir, qlora_settings(), 1024, DType::BF16);
  // absmax in fp32 (4 bytes per 64 values) instead of 1 byte + 4 per 16384: +3/64 − 4/16384 byte per value.
  EXPECT_GT(p.quantized, dq.quantized);
  EXPECT_NEAR((p.quantized - dq.quantized) / (48 * dq.dequant_scratch / 2), 3.0 / 64 - 4.0 / 16384, 1e-6);
}

}  // namespace
}  // namespace lorafit
