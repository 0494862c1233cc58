// Parity of the forward ops: every backend (column) against the scalar reference, which is
// the same templated kernel instantiated with double (row per op). Inputs are random, shapes
// are not multiples of any block size, outputs carry guard bytes. Tolerances come from
// backend_parity.h (fp32 rounding bounds; derivations beside each row).
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "backend/cpu/kernels_forward.h"
#include "backend_parity.h"

namespace lorafit {
namespace {

using namespace lorafit::testing;
namespace k = lorafit::cpu;

class ForwardOps : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string why;
    be_ = try_backend(GetParam(), &why);
    if (!be_) GTEST_SKIP() << GetParam() << " column skipped: CUDA backend not built / no GPU (" << why << ")";
  }
  // Skips an op this backend does not run with F32 activations and `w` weights.
  bool supported(Op op, DType w = DType::F32) {
    return be_->supports(op, DType::F32, w);
  }
  Backend& be() { return *be_; }
  std::unique_ptr<Backend> be_;
};

std::vector<double> abs_scaled(const std::vector<double>& ref, int c) {
  std::vector<double> b(ref.size());
  for (size_t i = 0; i < ref.size(); ++i) b[i] = elementwise_bound(c, std::fabs(ref[i]));
  return b;
}

// convert (F32 -> BF16 -> F32, F16 -> F32): tensor/dtype.h's f32_to_bf16 (nearest even) bit for
// bit, and the exact widenings.
TEST_P(ForwardOps, Convert) {
  const int64_t n = 1001;
  std::vector<float> x = random_floats(n, 9, -50.f, 50.f);
  x[0] = bf16_to_f32(0x3f80) + std::ldexp(1.f, -8);  // exactly halfway between two bf16: ties to even
  GuardedBuffer gx = upload_guarded(be(), x), o16(be(), n * 2), o32(be(), n * 4);
  be().convert(o16.tensor(DType::BF16, {n}), gx.tensor(DType::F32, {n}));
  be().convert(o32.tensor(DType::F32, {n}), o16.tensor(DType::BF16, {n}));
  const std::vector<uint16_t> got16 = o16.download<uint16_t>();
  const std::vector<float> got32 = o32.download<float>();
  EXPECT_EQ(got16[0], 0x3f80);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(got16[static_cast<size_t>(i)], f32_to_bf16(x[static_cast<size_t>(i)])) << i;
    ASSERT_EQ(got32[static_cast<size_t>(i)], bf16_to_f32(f32_to_bf16(x[static_cast<size_t>(i)]))) << i;
  }
  std::vector<uint16_t> h(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) h[static_cast<size_t>(i)] = f32_to_f16(x[static_cast<size_t>(i)] / 64);
  GuardedBuffer gh = upload_guarded(be(), h);
  be().convert(o32.tensor(DType::F32, {n}), gh.tensor(DType::F16, {n}));
  const std::vector<float> w32 = o32.download<float>();
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(w32[static_cast<size_t>(i)], f16_to_f32(h[static_cast<size_t>(i)])) << i;
  EXPECT_TRUE(o16.guards_intact() && o32.guards_intact());
}

TEST_P(ForwardOps, Embedding) {
  const int64_t N = 29, V = 53, C = 37;
  for (DType wt : {DType::F32, DType::BF16, DType::F16}) {
    if (!supported(Op::Embedding, wt)) continue;
    auto ids = random_ints(N, 1, 0, V);
    auto tf = random_floats(static_cast<size_t>(V * C), 2);
    auto t16 = wt == DType::BF16 ? to_bf16(tf) : to_f16(tf);
    auto tref = wt == DType::F32 ? to_double(tf) : widen(t16, wt);
    GuardedBuffer gid = upload_guarded(be(), ids);
    GuardedBuffer gt = wt == DType::F32 ? upload_guarded(be(), tf) : upload_guarded(be(), t16);
    GuardedBuffer out(be(), N * C * 4);
    be().embedding_forward(out.tensor(DType::F32, {N, C}), gid.tensor(DType::I32, {N}), gt.tensor(wt, {V, C}));
    std::vector<double> ref(static_cast<size_t>(N * C));
    k::embedding_forward(ref.data(), ids.data(), tref.data(), N, C);
    // A copy (16-bit weights widen exactly to fp32): exact.
    expect_close(out.download<float>(), ref, std::vector<double>(ref.size(), 0.0), "embedding");
    EXPECT_TRUE(out.guards_intact());
  }
}

