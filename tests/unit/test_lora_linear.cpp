// linear_backward (the LoRA seam) against central finite differences of linear_forward.
// y = x·Wᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ is linear in each of x, A and B separately, so a central
// difference with a large step h is exact up to rounding; we run the fp32 CPU backend and
// accumulate the probe loss L = Σ g∘y in double.
// DoRA: y = x·Wᵀ + b + (c − 1)⊙(xd·Wᵀ) + c⊙(s·(xd·Aᵀ)·Bᵀ), c = m/n. PEFT detaches n, so the
// gradient checked is that of the forward with n held fixed (dora_forward with lora.norm as
// set); with n fixed y is again linear in each of x, A, B and m.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "formats/safetensors.h"
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
  bool dora = false;
  std::vector<float> m = std::vector<float>(6), dm = std::vector<float>(6), norm = std::vector<float>(6),
                     scratch = std::vector<float>(2 * 5 * 6);
  double max_c = 1;  // the largest |c| and |c − 1| a loss() has seen (for the rounding bound)

  LoraWeights lw() {
    LoraWeights w;
    w.A = t2(A, r, I);
    w.B = t2(B, O, r);
    w.dA = t2(dA, r, I);
    w.dB = t2(dB, O, r);
    w.scale = s;
    w.dropout = p;
    if (dora) {
      w.m = Tensor(m.data(), DType::F32, {O});
      w.dm = Tensor(dm.data(), DType::F32, {O});
      w.norm = Tensor(norm.data(), DType::F32, {O});
    }
    return w;
  }
  LoraSaved saved() {
    LoraSaved sv;
    sv.xa = t2(xa, N, r);
    sv.xdrop = t2(xdrop, N, I);
    sv.dropout_seed = seed;
    sv.dora = t2(scratch, 2 * N, O);
    return sv;
  }
  double loss(Backend& be) {
    LoraWeights w = lw();
    LoraSaved sv = saved();
    const Tensor ty = t2(y, N, O), tx = t2(x, N, I), tW = t2(W, O, I), tb(b.data(), DType::F32, {O});
    if (dora) {  // n fixed (detached): the base, then the DoRA branch with lora.norm as set
      linear_forward(be, ty, tx, tW, tb, nullptr, nullptr, true);
      dora_forward(be, ty, tx, tW, w, sv, true);
      for (int64_t o = 0; o < O; ++o) max_c = std::max({max_c, static_cast<double>(std::fabs(m[o] / norm[o])), static_cast<double>(std::fabs(m[o] / norm[o] - 1))});
    } else {
      linear_forward(be, ty, tx, tW, tb, &w, &sv, true);
    }
    double L = 0;
    for (size_t i = 0; i < y.size(); ++i) L += static_cast<double>(g[i]) * y[i];
    return L;
  }
  // Rounding of L: each y element is a sum of I + r + 2 products/terms (≤ (I + r + 4)·u relative
  // to Σ|terms| ≤ I + s·r·I + 1 for inputs ≤ 1 and keep-scale ≤ 1/(1 − p)), times Σ|g|.
  // DoRA adds |c − 1|·I/(1 − p) for the second xd·Wᵀ and scales the branch by |c| (≤ max_c),
  // with 2 more roundings per element.
  double loss_rounding() const {
    double sg = 0;
    for (float v : g) sg += std::fabs(v);
    const double c = dora ? max_c : 1.0;
    const double terms = static_cast<double>(I) * (1.0 + (dora ? c / (1.0 - p) : 0.0)) +
                         c * s * static_cast<double>(r * I) / (1.0 - p) + 1.0 + (dora ? 2.0 * c * I : 0.0);
    return sg * static_cast<double>(I + r + 4) * (FLT_EPSILON / 2) * terms;
  }
};

