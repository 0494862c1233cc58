// Pre-quantized bitsandbytes 4-bit checkpoints (formats/bnb_checkpoint.h) against transformers
// 4.57.6 + bitsandbytes 0.50.2 (fixtures by tools/golden/make_prequant_fixtures.py):
// tests/fixtures/models/{qwen2-bnb-nf4-dq, llama-bnb-fp4} as save_pretrained wrote them, and
// tests/fixtures/prequant/<name>.safetensors with the reloaded model's logits and bitsandbytes'
// dequantized layer-0 weights.
//
// The dequantized weights must equal bitsandbytes' bit for bit (code[q]·absmax in fp32, the
// nested absmax code8[q8]·nested + offset): then the only differences left are accumulation
// order and the compute dtype, and the bounds are those of test_model_forward.cpp:
//  - llama-bnb-fp4 (fp32 model, compute dtype float32): both sides in fp32, a layer adds at most
//    e_layer = (3C + D + T + H·D + C + F + 16)·eps32 relative error on each side, the final norm
//    and the lm head (C + 2)·eps32 each: bound = 2·(L·e_layer + 2·(C + 2)·eps32).
//  - qwen2-bnb-nf4-dq (bf16 model, compute dtype bfloat16): both sides round every activation
//    to bf16 (u = 2^-9), about 12 roundings per layer and 3 outside, each side within
//    (12·L + 3)·u of the exact values: bound = 2·(12·L + 3)·2^-9 = (12·L + 3)·2^-8.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "backend_parity.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "util/error.h"

namespace lorafit {
namespace {

fs::path fixtures() { return fs::path(LORAFIT_FIXTURES); }

std::vector<float> to_f32(const void* p, DType t, size_t n) {
  std::vector<float> v(n);
  convert_to_f32(v.data(), p, t, n);
  return v;
}

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

struct Case {
  std::string name;
  DType act;
  int quantized;  // 4-bit Linear modules transformers made
};
const Case kCases[] = {{"qwen2-bnb-nf4-dq", DType::BF16, 14}, {"llama-bnb-fp4", DType::F32, 20}};

TEST(ModelPrequant, DequantizedWeightsEqualBitsandbytes) {
  auto be = make_backend("cpu");
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    Model m(*be, fixtures() / "models" / c.name, DType::F32);
    ASSERT_TRUE(m.config().bnb4.has_value());
    int n4 = 0, checked = 0;
    for (const ParamInfo& p : m.weights().params()) n4 += p.quant ? 1 : 0;
    EXPECT_EQ(n4, c.quantized);
    SafetensorsFile fx(fixtures() / "prequant" / (c.name + ".safetensors"));
    const LayerWeights w = m.weights().layer(0);
    const std::pair<const char*, Tensor> views[] = {{"self_attn.q_proj", w.q}, {"self_attn.k_proj", w.k},
                                                    {"self_attn.v_proj", w.v}, {"self_attn.o_proj", w.o},
                                                    {"mlp.gate_proj", w.gate}, {"mlp.up_proj", w.up},
                                                    {"mlp.down_proj", w.down}};
    for (const auto& [suffix, t] : views) {
      const TensorInfo* ref = fx.find(fmt::format("model.layers.0.{}.weight.dequant", suffix));
      ASSERT_NE(ref, nullptr) << suffix;
      ASSERT_EQ(t.dtype, DType::F32);
      ASSERT_EQ(static_cast<size_t>(t.numel()) * 4, ref->nbytes) << suffix;
      const auto* a = static_cast<const float*>(t.data);
      const auto* b = reinterpret_cast<const float*>(ref->data);
      int64_t first = -1, ndiff = 0;
      for (int64_t i = 0; i < t.numel(); ++i)
        if (std::memcmp(a + i, b + i, 4) != 0) {
          if (first < 0) first = i;
          ++ndiff;
        }
      EXPECT_EQ(ndiff, 0) << suffix << ": not bitsandbytes' values, first at " << first << ": "
                          << (first >= 0 ? a[first] : 0.f) << " vs " << (first >= 0 ? b[first] : 0.f);
      ++checked;
    }
    EXPECT_EQ(checked, 7);
  }
}

TEST(ModelPrequant, LogitsMatchTransformers) {
  auto be = make_backend("cpu");
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    Model m(*be, fixtures() / "models" / c.name, c.act);
    const ModelConfig& cfg = m.config();
    SafetensorsFile fx(fixtures() / "prequant" / (c.name + ".safetensors"));
    const TensorInfo* ids_t = fx.find("ids");
    ASSERT_TRUE(ids_t && ids_t->dtype == DType::I32 && ids_t->shape.size() == 2);
    const int64_t B = ids_t->shape[0], T = ids_t->shape[1], L = cfg.num_layers, V = cfg.vocab_size;
    std::vector<int32_t> ids(static_cast<size_t>(B * T));
    std::memcpy(ids.data(), ids_t->data, ids.size() * 4);

    ActivationArena acts(*be, cfg, B, T, static_cast<int>(L), nullptr, false, c.act);
    acts.set_tokens(ids);
    m.forward(acts);
    std::vector<float> logits(static_cast<size_t>(B * T * V));
    void* dl = be->alloc(logits.size() * 4);
    m.logits(Tensor(dl, DType::F32, {B * T, V}), acts.hidden());
    be->download(logits.data(), dl, logits.size() * 4);
    be->free(dl);

    const TensorInfo* ref = fx.find("logits");
    ASSERT_TRUE(ref && ref->nbytes == logits.size() * 4);
    const std::vector<float> want = to_f32(ref->data, DType::F32, logits.size());
    double bound = 0;
    if (c.act == DType::F32) {
      const double e = static_cast<double>(3 * cfg.hidden_size + cfg.head_dim + T + cfg.num_heads * cfg.head_dim +
                                           cfg.hidden_size + cfg.intermediate_size + 16) * testing::kEps32;
      bound = 2.0 * (static_cast<double>(L) * e + 2 * (cfg.hidden_size + 2) * testing::kEps32);
    } else {
      bound = (12.0 * static_cast<double>(L) + 3.0) * std::ldexp(1.0, -8);
    }
    const double err = rel_l2(logits, want);
    EXPECT_LE(err, bound);
    RecordProperty(c.name + "_logits", fmt::format("err {:.3e} bound {:.3e}", err, bound));
    std::printf("%s: logits rel err %.3e (bound %.3e)\n", c.name.c_str(), err, bound);
  }
}

}  // namespace
}  // namespace lorafit