TEST_P(ForwardOps, EmbeddingRejectsOutOfRangeId) {
  if (!supported(Op::Embedding)) GTEST_SKIP() << GetParam() << ": op not supported with F32 activations";
  std::vector<int32_t> ids{3, 7, 11};
  auto table = random_floats(10 * 4, 3);
  GuardedBuffer gid = upload_guarded(be(), ids), gt = upload_guarded(be(), table);
  GuardedBuffer out(be(), 3 * 4 * 4);
  try {
    be().embedding_forward(out.tensor(DType::F32, {3, 4}), gid.tensor(DType::I32, {3}), gt.tensor(DType::F32, {10, 4}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "token id 11 at position 2 is outside the vocabulary [0, 10)");
  }
}

TEST_P(ForwardOps, RmsNorm) {
  const int64_t N = 23, C = 197;
  const float eps = 1e-5f;
  for (DType wt : {DType::F32, DType::BF16}) {
    if (!supported(Op::RmsNormForward, wt)) continue;
    auto x = random_floats(static_cast<size_t>(N * C), 4, -3.f, 3.f);
    auto wf = random_floats(static_cast<size_t>(C), 5, 0.5f, 1.5f);
    auto w16 = to_bf16(wf);
    auto wref = wt == DType::F32 ? to_double(wf) : widen(w16, wt);
    GuardedBuffer gx = upload_guarded(be(), x);
    GuardedBuffer gw = wt == DType::F32 ? upload_guarded(be(), wf) : upload_guarded(be(), w16);
    GuardedBuffer out(be(), N * C * 4), rstd(be(), N * 4);
    be().rmsnorm_forward(out.tensor(DType::F32, {N, C}), rstd.tensor(DType::F32, {N}), gx.tensor(DType::F32, {N, C}),
                         gw.tensor(wt, {C}), eps);
    std::vector<double> ref(static_cast<size_t>(N * C)), rref(static_cast<size_t>(N));
    auto xd = to_double(x);
    k::rmsnorm_forward(ref.data(), rref.data(), xd.data(), wref.data(), N, C, eps);
    // The mean of squares is a sum of C terms; in fp32 with any summation order its relative
    // error is ≤ (C+2)·eps32, which rsqrt halves; then three roundings (rsqrt, x·r, ·w).
    std::vector<double> b(ref.size()), rb(rref.size());
    for (int64_t n = 0; n < N; ++n) {
      rb[n] = sum_bound(C, 0.5 * std::fabs(rref[n])) + elementwise_bound(2, std::fabs(rref[n]));
      for (int64_t c = 0; c < C; ++c) {
        const double r = std::fabs(ref[n * C + c]);
        b[n * C + c] = sum_bound(C, 0.5 * r) + elementwise_bound(4, r);
      }
    }
    expect_close(out.download<float>(), ref, b, "rmsnorm.out");
    expect_close(rstd.download<float>(), rref, rb, "rmsnorm.rstd");
    EXPECT_TRUE(out.guards_intact());
    EXPECT_TRUE(rstd.guards_intact());
  }
}

// One matmul row: out (M,N) = alpha·op(a)·op(b) + beta·out0, b of dtype wt.
void check_matmul(Backend& be, int64_t M, int64_t N, int64_t K, bool ta, bool tb, DType wt, float alpha,
                  float beta, uint64_t seed) {
  SCOPED_TRACE(fmt::format("M={} N={} K={} ta={} tb={} b={} alpha={} beta={}", M, N, K, ta, tb, dtype_name(wt),
                           alpha, beta));
  auto a = random_floats(static_cast<size_t>(M * K), seed);
  auto bf = random_floats(static_cast<size_t>(K * N), seed + 1);
  auto out0 = random_floats(static_cast<size_t>(M * N), seed + 2);
  auto b16 = wt == DType::BF16 ? to_bf16(bf) : to_f16(bf);
  auto bd = wt == DType::F32 ? to_double(bf) : widen(b16, wt);
  GuardedBuffer ga = upload_guarded(be, a);
  GuardedBuffer gb = wt == DType::F32 ? upload_guarded(be, bf) : upload_guarded(be, b16);
  GuardedBuffer out = upload_guarded(be, out0);
  Tensor ta_t = ga.tensor(DType::F32, {ta ? K : M, ta ? M : K});
  Tensor tb_t = gb.tensor(wt, {tb ? N : K, tb ? K : N});
  be.matmul(out.tensor(DType::F32, {M, N}), ta_t, ta, tb_t, tb, alpha, beta);

  auto ad = to_double(a);
  std::vector<double> ref = to_double(out0);
  k::matmul_forward(ref.data(), ad.data(), ta, bd.data(), tb, M, N, K, alpha, beta);
  // Each output is a dot product of length K (sum_bound over Σ|a·b|·|alpha|) plus beta·out0
  // (one more rounding of that term).
  std::vector<double> bound(ref.size());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t kk = 0; kk < K; ++kk)
        s += std::fabs(ad[ta ? kk * M + m : m * K + kk] * bd[tb ? n * K + kk : kk * N + n]);
      const double b0 = std::fabs(static_cast<double>(beta) * out0[m * N + n]);
      bound[m * N + n] = sum_bound(K, std::fabs(alpha) * s + b0);
    }
  expect_close(out.download<float>(), ref, bound, "matmul");
  EXPECT_TRUE(out.guards_intact());
}

