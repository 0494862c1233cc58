// The CPU backend's vectorized loops (backend/cpu/simd.h, Highway) against their plain loops,
// on every SIMD target this CPU can run (SSE4, AVX2, AVX-512, ...: each test loops over them),
// and the decode matvec kernels and the bf16 GEMM against a double reference.
// Exact where the vector code does the same IEEE operations in the same order (conversions,
// AdamW); otherwise a bound derived, beside each check, from the operations that differ.
// u = 2^-24 is the fp32 unit roundoff.
#include <gtest/gtest.h>
#include <hwy/highway.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels_backward.h"
#include "backend/cpu/kernels_forward.h"
#include "backend/cpu/simd.h"
#include "backend_parity.h"
#include "tensor/dtype.h"

namespace lorafit {
namespace {

using namespace lorafit::testing;
constexpr double u = 1.0 / 16777216.0;  // 2^-24
// Values below this are underflow territory (the vector exp may flush what libm returns as a
// subnormal): an absolute floor of every bound, ~2^-122.
constexpr double kTiny = 1e-37;

// Runs f once per Highway target compiled in and supported by this CPU.
template <class F>
void for_each_target(F&& f) {
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(t);
    SCOPED_TRACE(hwy::TargetName(t));
    f();
  }
  hwy::SetSupportedTargetsForTest(0);
}

uint32_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

TEST(Simd, Bf16AndF16WidenExactlyForEveryBitPattern) {
  std::vector<uint16_t> h(65536 + 7);  // + a tail that is not a whole vector
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>(i);
  for_each_target([&] {
    std::vector<float> got(h.size());
    cpu::convert_bf16_to_f32(got.data(), h.data(), static_cast<int64_t>(h.size()));
    for (size_t i = 0; i < h.size(); ++i) ASSERT_EQ(bits(got[i]), bits(bf16_to_f32(h[i]))) << "bf16 " << h[i];
    cpu::convert_f16_to_f32(got.data(), h.data(), static_cast<int64_t>(h.size()));
    for (size_t i = 0; i < h.size(); ++i) {
      const float want = f16_to_f32(h[i]);
      if (std::isnan(want))  // NaN payload bits are not part of the contract
        ASSERT_TRUE(std::isnan(got[i])) << "f16 " << h[i];
      else
        ASSERT_EQ(bits(got[i]), bits(want)) << "f16 " << h[i];
    }
  });
}

TEST(Simd, F32ToBf16RoundsBitForBitLikeTheScalarConversion) {
  std::mt19937_64 rng(5);
  std::vector<float> x;
  for (uint32_t b : {0u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u, 0xffbfffffu, 0x00000001u,
                     0x807fffffu, 0x3f808000u, 0x3f818000u, 0x3f80ffffu, 0x7f7fffffu, 0x7f7f8000u})
    x.push_back(from_bits(b));  // signed zeros, infinities, NaNs, subnormals, ties to even, overflow to inf
  for (int i = 0; i < 200003; ++i) x.push_back(from_bits(static_cast<uint32_t>(rng())));
  for_each_target([&] {
    std::vector<uint16_t> got(x.size());
    cpu::convert_f32_to_bf16(got.data(), x.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(got[i], f32_to_bf16(x[i])) << "bits " << bits(x[i]);
  });
}

TEST(Simd, AdamWEqualsTheScalarKernelExactly) {
  const int64_t n = 1000 + 13;
  for (double beta1 : {0.9, 0.3}) {  // 1 − β1 below and above 0.5: both branches of torch's lerp
    for (double wd : {0.0, 0.01}) {
      AdamWParams hp;
      hp.lr = 3e-4, hp.beta1 = beta1, hp.weight_decay = wd, hp.step = 7;
      auto p = random_floats(n, 1), g = random_floats(n, 2), m = random_floats(n, 3), v = random_floats(n, 4, 0.f, 1.f);
      auto pr = p, mr = m, vr = v;
      cpu::adamw_kernel(pr.data(), g.data(), mr.data(), vr.data(), n, hp.lr, hp.beta1, hp.beta2, hp.eps,
                        hp.weight_decay, hp.step);
      for_each_target([&] {
        auto pv = p, mv = m, vv = v;
        auto be = make_backend("cpu");
        be->adamw(Tensor(pv.data(), DType::F32, {n}), Tensor(g.data(), DType::F32, {n}),
                  Tensor(mv.data(), DType::F32, {n}), Tensor(vv.data(), DType::F32, {n}), hp);
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(bits(pv[i]), bits(pr[i])) << "p " << i;
          ASSERT_EQ(bits(mv[i]), bits(mr[i])) << "m " << i;
          ASSERT_EQ(bits(vv[i]), bits(vr[i])) << "v " << i;
        }
      });
    }
  }
}

// Gate values over the whole useful range and beyond it (exp overflow / underflow).
std::vector<float> gate_values(int64_t n) {
  auto g = random_floats(static_cast<size_t>(n), 7, -12.f, 12.f);
  const float edge[] = {-200.f, -104.f, -89.f, -88.f, -30.f, 0.f, -0.f, 30.f, 88.f, 89.f, 104.f, 200.f};
  for (size_t i = 0; i < std::size(edge); ++i) g[i * 7] = edge[i];
  return g;
}

// Both sides compute e = exp(−g) (Highway: ≤ 1 ulp; libm: ≤ 1 ulp, so they differ by ≤ 2 ulp
// ≤ 4u·e), then the same fp32 operations, each rounded once on each side.
TEST(Simd, SwigluWithinTheBoundOfTheVectorExp) {
  const int64_t n = 40000 + 5;
  const auto g = gate_values(n), up = random_floats(n, 8, -3.f, 3.f), go = random_floats(n, 9);
  std::vector<float> ref(n), dg_ref(n), du_ref(n);
  cpu::swiglu_forward(ref.data(), g.data(), up.data(), n);
  cpu::swiglu_backward_kernel(dg_ref.data(), du_ref.data(), go.data(), g.data(), up.data(), n);
  for_each_target([&] {
    std::vector<float> out(n), dg(n), du(n);
    cpu::swiglu_forward_f32(out.data(), g.data(), up.data(), n);
    cpu::swiglu_backward_f32(dg.data(), du.data(), go.data(), g.data(), up.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double gi = g[i], sig = 1.0 / (1.0 + std::exp(-gi));
      // out = g/(1+e)·up: 1+e differs by ≤ 4u relative, plus the rounding of the sum on each side
      // (2u); the division and the product add 2u each: ≤ 10u·|out|, 12u used.
      ASSERT_LE(std::fabs(out[i] - ref[i]), 12 * u * std::fabs(ref[i]) + kTiny) << "g " << gi;
      // σ = 1/(1+e) differs by ≤ 7u·σ (as above, plus the division); dgate = A·σ·Q with A = go·up,
      // Q = 1 + g(1−σ): δQ ≤ |g|·7u·σ + 2u|g(1−σ)| + u|Q|, three products 3u: the total is
      // ≤ |A|·σ·u·(11|Q| + 9|g|) ≤ 20u·|A|·σ·(1+|g|); 24u used.
      const double A = std::fabs(static_cast<double>(go[i]) * up[i]);
      ASSERT_LE(std::fabs(dg[i] - dg_ref[i]), 24 * u * A * sig * (1 + std::fabs(gi)) + kTiny) << "g " << gi;
      // dup = go·(g·σ): 7u from σ, two products: 9u; 12u used.
      ASSERT_LE(std::fabs(du[i] - du_ref[i]), 12 * u * std::fabs(go[i] * gi * sig) + kTiny) << "g " << gi;
    }
  });
}

// The bf16 path's SwiGLU: the same operations as the scalar loop with the vector exp, so the fp32
// value before each rounding differs by ≤ 12u relative (the test above); a rounding to bf16 then
// gives the same bf16 unless that value sits within 12u of a rounding boundary (one bf16 ulp apart
// if it does), and the second rounding can add one more: ≤ 2 bf16 ulps (≤ 2^-6 relative). A
// straddle has probability ≈ 12u / 2^-8 ≈ 2e-4 per rounding, so almost every output is equal:
// ≤ 0.5% not equal is required (a wrong rounding point would make about half of them differ).
TEST(Simd, SwigluBf16WithinTwoBf16UlpsOfTheScalarLoop) {
  const int64_t n = 40000 + 5;
  auto to16 = [](const std::vector<float>& v) {
    std::vector<uint16_t> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_bf16(v[i]);
    return h;
  };
  const auto g = to16(gate_values(n)), up = to16(random_floats(n, 8, -3.f, 3.f)), go = to16(random_floats(n, 9));
  auto r16 = [](float x) { return bf16_to_f32(f32_to_bf16(x)); };
  std::vector<float> ref(n), dg_ref(n), du_ref(n);
  for (int64_t i = 0; i < n; ++i) {  // cpu_bf16's scalar loops, as they were before the vector kernels
    const float gv = bf16_to_f32(g[i]), e1 = 1.f + std::exp(-gv), sig = 1.f / e1, a = r16(gv / e1);
    const float d = bf16_to_f32(go[i]), d_act = r16(d * bf16_to_f32(up[i]));
    ref[i] = r16(a * bf16_to_f32(up[i]));
    du_ref[i] = r16(d * a);
    dg_ref[i] = r16(d_act * sig * (1.f + gv * (1.f - sig)));
  }
  for_each_target([&] {
    std::vector<uint16_t> out(n), dg(n), du(n);
    cpu::swiglu_forward_bf16(out.data(), g.data(), up.data(), n);
    cpu::swiglu_backward_bf16(dg.data(), du.data(), go.data(), g.data(), up.data(), n);
    int64_t differ = 0;
    for (int64_t i = 0; i < n; ++i) {
      for (auto [got, want] : {std::pair{out[i], ref[i]}, std::pair{dg[i], dg_ref[i]}, std::pair{du[i], du_ref[i]}}) {
        ASSERT_LE(std::fabs(bf16_to_f32(got) - want), std::ldexp(std::fabs(want), -6) + kTiny) << "i " << i;
        differ += bf16_to_f32(got) != want;
      }
    }
    EXPECT_LE(differ, 3 * n / 200);  // 3n outputs, ≤ 0.5% of them
  });
}

// bf16 scale and add: one fp32 operation on exactly widened values, rounded once, as the scalar
// loops: equal bit for bit, with a tail that is not a whole vector, aliasing too. A NaN result
// is only required to be a NaN: which operand's payload x86 returns for NaN + NaN depends on the
// instruction's operand order, which the compiler chooses.
uint16_t canonical_nan(uint16_t h) { return std::isnan(bf16_to_f32(h)) ? uint16_t{0x7fc0} : h; }

TEST(Simd, ScaleAndAddBf16EqualTheScalarLoopsExactly) {
  const int64_t n = 70000 + 3;
  std::vector<uint16_t> a(n), b(n);
  std::mt19937 rng(5);
  for (auto* t : {&a, &b})
    for (auto& x : *t) x = static_cast<uint16_t>(rng());  // every bit pattern: inf, NaN, subnormals
  for_each_target([&] {
    std::vector<uint16_t> sum(n), x = a;
    cpu::add_bf16(sum.data(), a.data(), b.data(), n);
    cpu::scale_bf16(x.data(), n, 0.37f);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(canonical_nan(sum[i]), canonical_nan(f32_to_bf16(bf16_to_f32(a[i]) + bf16_to_f32(b[i])))) << i;
      ASSERT_EQ(x[i], f32_to_bf16(bf16_to_f32(a[i]) * 0.37f)) << i;
    }
    cpu::add_bf16(x.data(), x.data(), b.data(), n);  // out aliases a
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(canonical_nan(x[i]),
                canonical_nan(f32_to_bf16(bf16_to_f32(f32_to_bf16(bf16_to_f32(a[i]) * 0.37f)) + bf16_to_f32(b[i]))))
          << i;
    cpu::scale_bf16(x.data(), n, 0.f);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(x[i], 0) << i;
  });
}

