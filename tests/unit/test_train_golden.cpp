// 20 optimizer steps of LoRA training against transformers 4.46.3 Trainer + PEFT 0.13.2
// (fixtures from tools/golden/make_train_fixtures.py): same initial A (B = 0), same data order,
// dropout 0, accumulation 4 over variable-length right-padded micro-batches, linear schedule
// with warmup, clipping at 1.0, AdamW. Checked: every micro-batch loss, every LoRA gradient
// after the first window, each step's loss, grad_norm and learning rate, and the final A/B.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "backend/backend.h"
#include "model/model.h"
#include "train/train_step.h"
#include "unit/lora_train_fixture.h"

namespace lorafit {
namespace {

using testing::TrainCase;
using testing::model_rel_bound;

// Max over a tensor of |x|.
double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

class TrainGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainGolden, TwentyStepsMatchTrainer) {
  TrainCase tc(GetParam());
  auto be = make_backend("cpu");
  Model m(*be, tc.model_dir, DType::F32, tc.quant());  // QLoRA cases: 4-bit base weights
  ASSERT_EQ(m.weights().quantized(), tc.doc.contains("quant"));
  LoraParams p(*be, tc.lora_config(), m.config());
  tc.load_lora(p, "init");
  const auto& opt = tc.doc["optim"];
  TrainConfig cfg;
  cfg.learning_rate = opt["lr"].get<double>();
  cfg.beta1 = opt["betas"][0].get<double>();
  cfg.beta2 = opt["betas"][1].get<double>();
  cfg.adam_eps = opt["eps"].get<double>();
  cfg.weight_decay = opt["weight_decay"].get<double>();
  cfg.max_grad_norm = opt["max_grad_norm"].get<double>();
  cfg.gradient_checkpointing = true;
  const int num_steps = opt["num_steps"].get<int>(), ga = opt["grad_accum"].get<int>();
  const LrSchedule sched(parse_lr_scheduler_type(opt["scheduler"].get<std::string>()), cfg.learning_rate, num_steps,
                         opt["warmup_steps"].get<int64_t>());
  LoraTrainer trainer(m, p, cfg, sched);

  int64_t maxT = 0;
  for (int k = 0; k < tc.num_micro_batches(); ++k) maxT = std::max(maxT, tc.micro_batch(k).T);
  const double rel = model_rel_bound(m.config(), maxT, p.config().use_dora);
  const auto& steps = tc.doc["steps"];
  const auto& micro = tc.doc["micro_batch_loss"];
  ASSERT_EQ(static_cast<int>(steps.size()), num_steps);
  for (int s = 0; s < num_steps; ++s) {
    std::vector<MicroBatch> window;
    for (int j = 0; j < ga; ++j) window.push_back(tc.micro_batch(s * ga + j));
    const StepStats st = trainer.step(window);
    const auto& want = steps[static_cast<size_t>(s)];
    SCOPED_TRACE("step " + std::to_string(s + 1));
    ASSERT_TRUE(st.updated);
    EXPECT_EQ(st.num_items, want["num_items_in_batch"].get<int64_t>());
    for (int j = 0; j < ga; ++j) {
      const double w = micro[static_cast<size_t>(s * ga + j)].get<double>();
      EXPECT_NEAR(st.micro_loss[static_cast<size_t>(j)], w, rel * w) << "micro-batch " << s * ga + j;
    }
    EXPECT_NEAR(st.loss, want["loss"].get<double>(), rel * want["loss"].get<double>());
    // The norm is a P-term sum of squares of gradients that each carry `rel`: relative error
    // ≤ rel + P·u (P ≤ 1e5 here, P·u ≤ 6e-3 is loose but derived); torch sums in fp32.
    const double norm_rel = rel + static_cast<double>(p.num_params()) * (FLT_EPSILON / 2);
    EXPECT_NEAR(st.grad_norm, want["grad_norm"].get<double>(), norm_rel * want["grad_norm"].get<double>());
    // Learning rates: the same double formula as transformers: equal to the last bits.
    EXPECT_NEAR(st.lr_applied, want["lr_applied"].get<double>(), 1e-15);
    EXPECT_NEAR(st.learning_rate, want["learning_rate"].get<double>(), 1e-15);
    if (s == 0) {
      // grad1: the first window's gradient (before clipping). Grads are scaled in place by
      // clipping, so the post-step buffer holds g·coef; undo the known coefficient.
      const double coef = std::min(1.0, cfg.max_grad_norm / (st.grad_norm + 1e-6));
      std::vector<float> g(static_cast<size_t>(p.num_params()));
      be->download(g.data(), p.grads().data, g.size() * sizeof(float));
      for (const LoraTensor& t : p.tensors()) {
        const std::vector<float> w = tc.floats("grad1." + t.key);
        const double scale = max_abs(w), bound = (rel + 2 * FLT_EPSILON) * scale;
        int bad = 0;
        for (int64_t i = 0; i < t.numel(); ++i) {
          const double got = g[static_cast<size_t>(t.offset + i)] / coef;
          if (!(std::fabs(got - w[static_cast<size_t>(i)]) <= bound) && ++bad <= 3)
            ADD_FAILURE() << "grad1 " << t.key << "[" << i << "]: " << got << " vs " << w[static_cast<size_t>(i)];
        }
      }
    }
  }
  // Final A/B. Adam moves a parameter by lr_k·u_k per step, u = m̂/(√v̂ + eps). A gradient
  // error of relative size rel (normwise, as above) changes u by ≤ 2·rel·κ, where κ = max|g|/|g|
  // amplifies it for components whose gradient is small against the tensor's largest. We
  // assume κ ≤ 10 (components 10× below their tensor's largest gradient move by less than the
  // others, which bounds their error by the same amount) and sum over steps:
  // |p_ours − p_ref| ≤ Σ_k lr_k·2·rel·10, plus 4 roundings of the value itself.
  double lr_sum = 0;
  for (int s = 0; s < num_steps; ++s) lr_sum += steps[static_cast<size_t>(s)]["lr_applied"].get<double>();
  const std::vector<float> got = p.download_params();
  double worst = 0;
  for (const LoraTensor& t : p.tensors()) {
    const std::vector<float> w = tc.floats("final." + t.key);
    const double bound = lr_sum * 2 * rel * 10 + 4 * FLT_EPSILON * max_abs(w);
    int bad = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double e = std::fabs(got[static_cast<size_t>(t.offset + i)] - w[static_cast<size_t>(i)]);
      worst = std::max(worst, e / bound);
      if (!(e <= bound) && ++bad <= 3)
        ADD_FAILURE() << "final " << t.key << "[" << i << "]: " << got[static_cast<size_t>(t.offset + i)] << " vs "
                      << w[static_cast<size_t>(i)] << " bound " << bound;
    }
  }
  ::testing::Test::RecordProperty("final_worst_err_over_bound", std::to_string(worst));
}