TEST_P(ForwardOps, MatmulF32AllTransposes) {
  if (!supported(Op::Matmul)) GTEST_SKIP() << GetParam() << ": op not supported with F32 activations";
  uint64_t seed = 10;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      check_matmul(be(), 19, 43, 131, ta, tb, DType::F32, 1.f, 0.f, seed += 3);
      check_matmul(be(), 7, 29, 61, ta, tb, DType::F32, 0.7f, 0.3f, seed += 3);
    }
}

TEST_P(ForwardOps, Matmul16BitWeights) {
  uint64_t seed = 40;
  for (DType wt : {DType::BF16, DType::F16}) {
    if (!supported(Op::Matmul, wt)) continue;
    for (bool ta : {false, true})
      for (bool tb : {false, true}) check_matmul(be(), 13, 37, 101, ta, tb, wt, 0.9f, 0.5f, seed += 3);
  }
}

// Large enough that the CPU backend converts the 16-bit b in more than one block of 2^20
// floats (a partial last block), for both layouts of b.
TEST_P(ForwardOps, Matmul16BitWeightsSeveralBlocks) {
  if (!supported(Op::Matmul, DType::BF16)) GTEST_SKIP() << GetParam() << ": op not supported with F32 activations";
  check_matmul(be(), 3, 1103, 1001, false, true, DType::BF16, 1.f, 0.f, 70);   // linear layer: W (O,I)
  check_matmul(be(), 5, 1103, 1001, false, true, DType::BF16, 1.f, 0.f, 73);   // more rows than the CPU matvec takes
  check_matmul(be(), 3, 1001, 1103, false, false, DType::BF16, 1.f, 0.f, 71);  // b (K,N): K split
  check_matmul(be(), 3, 1001, 1103, true, false, DType::BF16, 0.5f, 1.f, 72);
}

TEST_P(ForwardOps, AddBias) {
  const int64_t N = 17, O = 83;
  for (DType wt : {DType::F32, DType::BF16}) {
    if (!supported(Op::AddBias, wt)) continue;
    auto out0 = random_floats(static_cast<size_t>(N * O), 80);
    auto bf = random_floats(static_cast<size_t>(O), 81);
    auto b16 = to_bf16(bf);
    auto bd = wt == DType::F32 ? to_double(bf) : widen(b16, wt);
    GuardedBuffer out = upload_guarded(be(), out0);
    GuardedBuffer gb = wt == DType::F32 ? upload_guarded(be(), bf) : upload_guarded(be(), b16);
    be().add_bias(out.tensor(DType::F32, {N, O}), gb.tensor(wt, {O}));
    auto ref = to_double(out0);
    k::add_bias(ref.data(), bd.data(), N, O);
    expect_close(out.download<float>(), ref, abs_scaled(ref, 1), "add_bias");  // one rounding
    EXPECT_TRUE(out.guards_intact());
  }
}