// The bf16 rotary embedding of one position: the same four rounded products and two rounded
// sums per pair as the scalar loop, so equal bit for bit, forward and backward; half = 6 and 40
// are not whole vectors.
TEST(Simd, RopeRowBf16EqualsTheScalarLoopExactly) {
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(0.f, 2.f);
  auto r16 = [](float v) { return bf16_to_f32(f32_to_bf16(v)); };
  for (int64_t D : {12, 64, 80}) {
    const int64_t H = 3, half = D / 2;
    std::vector<uint16_t> x(static_cast<size_t>(H * D));
    for (auto& v : x) v = f32_to_bf16(nd(rng));
    std::vector<float> c(static_cast<size_t>(half)), sn(c.size());
    for (int64_t i = 0; i < half; ++i) c[i] = r16(std::cos(0.7f * i)), sn[i] = r16(std::sin(0.7f * i));
    for (int sign : {1, -1}) {
      std::vector<uint16_t> ref = x;
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < half; ++i) {
          uint16_t* xh = ref.data() + h * D;
          const float x1 = bf16_to_f32(xh[i]), x2 = bf16_to_f32(xh[i + half]);
          xh[i] = f32_to_bf16(sign > 0 ? r16(x1 * c[i]) - r16(x2 * sn[i]) : r16(x1 * c[i]) + r16(x2 * sn[i]));
          xh[i + half] = f32_to_bf16(sign > 0 ? r16(x2 * c[i]) + r16(x1 * sn[i]) : r16(x2 * c[i]) - r16(x1 * sn[i]));
        }
      for_each_target([&] {
        std::vector<uint16_t> got = x;
        cpu::rope_row_bf16(got.data(), H, D, c.data(), sn.data(), sign);
        EXPECT_EQ(got, ref) << "D " << D << " sign " << sign;
      });
    }
  }
}