void check(Setup& su, Backend& be, std::vector<float>& param, const std::vector<float>& analytic, const char* what,
           double h = 4.0) {  // exact for a linear function; large h shrinks the rounding term
  for (size_t i = 0; i < param.size(); ++i) {
    const float p0 = param[i];
    su.max_c = 1;
    param[i] = p0 + static_cast<float>(h);
    const double lp = su.loss(be);
    param[i] = p0 - static_cast<float>(h);
    const double lm = su.loss(be);
    param[i] = p0;
    const double fd = (lp - lm) / (2 * h);
    // + the analytic side's rounding: sums of ≤ N + O + r products chained twice, whose terms add
    // up to ≤ O + s·O·r·I (inputs ≤ 1): (N + O + r + 4)·u·that; DoRA: ·(2 + max_c) for the c
    // factors, the second W product and the dm column sums (N + I more terms).
    const double c = su.dora ? 2 + su.max_c : 1.0;
    const double analytic_rounding = c * static_cast<double>(su.N + su.O + su.r + 4 + (su.dora ? su.N + su.I : 0)) *
                                     (FLT_EPSILON / 2) *
                                     (static_cast<double>(su.O) + su.s * static_cast<double>(su.O * su.r * su.I));
    const double bound = 2 * su.loss_rounding() / (2 * h) + analytic_rounding;
    EXPECT_NEAR(analytic[i], fd, bound) << what << "[" << i << "]";
  }
}

void run_case(float p, bool dora = false) {
  auto be = make_backend("cpu");
  Setup su;
  su.p = p;
  su.dora = dora;
  if (dora) {  // n = ‖W + s·B·A‖ once (then held fixed), m = n·(1 ± 0.2) so that c ≠ 1
    LoraWeights w0 = su.lw();
    dora_weight_norm(*be, t2(su.W, su.O, su.I), w0);
    const std::vector<float> jitter = rnd(su.m.size(), 8);
    for (size_t o = 0; o < su.m.size(); ++o) su.m[o] = su.norm[o] * (1.f + 0.2f * jitter[o]);
  }
  su.loss(*be);  // the forward whose saved xa / xdrop the backward reads
  std::vector<float> dx(su.x.size()), dxa(su.N * su.r), dxin(su.N * su.I);
  LoraWeights w = su.lw();
  LoraSaved sv = su.saved();
  std::fill(su.dA.begin(), su.dA.end(), 0.5f);  // parameter grads accumulate: start non-zero
  std::fill(su.dm.begin(), su.dm.end(), 0.5f);
  linear_backward(*be, t2(dx, su.N, su.I), t2(su.g, su.N, su.O), t2(su.x, su.N, su.I), t2(su.W, su.O, su.I), &w, &sv,
                  true, {t2(dxa, su.N, su.r), t2(dxin, su.N, su.I), Tensor(), Tensor(), sv.dora});
  std::vector<float> dA = su.dA, dB = su.dB, dm = su.dm;
  for (float& v : dA) v -= 0.5f;  // what was accumulated
  for (float& v : dm) v -= 0.5f;
  check(su, *be, su.x, dx, "dx");
  check(su, *be, su.A, dA, "dA");
  check(su, *be, su.B, dB, "dB");
  if (dora) check(su, *be, su.m, dm, "dm", 1.0);  // c moves by h/n: a smaller step keeps max_c small
}

TEST(LoraLinear, BackwardMatchesFiniteDifferences) { run_case(0.f); }
TEST(LoraLinear, BackwardWithDropoutMatchesFiniteDifferences) { run_case(0.4f); }
TEST(LoraLinear, DoraBackwardMatchesFiniteDifferences) { run_case(0.f, true); }
TEST(LoraLinear, DoraBackwardWithDropoutMatchesFiniteDifferences) { run_case(0.4f, true); }