TEST_P(ForwardOps, Rope) {
  if (!supported(Op::RopeForward)) GTEST_SKIP() << GetParam() << ": op not supported with F32 activations";
  const int64_t B = 2, S = 37, H = 3, D = 22, N = B * S;
  // A yarn table (scaled cos/sin) so the attention factor is exercised as well as inv_freq.
  RopeConfig rc;
  rc.type = RopeType::Yarn;
  rc.theta = 1e6;
  rc.factor = 4;
  const RopeTable rope = rope_table(rc, static_cast<int>(D), 4096);
  auto x = random_floats(static_cast<size_t>(N * H * D), 90, -2.f, 2.f);
  std::vector<int32_t> pos(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) pos[n] = static_cast<int32_t>(n % S * 13);  // angles up to ~470 rad
  GuardedBuffer gx = upload_guarded(be(), x), gp = upload_guarded(be(), pos);
  be().rope_forward(gx.tensor(DType::F32, {B, S, H, D}), gp.tensor(DType::I32, {N}), rope);
  auto ref = to_double(x);
  k::rope_forward(ref.data(), pos.data(), N, H, D, rope.inv_freq.data(), rope.attention_scaling);
  // Both sides take the same fp32 angle (the contract); cos/sin of it in fp32 are within
  // one rounding each, one more for the attention scaling a, then x1·c − x2·s costs three
  // more: ≤ 5 roundings of a·(|x1| + |x2|).
  std::vector<double> b(ref.size());
  for (int64_t r = 0; r < N * H; ++r)
    for (int64_t i = 0; i < D / 2; ++i) {
      const double m = std::fabs(x[r * D + i]) + std::fabs(x[r * D + i + D / 2]);
      b[r * D + i] = b[r * D + i + D / 2] = elementwise_bound(5, rope.attention_scaling * m);
    }
  expect_close(gx.download<float>(), ref, b, "rope");
  EXPECT_TRUE(gx.guards_intact());
}