// The bf16 attention's per-query kernels against the scalar loops they replace, exactly: the
// products of widened bf16 values are exact in fp32 and both sides add them in the same order.
TEST(Simd, AttentionBf16KernelsEqualTheScalarLoopsExactly) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int64_t D : {12, 16, 64}) {
    for (int64_t n : {1, 17, 100}) {
      SCOPED_TRACE(::testing::Message() << "D " << D << " n " << n);
      const int64_t ld = 3 * D;  // rows of one head inside (S, Hkv = 3, D)
      std::vector<uint16_t> k(static_cast<size_t>(n * ld)), v(k.size());
      for (auto* t : {&k, &v})
        for (auto& x : *t) x = f32_to_bf16(nd(rng));
      const int64_t ldkt = cpu::attn_key_pad(n);  // kt's rows zero-padded, as the kernel requires
      std::vector<float> q(static_cast<size_t>(D)), w(static_cast<size_t>(n)), kt(static_cast<size_t>(D * ldkt), 0.f);
      for (auto& x : q) x = bf16_to_f32(f32_to_bf16(nd(rng)));
      for (int64_t s = 0; s < n; ++s) w[s] = s % 5 == 3 ? 0.f : bf16_to_f32(f32_to_bf16(std::fabs(nd(rng))));
      for (int64_t s = 0; s < n; ++s)
        for (int64_t d = 0; d < D; ++d) kt[d * ldkt + s] = bf16_to_f32(k[s * ld + d]);
      const float scale = 0.125f;
      std::vector<float> p_ref(n), acc_ref(D, 0.f);
      for (int64_t s = 0; s < n; ++s) {
        float dot = 0.f;
        for (int64_t d = 0; d < D; ++d) dot += q[d] * bf16_to_f32(k[s * ld + d]);
        p_ref[s] = dot * scale;
        if (w[s] != 0.f)
          for (int64_t d = 0; d < D; ++d) acc_ref[d] += w[s] * bf16_to_f32(v[s * ld + d]);
      }
      for_each_target([&] {
        std::vector<float> p(ldkt), acc(D, -1.f);
        cpu::attn_scores_t(p.data(), q.data(), kt.data(), ldkt, n, D, scale);
        cpu::attn_weighted_sum_bf16(acc.data(), w.data(), v.data(), ld, n, D);
        for (int64_t s = 0; s < n; ++s) ASSERT_EQ(bits(p[s]), bits(p_ref[s])) << "score " << s;
        for (int64_t d = 0; d < D; ++d) ASSERT_EQ(bits(acc[d]), bits(acc_ref[d])) << "acc " << d;
      });
    }
  }
}

