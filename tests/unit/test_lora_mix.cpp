// linear_forward's grouped form (per-row adapters in one batch) against the single-adapter
// form run on each row alone: the rows of a group get exactly their adapter's branch, base
// rows none, whatever the other rows use. A row alone is an M = 1 GEMM and in the batch it is
// one row of an M = N one; a GEMM library may sum the K products in another order for another
// M, so the bound is fp32's for a dot product of K terms (Higham: |error| ≤ γ_K Σ|a_k b_k|,
// γ_K ≈ K·2⁻²⁴), taken twice (two computations) and with K = I + r (the base and the branch
// add into one output). LoraMix's table: which projection of which layer gets which weights.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "lora/lora_linear.h"
#include "lora/lora_mix.h"
#include "lora/lora_params.h"

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

struct Adapter {
  int64_t r;
  float s;
  std::vector<float> A, B;
  LoraWeights w;
  Adapter(int64_t r_, float s_, int64_t I, int64_t O, uint64_t seed)
      : r(r_), s(s_), A(rnd(static_cast<size_t>(r_ * I), seed)), B(rnd(static_cast<size_t>(O * r_), seed + 1)) {
    w.A = t2(A, r, I);
    w.B = t2(B, O, r);
    w.scale = s;
  }
};

TEST(LoraMix, GroupedLinearEqualsEachRowAloneWithItsAdapter) {
  auto be = make_backend("cpu");
  const int64_t N = 7, I = 33, O = 20;
  std::vector<float> x = rnd(N * I, 1), W = rnd(O * I, 2), b = rnd(O, 3);
  Adapter a1(4, 2.f, I, O, 10), a2(2, 0.5f, I, O, 20);
  // rows 0-1: a1, row 2: base (in no group), rows 3-4: a2, rows 5-6: a1 again (its own group)
  const std::vector<LoraRows> groups = {{0, 2, &a1.w}, {3, 5, &a2.w}, {5, 7, &a1.w}};
  const std::vector<const LoraWeights*> of_row = {&a1.w, &a1.w, nullptr, &a2.w, &a2.w, &a1.w, &a1.w};
  std::vector<float> y(N * O, 0.f), xa(N * 4, 0.f);
  LoraSaved scratch;
  scratch.xa = Tensor(xa.data(), DType::F32, {N * 4});
  linear_forward(*be, t2(y, N, O), t2(x, N, I), t2(W, O, I), Tensor(b.data(), DType::F32, {O}), groups, scratch);

  double worst = 0;
  for (int64_t n = 0; n < N; ++n) {
    std::vector<float> xr(x.begin() + n * I, x.begin() + (n + 1) * I), yr(O), xar(4);
    LoraSaved sv;
    sv.xa = Tensor(xar.data(), DType::F32, {1, of_row[n] ? of_row[n]->A.dim(0) : 1});
    linear_forward(*be, t2(yr, 1, O), t2(xr, 1, I), t2(W, O, I), Tensor(b.data(), DType::F32, {O}), of_row[n], &sv,
                   false);
    const Adapter* ad = of_row[n] == &a1.w ? &a1 : of_row[n] == &a2.w ? &a2 : nullptr;
    for (int64_t o = 0; o < O; ++o) {
      // Σ|terms| of y[n,o] = Σ_i |x W| + |b| + s Σ_k |xa_k B_ok| with |xa_k| ≤ Σ_i |x A|.
      double mag = std::fabs(b[o]);
      for (int64_t i = 0; i < I; ++i) mag += std::fabs(x[n * I + i] * W[o * I + i]);
      if (ad)
        for (int64_t k = 0; k < ad->r; ++k) {
          double xak = 0;
          for (int64_t i = 0; i < I; ++i) xak += std::fabs(x[n * I + i] * ad->A[k * I + i]);
          mag += ad->s * xak * std::fabs(ad->B[o * ad->r + k]);
        }
      const double bound = 2.0 * (I + 4 + 2) * FLT_EPSILON / 2 * mag;
      const double d = std::fabs(static_cast<double>(y[n * O + o]) - yr[o]);
      EXPECT_LE(d, bound) << "row " << n << " col " << o;
      worst = std::max(worst, d);
    }
  }
  // The groups did change their rows: a row with an adapter differs from the base row.
  std::vector<float> base(N * O);
  linear_forward(*be, t2(base, N, O), t2(x, N, I), t2(W, O, I), Tensor(b.data(), DType::F32, {O}), nullptr, nullptr,
                 false);
  for (int64_t n : {0, 3, 6}) EXPECT_GT(std::fabs(base[n * O] - y[n * O]), 1e-3) << n;
  std::printf("grouped vs per-row: worst |diff| %.3g\n", worst);
}