void check_attention(Backend& be, int64_t B, int64_t S, int64_t H, int64_t Hkv, int64_t D, bool with_seg,
                     uint64_t seed) {
  SCOPED_TRACE(fmt::format("B={} S={} H={} Hkv={} D={} seg={}", B, S, H, Hkv, D, with_seg));
  auto q = random_floats(static_cast<size_t>(B * S * H * D), seed, -2.f, 2.f);
  auto kk = random_floats(static_cast<size_t>(B * S * Hkv * D), seed + 1, -2.f, 2.f);
  auto v = random_floats(static_cast<size_t>(B * S * Hkv * D), seed + 2);
  std::vector<int32_t> seg(static_cast<size_t>(B * S));
  for (int64_t i = 0; i < B * S; ++i) seg[i] = static_cast<int32_t>((i % S) / 7);  // packed samples of 7
  GuardedBuffer gq = upload_guarded(be, q), gk = upload_guarded(be, kk), gv = upload_guarded(be, v);
  GuardedBuffer gs = upload_guarded(be, seg);
  GuardedBuffer out(be, B * S * H * D * 4), lse(be, B * H * S * 4);
  be.attention_forward(out.tensor(DType::F32, {B, S, H, D}), lse.tensor(DType::F32, {B, H, S}),
                       gq.tensor(DType::F32, {B, S, H, D}), gk.tensor(DType::F32, {B, S, Hkv, D}),
                       gv.tensor(DType::F32, {B, S, Hkv, D}),
                       with_seg ? gs.tensor(DType::I32, {B, S}) : Tensor());
  auto qd = to_double(q), kd = to_double(kk), vd = to_double(v);
  std::vector<double> ref(q.size()), lref(static_cast<size_t>(B * H * S));
  k::attention_forward(ref.data(), lref.data(), qd.data(), kd.data(), vd.data(), with_seg ? seg.data() : nullptr,
                       B, S, H, Hkv, D);
  // Per query with n allowed keys: each score is a length-D dot product (error ≤
  // sum_bound(D, σ) with σ = scale·Σ_d|q·k|), which perturbs each weight p_s relatively by
  // at most twice that (numerator and the normaliser); the output is a length-n weighted
  // sum: sum_bound(n, Σ p|v|). lse: the score error plus the log-sum of n terms.
  std::vector<double> b(ref.size()), lb(lref.size());
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  for (int64_t bb = 0; bb < B; ++bb)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < S; ++t) {
        const int64_t hk = h / (H / Hkv);
        double sigma = 0;
        int64_t n = 0;
        std::vector<double> pv(static_cast<size_t>(D), 0.0);
        const double l = lref[(bb * H + h) * S + t];
        for (int64_t s = 0; s <= t; ++s) {
          if (with_seg && seg[bb * S + s] != seg[bb * S + t]) continue;
          ++n;
          double dot = 0, adot = 0;
          for (int64_t d = 0; d < D; ++d) {
            dot += qd[((bb * S + t) * H + h) * D + d] * kd[((bb * S + s) * Hkv + hk) * D + d];
            adot += std::fabs(qd[((bb * S + t) * H + h) * D + d] * kd[((bb * S + s) * Hkv + hk) * D + d]);
          }
          sigma = std::max(sigma, scale * adot);
          const double p = std::exp(dot * scale - l);
          for (int64_t d = 0; d < D; ++d) pv[d] += p * std::fabs(vd[((bb * S + s) * Hkv + hk) * D + d]);
        }
        const double score_err = sum_bound(D, sigma);
        for (int64_t d = 0; d < D; ++d)
          b[((bb * S + t) * H + h) * D + d] = sum_bound(n, pv[d]) + 2 * score_err * pv[d];
        lb[(bb * H + h) * S + t] = score_err + sum_bound(n, 1.0) + elementwise_bound(2, std::fabs(l));
      }
  expect_close(out.download<float>(), ref, b, "attention.out");
  expect_close(lse.download<float>(), lref, lb, "attention.lse");
  EXPECT_TRUE(out.guards_intact());
  EXPECT_TRUE(lse.guards_intact());
}

TEST_P(ForwardOps, Attention) {
  if (!supported(Op::AttentionForward)) GTEST_SKIP() << GetParam() << ": op not supported with F32 activations";
  check_attention(be(), 2, 29, 6, 2, 13, false, 100);  // GQA groups of 3
  check_attention(be(), 1, 23, 4, 4, 9, false, 110);   // MHA
  check_attention(be(), 2, 31, 6, 3, 11, true, 120);   // packed samples
}

// With one segment per row, seg changes nothing; with a segment boundary, a query never sees
// the keys before it: the first query of a segment returns its own value row.
TEST_P(ForwardOps, AttentionSegmentStartsAttendToThemselves) {
  if (!supported(Op::AttentionForward)) GTEST_SKIP() << GetParam() << ": op not supported with F32 activations";
  const int64_t B = 1, S = 9, H = 2, D = 5;
  auto q = random_floats(S * H * D, 130), kk = random_floats(S * H * D, 131), v = random_floats(S * H * D, 132);
  std::vector<int32_t> seg{0, 0, 0, 0, 1, 1, 1, 1, 1};
  GuardedBuffer gq = upload_guarded(be(), q), gk = upload_guarded(be(), kk), gv = upload_guarded(be(), v);
  GuardedBuffer gs = upload_guarded(be(), seg), out(be(), S * H * D * 4);
  be().attention_forward(out.tensor(DType::F32, {B, S, H, D}), Tensor(), gq.tensor(DType::F32, {B, S, H, D}),
                         gk.tensor(DType::F32, {B, S, H, D}), gv.tensor(DType::F32, {B, S, H, D}),
                         gs.tensor(DType::I32, {B, S}));
  auto o = out.download<float>();
  for (int64_t h = 0; h < H; ++h)
    for (int64_t d = 0; d < D; ++d) EXPECT_EQ(o[(4 * H + h) * D + d], v[(4 * H + h) * D + d]);
}