// Σx² in double in another order: the double sums differ by ≤ 2C·2^-53 relative, so r
// (rounded to fp32) is equal or one fp32 ulp apart (≤ 2u relative); out = w·(x·r) then
// differs by ≤ 2u plus one rounding of each product on each side: ≤ 6u·|out|.
TEST(Simd, RmsNormRowWithinOneUlpOfRstd) {
  const int64_t N = 9, C = 896 + 3;
  const auto x = random_floats(static_cast<size_t>(N * C), 11, -4.f, 4.f), w = random_floats(C, 12, 0.5f, 1.5f);
  std::vector<float> ref(x.size()), rref(N);
  cpu::rmsnorm_forward(ref.data(), rref.data(), x.data(), w.data(), N, C, 1e-6f);
  for_each_target([&] {
    for (int64_t n = 0; n < N; ++n) {
      std::vector<float> out(C);
      const float r = cpu::rmsnorm_row_f32(out.data(), x.data() + n * C, w.data(), C, 1e-6f);
      ASSERT_LE(std::fabs(r - rref[n]), 2 * u * rref[n]);
      for (int64_t c = 0; c < C; ++c)
        ASSERT_LE(std::fabs(out[c] - ref[n * C + c]), 6 * u * std::fabs(ref[n * C + c]) + kTiny);
    }
  });
}