// dora_weight_norm against the row norms of W + s·B·A in double: each v = w + s·(B·A) is within
// (r + 2)·u·(|w| + s·Σ|B||A|) of exact, and the norm of the rounded row within a few u of
// the double one.
TEST(LoraLinear, DoraWeightNormMatchesDouble) {
  auto be = make_backend("cpu");
  lorafit::Setup su;
  su.dora = true;
  LoraWeights w = su.lw();
  dora_weight_norm(*be, t2(su.W, su.O, su.I), w);
  for (int64_t o = 0; o < su.O; ++o) {
    double ss = 0, mag = 0;
    for (int64_t i = 0; i < su.I; ++i) {
      double ba = 0, aba = 0;
      for (int64_t k = 0; k < su.r; ++k) {
        ba += static_cast<double>(su.B[o * su.r + k]) * su.A[k * su.I + i];
        aba += std::fabs(static_cast<double>(su.B[o * su.r + k]) * su.A[k * su.I + i]);
      }
      const double v = su.W[o * su.I + i] + su.s * ba;
      ss += v * v;
      mag += std::fabs(su.W[o * su.I + i]) + su.s * aba;
    }
    const double bound = static_cast<double>(su.r + 4) * (FLT_EPSILON / 2) * mag;
    EXPECT_NEAR(su.norm[o], std::sqrt(ss), bound) << "row " << o;
  }
}

// linear_forward with DoRA = the base plus dora_forward at n = dora_weight_norm (bit for bit:
// the same ops), and at m = n (DoRA's init, B = 0) it is the plain linear layer exactly... up to
// the c·u − u rounding: c = 1 exactly then, so the DoRA terms add (1 − 1)·u = 0 and 1·0·s = 0.
TEST(LoraLinear, DoraAtInitIsTheBaseLayer) {
  auto be = make_backend("cpu");
  lorafit::Setup su;
  su.dora = true;
  std::fill(su.B.begin(), su.B.end(), 0.f);
  LoraWeights w = su.lw();
  dora_weight_norm(*be, t2(su.W, su.O, su.I), w);
  su.m = su.norm;
  std::vector<float> base(su.y.size());
  linear_forward(*be, t2(base, su.N, su.O), t2(su.x, su.N, su.I), t2(su.W, su.O, su.I),
                 Tensor(su.b.data(), DType::F32, {su.O}), nullptr, nullptr, true);
  LoraSaved sv = su.saved();
  w = su.lw();
  linear_forward(*be, t2(su.y, su.N, su.O), t2(su.x, su.N, su.I), t2(su.W, su.O, su.I),
                 Tensor(su.b.data(), DType::F32, {su.O}), &w, &sv, true);
  EXPECT_EQ(su.y, base);
}

// Without an adapter the backward is dx = dy·W, exact for small integers.
TEST(LoraLinear, BaseOnlyBackward) {
  auto be = make_backend("cpu");
  std::vector<float> dy{1, 2, 3, 4}, W{1, 0, 2, -1, 3, 1}, x(6), dx(6);  // dy (2,2), W (2,3)
  linear_backward(*be, t2(dx, 2, 3), t2(dy, 2, 2), t2(x, 2, 3), t2(W, 2, 3), nullptr, nullptr, true, LoraGradScratch{});
  EXPECT_EQ(dx, (std::vector<float>{-1, 6, 4, -1, 12, 10}));
}

}  // namespace
}  // namespace lorafit