TEST_P(ForwardOps, Swiglu) {
  if (!supported(Op::SwigluForward)) GTEST_SKIP() << GetParam() << ": op not supported with F32 activations";
  const int64_t n = 1009;
  auto g = random_floats(n, 140, -8.f, 8.f), u = random_floats(n, 141, -2.f, 2.f);
  GuardedBuffer gg = upload_guarded(be(), g), gu = upload_guarded(be(), u), out(be(), n * 4);
  be().swiglu_forward(out.tensor(DType::F32, {n}), gg.tensor(DType::F32, {n}), gu.tensor(DType::F32, {n}));
  std::vector<double> ref(n);
  auto gd = to_double(g), ud = to_double(u);
  k::swiglu_forward(ref.data(), gd.data(), ud.data(), n);
  // exp (≤ 1 ulp: 2 roundings), 1 + e, the division, the product: ≤ 6 roundings of |ref|
  // (each step's relative error passes through with factor ≤ 1).
  expect_close(out.download<float>(), ref, abs_scaled(ref, 6), "swiglu");
  EXPECT_TRUE(out.guards_intact());
}

TEST_P(ForwardOps, AddScaleAliasing) {
  if (!supported(Op::Add) || !supported(Op::Scale)) GTEST_SKIP() << GetParam() << ": op not supported with F32 activations";
  const int64_t n = 777;
  auto a = random_floats(n, 150), b = random_floats(n, 151);
  GuardedBuffer ga = upload_guarded(be(), a), gb = upload_guarded(be(), b), out(be(), n * 4);
  be().add(out.tensor(DType::F32, {n}), ga.tensor(DType::F32, {n}), gb.tensor(DType::F32, {n}));
  be().add(ga.tensor(DType::F32, {n}), ga.tensor(DType::F32, {n}), gb.tensor(DType::F32, {n}));  // out aliases a
  be().scale(gb.tensor(DType::F32, {n}), -0.37f);
  auto ad = to_double(a), bd = to_double(b);
  std::vector<double> sum(n), scaled = bd;
  k::add(sum.data(), ad.data(), bd.data(), n);
  k::scale(scaled.data(), -0.37f, n);
  expect_close(out.download<float>(), sum, abs_scaled(sum, 1), "add");  // one rounding each
  expect_close(ga.download<float>(), sum, abs_scaled(sum, 1), "add_inplace");
  expect_close(gb.download<float>(), scaled, abs_scaled(scaled, 1), "scale");
  EXPECT_TRUE(out.guards_intact() && ga.guards_intact() && gb.guards_intact());
}

TEST_P(ForwardOps, Dropout) {
  if (!supported(Op::Dropout)) GTEST_SKIP() << GetParam() << ": op not supported with F32 activations";
  const int64_t n = 20011;
  const float p = 0.3f;
  const uint64_t seed = 1234567;
  auto x = random_floats(n, 160, 0.5f, 2.f);  // never zero, so a zero output is a dropped element
  GuardedBuffer gx = upload_guarded(be(), x), out(be(), n * 4), out2(be(), n * 4);
  be().dropout(out.tensor(DType::F32, {n}), gx.tensor(DType::F32, {n}), p, seed);
  be().dropout(out2.tensor(DType::F32, {n}), gx.tensor(DType::F32, {n}), p, seed + 1);
  auto xd = to_double(x);
  std::vector<double> ref(n);
  k::dropout(ref.data(), xd.data(), p, seed, n);
  // The mask is an exact function of (seed, i); kept values: 1/(1−p) rounded, one product.
  auto got = out.download<float>();
  expect_close(got, ref, abs_scaled(ref, 2), "dropout");
  // Keep rate: binomial(n, 1−p); 5 standard deviations is a 6e-7 false-alarm rate.
  const double kept = static_cast<double>(std::count_if(got.begin(), got.end(), [](float f) { return f != 0.f; }));
  EXPECT_NEAR(kept / n, 1.0 - p, 5 * std::sqrt(p * (1 - p) / n));
  // Another seed gives another mask (agreement of two independent masks ≈ p² + (1−p)²).
  auto got2 = out2.download<float>();
  int64_t same = 0;
  for (int64_t i = 0; i < n; ++i) same += (got[i] == 0.f) == (got2[i] == 0.f);
  EXPECT_NEAR(static_cast<double>(same) / n, p * p + (1 - p) * (1 - p), 0.02);
  EXPECT_TRUE(out.guards_intact() && out2.guards_intact());
}