// exp(z − m): the argument is the same fp32 subtraction on both sides; the exps differ by ≤ 2 ulp
// (≤ 4u relative); the double sums of n terms add ≤ n·2^-53 relative. The scaled form adds the
// rounding of the product on each side (2u).
TEST(Simd, ExpSumsWithinTheBoundOfTheVectorExp) {
  const int64_t n = 4096 + 9;
  const auto z = random_floats(n, 21, -30.f, 5.f);
  const float m = 4.5f, s = -0.37f;
  std::vector<float> e(n);
  double sum = 0, abs_sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    e[i] = std::exp(z[i] - m);
    sum += e[i];
    abs_sum += std::fabs(e[i]);
  }
  const double sum_tol = 4 * u * abs_sum + n * 0x1p-53 * abs_sum + kTiny;
  for_each_target([&] {
    std::vector<float> zz = z;
    EXPECT_NEAR(cpu::exp_shift_sum_f32(zz.data(), n, m), sum, sum_tol);
    for (int64_t i = 0; i < n; ++i) ASSERT_LE(std::fabs(zz[i] - e[i]), 4 * u * e[i] + kTiny) << i;
    EXPECT_NEAR(cpu::sum_exp_f32(z.data(), n, m), sum, sum_tol);
    zz = z;
    cpu::exp_shift_scale_f32(zz.data(), n, m, s);
    for (int64_t i = 0; i < n; ++i) {
      const float want = s * std::exp(z[i] - m);
      ASSERT_LE(std::fabs(zz[i] - want), 6 * u * std::fabs(want) + kTiny) << i;
    }
  });
}

TEST(Simd, SumSquaresMatchesADoubleLoop) {
  const int64_t n = 100000 + 3;
  const auto x = random_floats(n, 31);
  double want = 0;
  for (float v : x) want += static_cast<double>(v) * v;
  for_each_target([&] {
    // Squares are exact in double; two sums of n terms in different orders: ≤ 2n·2^-53·Σ.
    EXPECT_NEAR(cpu::sum_squares_f32(x.data(), n), want, 2.0 * n * 0x1p-53 * want);
  });
}