namespace lorafit {
namespace {

// One DoRA Linear in a bf16 run against PEFT 0.13.2 under torch.autocast("cpu", bf16)
// (tests/fixtures/bf16/dora-linear.safetensors, tools/golden/make_dora_fixtures.py bf16-linear):
// a bf16 weight with a bias, fp32 A, B and m ≠ ‖W + s·B·A‖, forward and backward. lorafit
// rounds where torch does (docs/precision.md "DoRA"); the GEMMs sum ≤ 72 exact bf16 products in
// fp32 in another order than torch's, which moves a bf16 result by one ulp only when that fp32
// value lies within a few fp32 ulps of a rounding boundary (probability ~2^-13 per value), so
// the bf16 outputs are compared exactly, allowing at most 2 values one bf16 ulp apart, and the
// same for dA and dB (bf16 GEMM outputs added to zero fp32 gradients).
std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_bf16(v[i]);
  return h;
}

Tensor bt(std::vector<uint16_t>& v, int64_t a, int64_t b) { return Tensor(v.data(), DType::BF16, {a, b}); }

// The fixture's layer, run by lorafit in bf16 on an input x with LoRA dropout p.
struct DoraBf16Layer {
  SafetensorsFile f{fs::path(LORAFIT_FIXTURES) / "bf16" / "dora-linear.safetensors"};
  std::vector<float> floats(const char* k) const {
    const TensorInfo* t = f.find(k);
    if (!t) throw Error("dora-linear: no {}", k);
    std::vector<float> v(t->nbytes / 4);
    std::memcpy(v.data(), t->data, t->nbytes);
    return v;
  }
  std::vector<float> A = floats("A"), B = floats("B"), m = floats("m");
  std::vector<uint16_t> x = to_bf16(floats("x")), W = to_bf16(floats("W")), bias = to_bf16(floats("bias")),
                        dy = to_bf16(floats("dy"));
  int64_t O = static_cast<int64_t>(m.size()), r = static_cast<int64_t>(B.size()) / O,
          N = static_cast<int64_t>(dy.size()) / O, I = static_cast<int64_t>(x.size()) / N, M = std::max(O, I);
  struct Out {
    std::vector<uint16_t> y, dx, xdrop;
    std::vector<float> dA, dB, dm;
  };
  Out run(std::vector<uint16_t> xin, float p) {
    Out o;
    o.dA.resize(A.size());
    o.dB.resize(B.size());
    o.dm.resize(m.size());
    std::vector<float> norm(m.size()), dora(static_cast<size_t>(2 * N * M));
    LoraWeights w;
    w.A = t2(A, r, I);
    w.B = t2(B, O, r);
    w.dA = t2(o.dA, r, I);
    w.dB = t2(o.dB, O, r);
    w.m = Tensor(m.data(), DType::F32, {O});
    w.dm = Tensor(o.dm.data(), DType::F32, {O});
    w.norm = Tensor(norm.data(), DType::F32, {O});
    w.scale = std::stof(f.metadata().at("scaling"));
    w.dropout = p;
    o.y.resize(static_cast<size_t>(N * O));
    o.dx.resize(static_cast<size_t>(N * I));
    o.xdrop.resize(static_cast<size_t>(N * I));
    std::vector<uint16_t> xa(static_cast<size_t>(N * r)), dxa(xa.size()), dys(static_cast<size_t>(N * M)),
        dw(static_cast<size_t>(r * M)), dxin(static_cast<size_t>(N * I));
    LoraSaved sv;
    sv.xa = bt(xa, N, r);
    sv.xdrop = bt(o.xdrop, N, I);
    sv.dropout_seed = 91;
    sv.dora = Tensor(dora.data(), DType::F32, {2 * N * M});
    auto be = make_backend("cpu");
    const Tensor tb(bias.data(), DType::BF16, {O});
    linear_forward(*be, bt(o.y, N, O), bt(xin, N, I), bt(W, O, I), tb, &w, &sv, true);
    linear_backward(*be, bt(o.dx, N, I), bt(dy, N, O), bt(xin, N, I), bt(W, O, I), &w, &sv, true,
                    {bt(dxa, N, r), bt(dxin, N, I), Tensor(dys.data(), DType::BF16, {N * M}),
                     Tensor(dw.data(), DType::BF16, {r * M}), sv.dora});
    return o;
  }
};

// Equal as bf16 values, but for at most 2 one bf16 ulp apart (see above).
void expect_bf16_equal(const std::vector<uint16_t>& got, const std::vector<float>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int off = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const float g = bf16_to_f32(got[i]);
    if (g == want[i]) continue;
    ++off;
    const float ulp = std::ldexp(1.f, std::ilogb(want[i]) - 7);
    EXPECT_LE(std::fabs(g - want[i]), ulp) << what << "[" << i << "]: " << g << " vs " << want[i];
  }
  EXPECT_LE(off, 2) << what << ": values one bf16 ulp off";
}