// PEFT's DoRA init: m = ‖W‖ per row of each adapted weight, on a 4-bit base from the
// dequantized weight (dequantize_module_weight) in fp32. lorafit sums the squares in double and
// torch in fp32 over I ≤ 200 terms (the pairwise sum's error ≤ log2(I)·u ≈ 8u relative, u = 2^-24,
// and the sqrt halves it to 4u): 4·FLT_EPSILON = 8u relative bounds the difference.
TEST(TrainGolden, DoraMagnitudeInitIsPeftsOnA4BitBase) {
  for (const char* name : {"qwen2-gqa7-untied-f32-dora", "qlora-qwen2-nf4-dq-dora"}) {
    SCOPED_TRACE(name);
    TrainCase tc(name);
    auto be = make_backend("cpu");
    const Model m(*be, tc.model_dir, DType::F32, tc.quant());
    const auto inits = testing::dora_magnitude_init(*be, tc, m);
    for (const auto& mi : inits)
      for (size_t i = 0; i < mi.want.size(); ++i)
        EXPECT_NEAR(mi.got[i], mi.want[i], 4 * FLT_EPSILON * mi.want[i]) << mi.key << "[" << i << "]";
    EXPECT_GT(inits.size(), 0u);
  }
}

// qwen3-gqa-tied-f32 and llama31-rope-f32: transformers 4.57.6 + PEFT 0.17.1
// (tools/golden/make_train_recent.py): q_norm/k_norm and llama3 RoPE on the gradient path.
// qlora-*: PEFT 0.13.2 on transformers 4.57.6 with bitsandbytes 0.50.2 Linear4bit base weights
// (tools/golden/make_qlora_fixtures.py; NF4 + double quantization, FP4 without): lorafit
// quantizes the same fp32 weights to the same bytes (test_formats_quant4) and dequantizes them
// exactly to fp32 (bnb_4bit_compute_dtype float32), so the model is the same function and the
// fp32 bounds above apply unchanged.
INSTANTIATE_TEST_SUITE_P(Cases, TrainGolden,
                         ::testing::Values("qwen2-gqa7-untied-f32", "llama-gqa2-f32", "stories260K",
                                           "qwen3-gqa-tied-f32", "llama31-rope-f32", "qlora-qwen2-nf4-dq",
                                           "qlora-llama-fp4",
                                           // DoRA (PEFT use_dora=True; tools/golden/make_dora_fixtures.py)
                                           "qwen2-gqa7-untied-f32-dora",
                                           // DoRA on the 4-bit base (make_qlora_fixtures.py): the norm
                                           // from the dequantized weight, as PEFT's
                                           "qlora-qwen2-nf4-dq-dora"),
                         [](const auto& param_info) {
                           std::string s = param_info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

}  // namespace
}  // namespace lorafit