// y (M, O) against a double reference; bound: a dot product of length I in fp32 (FMA lanes,
// then the lane reduction) is within γ_{I+2}·Σ|x·w| (sum_bound, backend_parity.h); beta·y0 is
// one more rounded term. A bf16 y adds its rounding, 2^-9 relative (half a bf16 ulp).
void check_matvec(int64_t M, int64_t O, int64_t I, bool w_bf16, bool x_bf16, bool y_bf16, float alpha, float beta) {
  SCOPED_TRACE(::testing::Message() << "M=" << M << " O=" << O << " I=" << I << " w_bf16=" << w_bf16
                                    << " x_bf16=" << x_bf16 << " y_bf16=" << y_bf16);
  auto xf = random_floats(static_cast<size_t>(M * I), 41), wf = random_floats(static_cast<size_t>(O * I), 42);
  const auto y0 = random_floats(static_cast<size_t>(M * O), 43);
  const auto xb = to_bf16(xf), wb = to_bf16(wf);
  if (x_bf16) xf = std::vector<float>(xb.size()), cpu::convert_bf16_to_f32(xf.data(), xb.data(), M * I);
  std::vector<float> wv(wf.size());  // the weight values the kernel sees
  if (w_bf16) cpu::convert_bf16_to_f32(wv.data(), wb.data(), O * I); else wv = wf;
  std::vector<float> y(M * O);
  std::vector<uint16_t> yb = to_bf16(y0);
  std::vector<float> y0v(y0.size());  // y0 as the kernel reads it
  if (y_bf16) cpu::convert_bf16_to_f32(y0v.data(), yb.data(), M * O); else y0v = y0;
  y = y0v;
  if (x_bf16)
    cpu::matvec_bf16(y_bf16 ? static_cast<void*>(yb.data()) : y.data(), y_bf16, xb.data(), wb.data(), M, O, I, alpha,
                     beta);
  else
    cpu::matvec_f32(y.data(), xf.data(), w_bf16 ? static_cast<const void*>(wb.data()) : wf.data(), w_bf16, M, O, I,
                    alpha, beta);
  if (y_bf16) cpu::convert_bf16_to_f32(y.data(), yb.data(), M * O);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t o = 0; o < O; ++o) {
      double dot = 0, abs_terms = 0;
      for (int64_t k = 0; k < I; ++k) {
        const double t = static_cast<double>(xf[m * I + k]) * wv[o * I + k];
        dot += t;
        abs_terms += std::fabs(t);
      }
      const double want = alpha * dot + (beta == 0.f ? 0.0 : beta * static_cast<double>(y0v[m * O + o]));
      double tol = sum_bound(I, std::fabs(alpha) * abs_terms + std::fabs(beta * y0v[m * O + o]));
      if (y_bf16) tol += 0x1p-8 * std::fabs(want);  // the bf16 rounding of y (≤ 2^-9, with slack for tol)
      ASSERT_NEAR(y[m * O + o], want, tol) << "m " << m << " o " << o;
    }
}

TEST(Simd, MatvecF32AndBf16WeightsOnEveryTarget) {
  for_each_target([&] {
    for (int64_t M = 1; M <= cpu::kMatvecRows; ++M) {
      check_matvec(M, 37, 896 + 5, true, false, false, 1.f, 0.f);
      check_matvec(M, 29, 131, false, false, false, 0.5f, 1.f);
    }
    check_matvec(1, 3, 7, true, false, false, 1.f, 0.f);  // shorter than one vector
  });
}

// The bf16 activation path: vdpbf16ps where the CPU has it, and the widened fallback
// (forced here, so it is tested on this machine too).
TEST(Simd, MatvecBf16WithAndWithoutTheBf16DotInstruction) {
  const bool has = cpu::cpu_has_bf16_dot();
  for (bool use : {true, false}) {
    if (use && !has) continue;
    cpu::set_bf16_dot_for_test(use);
    SCOPED_TRACE(use ? "vdpbf16ps" : "widened fallback");
    for (int64_t M = 1; M <= cpu::kMatvecRows; ++M) {
      check_matvec(M, 41, 4864 + 7, true, true, false, 1.f, 0.f);
      check_matvec(M, 23, 96, true, true, true, 0.75f, 1.f);
    }
    check_matvec(1, 5, 3, true, true, false, 1.f, 0.f);  // shorter than one 32-element load
  }
  cpu::set_bf16_dot_for_test(true);
  if (!has) GTEST_LOG_(INFO) << "this CPU has no AVX512-BF16: only the fallback ran";
}