// DoRA (backend.h "DoRA"). The references below are the ops' own definitions written as plain
// fp32 steps (this file is built without FMA contraction on x86-64), so backends must agree
// exactly except where a long sum's order is free: the norm's Σ v² is a double sum (a CUDA
// block reduction adds in another order), so n may differ by one fp32 rounding: ≤ FLT_EPSILON·n.
float round16(float v) { return bf16_to_f32(f32_to_bf16(v)); }

TEST_P(ForwardOps, DoraNorm) {
  const int64_t R = 37, I = 301;  // rows not a multiple of the row block, I not of any vector width
  const float s = 1.75f;
  auto w = random_floats(static_cast<size_t>(R * I), 170), ba = random_floats(static_cast<size_t>(R * I), 171);
  for (DType wt : {DType::F32, DType::BF16})
    for (bool bf16_lora : {false, true}) {
      SCOPED_TRACE(std::string(dtype_name(wt)) + (bf16_lora ? " bf16 lora" : " f32 lora"));
      const std::vector<uint16_t> w16 = to_bf16(w);
      GuardedBuffer gw = wt == DType::F32 ? upload_guarded(be(), w) : upload_guarded(be(), w16);
      GuardedBuffer gba = upload_guarded(be(), ba), out(be(), R * 4);
      be().dora_norm(out.tensor(DType::F32, {R}), gw.tensor(wt, {R, I}), gba.tensor(DType::F32, {R, I}), s, bf16_lora);
      const std::vector<float> got = out.download<float>();
      for (int64_t r = 0; r < R; ++r) {
        double ss = 0;
        for (int64_t k = 0; k < I; ++k) {
          const size_t i = static_cast<size_t>(r * I + k);
          const float wv = wt == DType::F32 ? w[i] : bf16_to_f32(w16[i]);
          const float v = bf16_lora ? wv + round16(s * round16(ba[i])) : wv + s * ba[i];
          ss += static_cast<double>(v) * v;
        }
        const float want = static_cast<float>(std::sqrt(ss));
        EXPECT_NEAR(got[static_cast<size_t>(r)], want, FLT_EPSILON * want) << "row " << r;
      }
      EXPECT_TRUE(out.guards_intact());
    }
}

// dora_combine: F32 y = (y + (c − 1)·t1) + (c·t2)·s; BF16 y = bf16(y + ((c − 1)·t1 + (c·t2)·s)),
// c = m/n: elementwise fp32 ops in a fixed order, so every backend equals the reference exactly.
TEST_P(ForwardOps, DoraCombine) {
  const int64_t N = 29, O = 45;
  const float s = 0.625f;
  auto y = random_floats(static_cast<size_t>(N * O), 172, -3.f, 3.f), t1 = random_floats(y.size(), 173),
       t2 = random_floats(y.size(), 174), m = random_floats(static_cast<size_t>(O), 175, 0.5f, 2.f),
       n = random_floats(static_cast<size_t>(O), 176, 0.5f, 2.f);
  GuardedBuffer gm = upload_guarded(be(), m), gn = upload_guarded(be(), n);
  for (DType at : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(dtype_name(at));
    const bool f32 = at == DType::F32;
    const std::vector<uint16_t> y16 = to_bf16(y), a16 = to_bf16(t1), b16 = to_bf16(t2);
    GuardedBuffer gy = f32 ? upload_guarded(be(), y) : upload_guarded(be(), y16);
    GuardedBuffer g1 = f32 ? upload_guarded(be(), t1) : upload_guarded(be(), a16);
    GuardedBuffer g2 = f32 ? upload_guarded(be(), t2) : upload_guarded(be(), b16);
    be().dora_combine(gy.tensor(at, {N, O}), g1.tensor(at, {N, O}), g2.tensor(at, {N, O}), gm.tensor(DType::F32, {O}),
                      gn.tensor(DType::F32, {O}), s);
    const std::vector<float> got = f32 ? gy.download<float>() : std::vector<float>();
    const std::vector<uint16_t> got16 = f32 ? std::vector<uint16_t>() : gy.download<uint16_t>();
    for (int64_t i = 0; i < N * O; ++i) {
      const size_t k = static_cast<size_t>(i);
      const float c = m[static_cast<size_t>(i % O)] / n[static_cast<size_t>(i % O)];
      if (f32) {
        float want = y[k];
        want += (c - 1.f) * t1[k];
        want += c * t2[k] * s;
        ASSERT_EQ(got[k], want) << i;
      } else {
        const float a = (c - 1.f) * bf16_to_f32(a16[k]), b = (c * bf16_to_f32(b16[k])) * s;
        ASSERT_EQ(got16[k], f32_to_bf16(bf16_to_f32(y16[k]) + (a + b))) << i;
      }
    }
    EXPECT_TRUE(gy.guards_intact());
  }
}