// A DoRA adapter in a group gets the single-adapter DoRA branch on its rows (lora_linear's
// dora_forward, n recomputed from W, A, B). Per element, y = base + (c − 1)·xd·Wᵀ + c·s·xa·Bᵀ:
// the base and the second x·Wᵀ each a K = I dot product, the branch K = r + I; with |c| ≤ 2
// the Σ|terms| is ≤ 3·(Σ|xW| + s·Σ|xa B|) + |b|, and the rows' n are computed by the same code
// (bit-equal). Bound 2·(I + r + 6)·u·3·mag.
TEST(LoraMix, GroupedDoraEqualsEachRowAlone) {
  auto be = make_backend("cpu");
  const int64_t N = 5, I = 17, O = 9;
  std::vector<float> x = rnd(N * I, 1), W = rnd(O * I, 2), b = rnd(O, 3);
  Adapter a(3, 1.5f, I, O, 30);
  std::vector<float> m(O), norm(O), norm1(O);
  a.w.m = Tensor(m.data(), DType::F32, {O});
  a.w.norm = Tensor(norm.data(), DType::F32, {O});
  dora_weight_norm(*be, t2(W, O, I), a.w);
  const std::vector<float> jit = rnd(O, 31);
  for (int64_t o = 0; o < O; ++o) m[o] = norm[o] * (1.f + 0.3f * jit[o]);
  const std::vector<LoraRows> groups = {{1, 4, &a.w}};  // rows 0 and 4: base
  std::vector<float> y(N * O), xa(N * 3), dscratch(2 * N * O);
  LoraSaved scratch;
  scratch.xa = Tensor(xa.data(), DType::F32, {N * 3});
  scratch.dora = Tensor(dscratch.data(), DType::F32, {2 * N * O});
  linear_forward(*be, t2(y, N, O), t2(x, N, I), t2(W, O, I), Tensor(b.data(), DType::F32, {O}), groups, scratch);
  for (int64_t n = 0; n < N; ++n) {
    const bool adapted = n >= 1 && n < 4;
    std::vector<float> xr(x.begin() + n * I, x.begin() + (n + 1) * I), yr(O), xar(3), dr(2 * O);
    LoraSaved sv;
    sv.xa = t2(xar, 1, 3);
    sv.dora = t2(dr, 2, O);
    linear_forward(*be, t2(yr, 1, O), t2(xr, 1, I), t2(W, O, I), Tensor(b.data(), DType::F32, {O}),
                   adapted ? &a.w : nullptr, &sv, false);
    for (int64_t o = 0; o < O; ++o) {
      double mag = std::fabs(b[o]);
      for (int64_t i = 0; i < I; ++i) mag += std::fabs(x[n * I + i] * W[o * I + i]);
      for (int64_t k = 0; k < a.r; ++k) {
        double xak = 0;
        for (int64_t i = 0; i < I; ++i) xak += std::fabs(x[n * I + i] * a.A[k * I + i]);
        mag += a.s * xak * std::fabs(a.B[o * a.r + k]);
      }
      EXPECT_LE(std::fabs(static_cast<double>(y[n * O + o]) - yr[o]), 2.0 * (I + a.r + 6) * FLT_EPSILON / 2 * 3 * mag)
          << "row " << n << " col " << o;
    }
  }
}

TEST(LoraMixDeathTest, GroupsMustBeOrderedAndDisjoint) {
  auto be = make_backend("cpu");
  const int64_t N = 4, I = 3, O = 2;
  std::vector<float> x = rnd(N * I, 1), W = rnd(O * I, 2), y(N * O), xa(8);
  Adapter a(2, 1.f, I, O, 5);
  LoraSaved scratch;
  scratch.xa = Tensor(xa.data(), DType::F32, {8});
  const std::vector<LoraRows> overlapping = {{0, 3, &a.w}, {2, 4, &a.w}};
  EXPECT_DEATH(linear_forward(*be, t2(y, N, O), t2(x, N, I), t2(W, O, I), Tensor(), overlapping, scratch),
               "LoRA row group");
  const std::vector<LoraRows> beyond = {{2, 5, &a.w}};
  EXPECT_DEATH(linear_forward(*be, t2(y, N, O), t2(x, N, I), t2(W, O, I), Tensor(), beyond, scratch),
               "LoRA row group");
}

TEST(LoraMix, TableListsEachProjectionsAdaptedGroups) {
  auto be = make_backend("cpu");
  ModelConfig mc;
  mc.num_layers = 2;
  mc.hidden_size = 8;
  mc.intermediate_size = 16;
  mc.num_heads = 2;
  mc.num_kv_heads = 1;
  mc.head_dim = 4;
  mc.vocab_size = 10;
  LoraConfig qv;  // q_proj, v_proj, r 8
  LoraConfig all;
  all.r = 3;
  all.target = parse_lora_target("all-linear");
  LoraParams p1(*be, qv, mc), p2(*be, all, mc);
  LoraMix mix(*be, mc.num_layers, DType::F32);
  const std::vector<LoraRowGroup> groups = {{0, 2, &p1}, {2, 3, nullptr}, {3, 6, &p2}};
  mix.set(groups);
  for (int l = 0; l < 2; ++l) {
    const auto q = mix.rows(l, Proj::Q);
    ASSERT_EQ(q.size(), 2u);
    EXPECT_EQ(q[0].begin, 0);
    EXPECT_EQ(q[0].end, 2);
    EXPECT_EQ(q[0].w, p1.weights(l, Proj::Q));
    EXPECT_EQ(q[1].begin, 3);
    EXPECT_EQ(q[1].end, 6);
    EXPECT_EQ(q[1].w, p2.weights(l, Proj::Q));
    const auto up = mix.rows(l, Proj::Up);  // only p2 adapts the MLP
    ASSERT_EQ(up.size(), 1u);
    EXPECT_EQ(up[0].w, p2.weights(l, Proj::Up));
  }
  // scratch fits the largest group × its rank: 2 rows × 8 (p1) and 3 rows × 3 (p2)
  EXPECT_GE(mix.scratch().xa.numel(), 16);
  const std::vector<LoraRowGroup> unordered = {{3, 6, &p2}, {0, 2, &p1}};
  EXPECT_DEATH(mix.set(unordered), "LoRA row group");
}

}  // namespace
}  // namespace lorafit
