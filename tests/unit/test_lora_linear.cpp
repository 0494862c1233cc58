// linear_backward (the LoRA seam) against central finite differences of linear_forward.
// y = x·Wᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ is linear in each of x, A and B separately, so a central
// difference with a large step h is exact up to rounding; we run the fp32 CPU backend and
// accumulate the probe loss L = Σ g∘y in double.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "lora/lora_linear.h"

namespace lorafit {
namespace {

std::vector<float> rnd(size_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

Tensor t2(std::vector<float>& v, int64_t r, int64_t c) { return Tensor(v.data(), DType::F32, {r, c}); }

struct Setup {
  int64_t N = 5, I = 7, O = 6, r = 3;
  float s = 1.7f, p = 0.f;
  std::vector<float> x = rnd(5 * 7, 1), W = rnd(6 * 7, 2), b = rnd(6, 3), A = rnd(3 * 7, 4), B = rnd(6 * 3, 5),
                     g = rnd(5 * 6, 6);
  std::vector<float> y = std::vector<float>(5 * 6), xa = std::vector<float>(5 * 3), xdrop = std::vector<float>(5 * 7);
  std::vector<float> dA = std::vector<float>(3 * 7), dB = std::vector<float>(6 * 3);
  uint64_t seed = 77;

  LoraWeights lw() {
    LoraWeights w;
    w.A = t2(A, r, I);
    w.B = t2(B, O, r);
    w.dA = t2(dA, r, I);
    w.dB = t2(dB, O, r);
    w.scale = s;
    w.dropout = p;
    return w;
  }
  LoraSaved saved() {
    LoraSaved sv;
    sv.xa = t2(xa, N, r);
    sv.xdrop = t2(xdrop, N, I);
    sv.dropout_seed = seed;
    return sv;
  }
  double loss(Backend& be) {
    LoraWeights w = lw();
    LoraSaved sv = saved();
    linear_forward(be, t2(y, N, O), t2(x, N, I), t2(W, O, I), Tensor(b.data(), DType::F32, {O}), &w, &sv, true);
    double L = 0;
    for (size_t i = 0; i < y.size(); ++i) L += static_cast<double>(g[i]) * y[i];
    return L;
  }
  // Rounding of L: each y element is a sum of I + r + 2 products/terms (≤ (I + r + 4)·u relative
  // to Σ|terms| ≤ I + s·r·I + 1 for inputs ≤ 1 and keep-scale ≤ 1/(1 − p)), times Σ|g|.
  double loss_rounding() const {
    double sg = 0;
    for (float v : g) sg += std::fabs(v);
    const double terms = static_cast<double>(I) + s * static_cast<double>(r * I) / (1.0 - p) + 1.0;
    return sg * static_cast<double>(I + r + 4) * (FLT_EPSILON / 2) * terms;
  }
};

void check(Setup& su, Backend& be, std::vector<float>& param, const std::vector<float>& analytic, const char* what) {
  const double h = 4.0;  // exact for a linear function; large h shrinks the rounding term
  // + the analytic side's rounding: sums of ≤ N + O + r products chained twice, whose terms add
  // up to ≤ O + s·O·r·I (inputs ≤ 1): (N + O + r + 4)·u·that.
  const double analytic_rounding = static_cast<double>(su.N + su.O + su.r + 4) * (FLT_EPSILON / 2) *
                                   (static_cast<double>(su.O) + su.s * static_cast<double>(su.O * su.r * su.I));
  const double bound = 2 * su.loss_rounding() / (2 * h) + analytic_rounding;
  for (size_t i = 0; i < param.size(); ++i) {
    const float p0 = param[i];
    param[i] = p0 + static_cast<float>(h);
    const double lp = su.loss(be);
    param[i] = p0 - static_cast<float>(h);
    const double lm = su.loss(be);
    param[i] = p0;
    const double fd = (lp - lm) / (2 * h);
    EXPECT_NEAR(analytic[i], fd, bound) << what << "[" << i << "]";
  }
}

void run_case(float p) {
  auto be = make_backend("cpu");
  Setup su;
  su.p = p;
  su.loss(*be);  // the forward whose saved xa / xdrop the backward reads
  std::vector<float> dx(su.x.size()), dxa(su.N * su.r), dxin(su.N * su.I);
  LoraWeights w = su.lw();
  LoraSaved sv = su.saved();
  std::fill(su.dA.begin(), su.dA.end(), 0.5f);  // parameter grads accumulate: start non-zero
  linear_backward(*be, t2(dx, su.N, su.I), t2(su.g, su.N, su.O), t2(su.x, su.N, su.I), t2(su.W, su.O, su.I), &w, &sv,
                  true, {t2(dxa, su.N, su.r), t2(dxin, su.N, su.I), Tensor(), Tensor()});
  std::vector<float> dA = su.dA, dB = su.dB;
  for (float& v : dA) v -= 0.5f;  // what was accumulated
  check(su, *be, su.x, dx, "dx");
  check(su, *be, su.A, dA, "dA");
  check(su, *be, su.B, dB, "dB");
}

TEST(LoraLinear, BackwardMatchesFiniteDifferences) { run_case(0.f); }
TEST(LoraLinear, BackwardWithDropoutMatchesFiniteDifferences) { run_case(0.4f); }

// Without an adapter the backward is dx = dy·W, exact for small integers.
TEST(LoraLinear, BaseOnlyBackward) {
  auto be = make_backend("cpu");
  std::vector<float> dy{1, 2, 3, 4}, W{1, 0, 2, -1, 3, 1}, x(6), dx(6);  // dy (2,2), W (2,3)
  linear_backward(*be, t2(dx, 2, 3), t2(dy, 2, 2), t2(x, 2, 3), t2(W, 2, 3), nullptr, nullptr, true, {});
  EXPECT_EQ(dx, (std::vector<float>{-1, 6, 4, -1, 12, 10}));
}

}  // namespace
}  // namespace lorafit