// dequantize_4bit: NF4/FP4, plain and nested absmax, a weight whose element count is odd and
// not a multiple of 64 (a partial last block, a half-used last byte): every backend equals the
// reference (formats/quant4.cpp, itself equal to bitsandbytes) bit for bit in F32 and BF16;
// each value is one fp32 product (two with a nested absmax, plus one add), rounded once.
TEST_P(ForwardOps, Dequantize4bit) {
  const int64_t O = 37, I = 101, n = O * I;
  if (!be().supports(Op::Dequantize4bit, DType::F32, DType::U8)) GTEST_SKIP() << "no dequantize_4bit";
  const std::vector<float> w = random_floats(static_cast<size_t>(n), 21, -2.f, 2.f);
  for (Quant4Type type : {Quant4Type::NF4, Quant4Type::FP4})
    for (bool nested : {false, true}) {
      SCOPED_TRACE(std::string(quant4_type_name(type)) + (nested ? " nested" : ""));
      const Quant4Host q = quantize_4bit(w.data(), DType::F32, n, type, nested);
      const Quant4View host = cpu_view(q, O, I);
      GuardedBuffer packed = upload_guarded(be(), q.packed);
      GuardedBuffer absmax = nested ? upload_guarded(be(), q.qabsmax) : upload_guarded(be(), q.absmax);
      GuardedBuffer nest = upload_guarded(be(), nested ? q.nested_absmax : std::vector<float>{0.f});
      GuardedBuffer code4 = upload_guarded(be(), std::vector<float>(quant4_code(type), quant4_code(type) + 16));
      GuardedBuffer code8 = upload_guarded(be(), std::vector<float>(dynamic8_code(), dynamic8_code() + 256));
      Quant4View dev = host;
      dev.packed = packed.tensor(DType::U8, {host.packed.numel()});
      dev.absmax = absmax.tensor(host.absmax.dtype, {host.absmax.numel()});
      dev.nested_absmax = nested ? nest.tensor(DType::F32, {host.nested_absmax.numel()}) : Tensor();
      dev.code4 = code4.tensor(DType::F32, {16});
      dev.code8 = nested ? code8.tensor(DType::F32, {256}) : Tensor();
      for (DType dt : {DType::F32, DType::BF16}) {
        if (!be().supports(Op::Dequantize4bit, dt, DType::U8)) continue;
        const size_t es = dtype_size(dt);
        GuardedBuffer out(be(), n * static_cast<int64_t>(es));
        be().dequantize_4bit(out.tensor(dt, {O, I}), dev);
        std::vector<uint8_t> want(static_cast<size_t>(n) * es);
        dequantize_4bit_ref(Tensor(want.data(), dt, {O, I}), host);
        EXPECT_EQ(out.download<uint8_t>(), want) << dtype_name(dt);
        EXPECT_TRUE(out.guards_intact());
      }
    }
}

INSTANTIATE_TEST_SUITE_P(Backends, ForwardOps, ::testing::Values("cpu", "cuda"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace lorafit