// The bf16 GEMM through the backend's matmul (oneDNN's bf16 matmul; bf16 a, bf16 or fp32 b,
// fp32 or bf16 out): products of bf16 values are exact in fp32 and summed in fp32, so the
// bound of a length-K fp32 dot product over the rounded operands holds (plus the bf16 rounding
// of the result). fp32 weights are rounded to bf16 first, as torch's autocast does.
TEST(Simd, MatmulBf16ActivationsThroughGemm) {
  auto be = make_backend("cpu");
  const int64_t M = 37, N = 45, K = 131;
  for (DType wt : {DType::BF16, DType::F32})
    for (DType ot : {DType::F32, DType::BF16})
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          SCOPED_TRACE(::testing::Message() << dtype_name(wt) << " " << dtype_name(ot) << " ta " << ta << " tb " << tb);
          const auto af = random_floats(static_cast<size_t>(M * K), 51), bf = random_floats(static_cast<size_t>(K * N), 52);
          const auto y0 = random_floats(static_cast<size_t>(M * N), 53);
          const auto ab = to_bf16(af), bb = to_bf16(bf);
          std::vector<float> out32 = y0;
          std::vector<uint16_t> out16 = to_bf16(y0);
          std::vector<float> y0v(y0.size());
          if (ot == DType::BF16) cpu::convert_bf16_to_f32(y0v.data(), out16.data(), M * N); else y0v = y0;
          const float alpha = 0.5f, beta = 0.25f;
          Tensor a(const_cast<uint16_t*>(ab.data()), DType::BF16, {ta ? K : M, ta ? M : K});
          Tensor b(wt == DType::BF16 ? static_cast<void*>(const_cast<uint16_t*>(bb.data()))
                                     : static_cast<void*>(const_cast<float*>(bf.data())),
                   wt, {tb ? N : K, tb ? K : N});
          Tensor out(ot == DType::BF16 ? static_cast<void*>(out16.data()) : out32.data(), ot, {M, N});
          be->matmul(out, a, ta, b, tb, alpha, beta);
          if (ot == DType::BF16) cpu::convert_bf16_to_f32(out32.data(), out16.data(), M * N);
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
              double dot = 0, abs_terms = 0;
              for (int64_t k = 0; k < K; ++k) {
                // op(a)[m,k], op(b)[k,n] in their stored layouts; b's value is its bf16 rounding
                const double av = bf16_to_f32(ab[ta ? k * M + m : m * K + k]);
                const double bv = bf16_to_f32(bb[tb ? n * K + k : k * N + n]);
                dot += av * bv;
                abs_terms += std::fabs(av * bv);
              }
              const double want = alpha * dot + beta * y0v[m * N + n];
              double tol = sum_bound(K, alpha * abs_terms + std::fabs(beta * y0v[m * N + n]));
              if (ot == DType::BF16) tol += 0x1p-8 * std::fabs(want);
              ASSERT_NEAR(out32[m * N + n], want, tol) << m << "," << n;
            }
        }
}

TEST(Simd, KernelInfoNamesTheLibrariesThatRun) {
  const std::string info = make_backend("cpu")->kernel_info();
  EXPECT_NE(info.find("oneDNN"), std::string::npos) << info;
  EXPECT_NE(info.find("Highway " + cpu::simd_target_name()), std::string::npos) << info;
  EXPECT_NE(info.find(cpu::cpu_has_bf16_dot() ? "vdpbf16ps" : "widened"), std::string::npos) << info;
}

}  // namespace
}  // namespace lorafit