TEST(LoraLinearBf16, DoraForwardAndBackwardMatchPeftUnderAutocast) {
  DoraBf16Layer L;
  ASSERT_EQ(L.r * L.I, static_cast<int64_t>(L.A.size()));
  const DoraBf16Layer::Out o = L.run(L.x, 0.f);
  expect_bf16_equal(o.y, L.floats("y"), "y");
  expect_bf16_equal(o.dx, L.floats("dx"), "dx");
  // dA, dB: each micro-batch's bf16 GEMM output accumulated into fp32 zeros, so bf16 values.
  expect_bf16_equal(to_bf16(o.dA), L.floats("dA"), "dA");
  expect_bf16_equal(to_bf16(o.dB), L.floats("dB"), "dB");
  // dm: (Σ_rows g·t1 + Σ_rows g·s·t2) / n, of products equal on both sides, summed over N rows
  // in fp32 (torch) or double (lorafit): ≤ N·u·Σ|terms| apart, u = 2^-24; with Σ|terms| ≤ 8·max|dm|
  // (random signs over N = 13 rows) that is 4·N·FLT_EPSILON·max|dm|.
  const std::vector<float> want_dm = L.floats("dm");
  double big = 0;
  for (float v : want_dm) big = std::max(big, static_cast<double>(std::fabs(v)));
  for (size_t i = 0; i < want_dm.size(); ++i)
    EXPECT_NEAR(o.dm[i], want_dm[i], 4.0 * static_cast<double>(L.N) * FLT_EPSILON * big) << "dm[" << i << "]";
}

// Half a bf16 ulp of v (0 for 0).
double half_ulp16(double v) { return v == 0 ? 0.0 : std::ldexp(1.0, std::ilogb(v) - 8); }

// With LoRA dropout (PEFT drops x once, in fp32, for both W and the branch): every DoRA step
// after the dropout sees xd = bf16(drop(x)), so dA, dB and dm equal those of the dropout-free
// layer run on xd, bit for bit; the input gradient of a dropped element is the base's alone,
// bf16(dy·W); a kept element's LoRA part is the dropout-free one's scaled by 1/(1 − p) in fp32
// before its bf16 rounding (the bound below follows the roundings).
TEST(LoraLinearBf16, DoraWithDropoutIsTheDropoutFreeLayerOnDroppedInput) {
  DoraBf16Layer L;
  const float p = 0.4f;
  const DoraBf16Layer::Out d = L.run(L.x, p);
  const DoraBf16Layer::Out z = L.run(d.xdrop, 0.f);
  EXPECT_EQ(d.dA, z.dA);
  EXPECT_EQ(d.dB, z.dB);
  EXPECT_EQ(d.dm, z.dm);
  std::vector<uint16_t> base(d.dx.size());  // bf16(dy·W)
  auto be = make_backend("cpu");
  linear_backward(*be, bt(base, L.N, L.I), bt(L.dy, L.N, L.O), bt(L.x, L.N, L.I), bt(L.W, L.O, L.I), nullptr, nullptr,
                  true, {});
  int dropped = 0, kept = 0;
  for (size_t i = 0; i < d.dx.size(); ++i) {
    const float b = bf16_to_f32(base[i]), got = bf16_to_f32(d.dx[i]);
    if (d.xdrop[i] == 0 && L.x[i] != 0) {
      ++dropped;
      EXPECT_EQ(got, b) << "dropped element " << i;
      continue;
    }
    ++kept;
    // z.dx = bf16(b + bf16(S)) and got = bf16(b + bf16(S/(1 − p))) for the same fp32 S; with
    // S0 = z.dx − b, |S0 − S| ≤ e(z.dx) + e(S), so got is within e(S/(1 − p)) + e(got) +
    // (e(z.dx) + e(S))/(1 − p) of b + S0/(1 − p); e(v) = half a bf16 ulp of v (2e(S0) for e(S)).
    const double zdx = bf16_to_f32(z.dx[i]), S0 = zdx - b, want = b + S0 / (1.0 - p);
    const double bound =
        2 * half_ulp16(S0 / (1.0 - p)) + half_ulp16(got) + (half_ulp16(zdx) + 2 * half_ulp16(S0)) / (1.0 - p);
    EXPECT_NEAR(got, want, bound) << "kept " << i;
  }
  EXPECT_GT(dropped, 0);
  EXPECT_GT(kept, dropped);
}

}  // namespace
}  // namespace lorafit
