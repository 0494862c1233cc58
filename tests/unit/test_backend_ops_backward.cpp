// Backward ops: (1) every backward kernel, instantiated with double, against central finite
// differences of the double forward on tiny shapes; (2) each backend's fp32 op against that
// double kernel (guard bytes around outputs, fp32 rounding bounds); (3) the fused chunked
// lm-head + CE against a plain double reference across several vocabulary chunks; (4) AdamW
// against torch 2.5.1's numbers and the optimizer/norm helpers.
#include <algorithm>
#include <cmath>
#include <functional>

#include "backend/cpu/kernels_backward.h"
#include "backend/cpu/kernels_forward.h"
#include "backend_parity.h"

namespace lorafit {
namespace {

using namespace lorafit::testing;
namespace k = lorafit::cpu;
using Vec = std::vector<double>;

// ---- finite differences -------------------------------------------------------------------
// Checks grad (the analytic dL/dx) against (L(x + h e_i) − L(x − h e_i)) / 2h for every i.
// With h = 1e-5 the truncation error is h²/6·|L'''| ≈ 1e-11 for these O(1) functions and the
// rounding error is ≈ eps64·|L|/h ≈ 1e-11, so 1e-7·(1 + |g|) leaves four orders of headroom
// while any wrong term in a formula (O(1e-2) or more here) fails.
void expect_fd(Vec& x, const Vec& grad, const std::function<double()>& loss, const char* what) {
  ASSERT_EQ(x.size(), grad.size());
  const double h = 1e-5;
  int bad = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double lp = loss();
    x[i] = x0 - h;
    const double lm = loss();
    x[i] = x0;
    const double fd = (lp - lm) / (2 * h);
    if (!(std::fabs(fd - grad[i]) <= 1e-7 * (1 + std::fabs(fd))) && ++bad <= 5)
      ADD_FAILURE() << what << "[" << i << "]: analytic " << grad[i] << " finite difference " << fd;
  }
}

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

Vec rnd(size_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) { return to_double(random_floats(n, seed, lo, hi)); }

TEST(BackwardFd, RmsNorm) {
  const int64_t N = 3, C = 7;
  Vec x = rnd(N * C, 1, -2, 2), w = rnd(C, 2, 0.5, 1.5), g = rnd(N * C, 3);
  Vec y(N * C), rstd(N), dx(N * C);
  auto loss = [&] {
    k::rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), N, C, 1e-6f);
    return dot(y, g);
  };
  loss();
  k::rmsnorm_backward_kernel(dx.data(), g.data(), x.data(), w.data(), rstd.data(), N, C);
  expect_fd(x, dx, loss, "rmsnorm dx");
}

TEST(BackwardFd, Rope) {
  const int64_t N = 4, H = 2, D = 6;
  std::vector<int32_t> pos{0, 1, 5, 17};
  const std::vector<float> inv = rope_default_inv_freq(D, 10000.0);  // with a yarn-like cos/sin scale 1.25
  Vec x = rnd(N * H * D, 4), g = rnd(N * H * D, 5), y;
  auto loss = [&] {
    y = x;
    k::rope_forward(y.data(), pos.data(), N, H, D, inv.data(), 1.25f);
    return dot(y, g);
  };
  Vec dx = g;
  k::rope_rotate(dx.data(), pos.data(), N, H, D, inv.data(), 1.25f, -1);
  expect_fd(x, dx, loss, "rope dx");
}

void attention_fd(bool with_seg) {
  const int64_t B = 2, S = 5, H = 4, Hkv = 2, D = 3;
  std::vector<int32_t> seg{0, 0, 1, 1, 1, 0, 0, 0, 2, 2};
  const int32_t* sp = with_seg ? seg.data() : nullptr;
  Vec q = rnd(B * S * H * D, 6, -2, 2), kk = rnd(B * S * Hkv * D, 7, -2, 2), v = rnd(B * S * Hkv * D, 8);
  Vec g = rnd(B * S * H * D, 9), out(q.size()), lse(B * H * S);
  auto loss = [&] {
    k::attention_forward(out.data(), lse.data(), q.data(), kk.data(), v.data(), sp, B, S, H, Hkv, D);
    return dot(out, g);
  };
  loss();
  Vec dq(q.size()), dk(kk.size()), dv(v.size());
  k::attention_backward_kernel(dq.data(), dk.data(), dv.data(), g.data(), q.data(), kk.data(), v.data(),
                               out.data(), lse.data(), sp, B, S, H, Hkv, D);
  expect_fd(q, dq, loss, "attention dq");
  expect_fd(kk, dk, loss, "attention dk");
  expect_fd(v, dv, loss, "attention dv");
}
TEST(BackwardFd, AttentionCausalGqa) { attention_fd(false); }
TEST(BackwardFd, AttentionPackedSegments) { attention_fd(true); }

TEST(BackwardFd, Swiglu) {
  const int64_t n = 11;
  Vec gate = rnd(n, 10, -4, 4), up = rnd(n, 11, -2, 2), g = rnd(n, 12), y(n);
  auto loss = [&] {
    k::swiglu_forward(y.data(), gate.data(), up.data(), n);
    return dot(y, g);
  };
  Vec dgate(n), dup(n);
  k::swiglu_backward_kernel(dgate.data(), dup.data(), g.data(), gate.data(), up.data(), n);
  expect_fd(gate, dgate, loss, "swiglu dgate");
  expect_fd(up, dup, loss, "swiglu dup");
}

TEST(BackwardFd, LmHeadCrossEntropy) {
  const int64_t N = 5, C = 4, V = 7;
  std::vector<int32_t> tg{3, -100, 0, 6, 2};
  Vec x = rnd(N * C, 13, -2, 2), w = rnd(V * C, 14, -2, 2), dl = rnd(N, 15, 0.2f, 1.f);
  Vec loss_n(N), lse(N), dx(N * C);
  auto loss = [&] {
    k::lmhead_ce_forward_ref(loss_n.data(), lse.data(), x.data(), w.data(), tg.data(), N, C, V);
    return dot(loss_n, dl);
  };
  loss();
  EXPECT_EQ(loss_n[1], 0.0);  // ignored row
  k::lmhead_ce_backward_ref(dx.data(), dl.data(), x.data(), w.data(), tg.data(), lse.data(), N, C, V);
  expect_fd(x, dx, loss, "lmhead_ce dx");
}

// ---- fp32 backend ops against the double kernels ------------------------------------------
class BackwardOps : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string why;
    be_ = try_backend(GetParam(), &why);
    if (!be_) GTEST_SKIP() << GetParam() << " column skipped: CUDA backend not built / no GPU (" << why << ")";
  }
  Backend& be() { return *be_; }
  std::unique_ptr<Backend> be_;
};

// A normwise bound: every output is a sum of at most K terms of magnitude ≤ M, each term
// carrying at most c roundings, so |err| ≤ (K + c)·eps32·K·M (sum_bound with Σ|terms| ≤ K·M).
std::vector<double> normwise(size_t n, int64_t K, int c, double M) {
  return std::vector<double>(n, static_cast<double>(K + c) * kEps32 * static_cast<double>(K) * M);
}

TEST_P(BackwardOps, RmsNorm) {
  const int64_t N = 9, C = 67;
  auto x = random_floats(N * C, 20, -3, 3), w = random_floats(C, 21, 0.5, 1.5), g = random_floats(N * C, 22);
  Vec xd = to_double(x), wd = to_double(w), gd = to_double(g), y(N * C), rstd(N), ref(N * C);
  k::rmsnorm_forward(y.data(), rstd.data(), xd.data(), wd.data(), N, C, 1e-6f);
  k::rmsnorm_backward_kernel(ref.data(), gd.data(), xd.data(), wd.data(), rstd.data(), N, C);
  std::vector<float> rs(rstd.begin(), rstd.end());
  GuardedBuffer gx = upload_guarded(be(), x), gw = upload_guarded(be(), w), gg = upload_guarded(be(), g);
  GuardedBuffer gr = upload_guarded(be(), rs), dx(be(), N * C * 4);
  be().rmsnorm_backward(dx.tensor(DType::F32, {N, C}), gg.tensor(DType::F32, {N, C}), gx.tensor(DType::F32, {N, C}),
                        gw.tensor(DType::F32, {C}), gr.tensor(DType::F32, {N}));
  // dx = r·g·w − x·r³/C·Σ(g·w·x): a C-term sum of products (3 roundings each); |g·w·x| ≤ 4.5
  // and r ≤ 1/rms(x) ≈ 0.6 for U(−3,3), so each term of the result is ≤ 4.5·0.6³·3 ≈ 3.
  expect_close(dx.download<float>(), ref, normwise(ref.size(), C, 6, 3.0 / static_cast<double>(C) + 1.0),
               "rmsnorm_backward");
  EXPECT_TRUE(dx.guards_intact());
}

TEST_P(BackwardOps, RopeBackwardInvertsForward) {
  const int64_t N = 7, H = 3, D = 10;
  auto x = random_floats(N * H * D, 23);
  std::vector<int32_t> pos{0, 1, 2, 100, 1000, 31, 7};
  GuardedBuffer gx = upload_guarded(be(), x), gp = upload_guarded(be(), pos);
  Tensor t = gx.tensor(DType::F32, {N, H, D});
  const RopeTable rope{rope_default_inv_freq(D, 1e6), 1.0f};
  be().rope_forward(t, gp.tensor(DType::I32, {N}), rope);
  be().rope_backward(t, gp.tensor(DType::I32, {N}), rope);
  // A rotation then its inverse: 2 × (2 products + 1 sum) roundings of values ≤ 1, plus
  // cos²+sin² = 1 to within 2 roundings: |err| ≤ 8·u·|x| + 2u ≤ 5·eps32.
  expect_close(gx.download<float>(), to_double(x), std::vector<double>(x.size(), 5 * kEps32), "rope roundtrip");
  EXPECT_TRUE(gx.guards_intact());
}

TEST_P(BackwardOps, Attention) {
  const int64_t B = 2, S = 13, H = 6, Hkv = 2, D = 5;
  auto q = random_floats(B * S * H * D, 24), kk = random_floats(B * S * Hkv * D, 25), v = random_floats(B * S * Hkv * D, 26);
  auto g = random_floats(B * S * H * D, 27);
  Vec qd = to_double(q), kd = to_double(kk), vd = to_double(v), gd = to_double(g), out(qd.size()), lse(B * H * S);
  k::attention_forward(out.data(), lse.data(), qd.data(), kd.data(), vd.data(), nullptr, B, S, H, Hkv, D);
  Vec dq(qd.size()), dk(kd.size()), dv(vd.size());
  k::attention_backward_kernel(dq.data(), dk.data(), dv.data(), gd.data(), qd.data(), kd.data(), vd.data(),
                               out.data(), lse.data(), nullptr, B, S, H, Hkv, D);
  std::vector<float> of(out.begin(), out.end()), lf(lse.begin(), lse.end());
  GuardedBuffer gq = upload_guarded(be(), q), gk = upload_guarded(be(), kk), gv = upload_guarded(be(), v);
  GuardedBuffer gg = upload_guarded(be(), g), go = upload_guarded(be(), of), gl = upload_guarded(be(), lf);
  GuardedBuffer dqb(be(), q.size() * 4), dkb(be(), kk.size() * 4), dvb(be(), v.size() * 4);
  be().attention_backward(dqb.tensor(DType::F32, {B, S, H, D}), dkb.tensor(DType::F32, {B, S, Hkv, D}),
                          dvb.tensor(DType::F32, {B, S, Hkv, D}), gg.tensor(DType::F32, {B, S, H, D}),
                          gq.tensor(DType::F32, {B, S, H, D}), gk.tensor(DType::F32, {B, S, Hkv, D}),
                          gv.tensor(DType::F32, {B, S, Hkv, D}), go.tensor(DType::F32, {B, S, H, D}),
                          gl.tensor(DType::F32, {B, H, S}), Tensor());
  // Every gradient is a sum over ≤ S·H/Hkv (dk, dv) or S (dq) terms P·(dP − δ)·k; inputs ≤ 1,
  // P ≤ 1, |dP − δ| ≤ 2D, so each term ≤ 2D·D^-½ ≤ 2D. Each term carries the D-term dot
  // products of the score and dP, the exp (≈ 2 roundings plus the score's error amplified by
  // |score| ≤ D^½) and 4 products: c = 2D + 10 roundings.
  const int64_t K = S * H / Hkv;
  const double M = 2.0 * D;
  expect_close(dqb.download<float>(), dq, normwise(dq.size(), K, 2 * D + 10, M), "attention dq");
  expect_close(dkb.download<float>(), dk, normwise(dk.size(), K, 2 * D + 10, M), "attention dk");
  expect_close(dvb.download<float>(), dv, normwise(dv.size(), K, 2 * D + 10, 1.0), "attention dv");
  EXPECT_TRUE(dqb.guards_intact() && dkb.guards_intact() && dvb.guards_intact());
}

TEST_P(BackwardOps, Swiglu) {
  const int64_t n = 101;
  auto gate = random_floats(n, 28, -6, 6), up = random_floats(n, 29, -2, 2), g = random_floats(n, 30);
  Vec dg(n), du(n), gd = to_double(gate), ud = to_double(up), dd = to_double(g);
  k::swiglu_backward_kernel(dg.data(), du.data(), dd.data(), gd.data(), ud.data(), n);
  GuardedBuffer a = upload_guarded(be(), gate), b = upload_guarded(be(), up), c = upload_guarded(be(), g);
  GuardedBuffer o1(be(), n * 4), o2(be(), n * 4);
  be().swiglu_backward(o1.tensor(DType::F32, {n}), o2.tensor(DType::F32, {n}), c.tensor(DType::F32, {n}),
                       a.tensor(DType::F32, {n}), b.tensor(DType::F32, {n}));
  // Elementwise: exp (≤ 2 ulp in glibc, its argument exact), 1+e, 1/(·), and ≤ 6 products /
  // sums; |dgate| terms ≤ |g·up|·(1 + |gate|) ≤ 14, so 12 roundings of 14 bound each element.
  expect_close(o1.download<float>(), dg, std::vector<double>(n, elementwise_bound(12, 14.0)), "swiglu dgate");
  expect_close(o2.download<float>(), du, std::vector<double>(n, elementwise_bound(12, 6.0)), "swiglu dup");
}

// The chunked fp32 lm-head (V spans 3 chunks of 4096, the last partial) against the plain
// double reference; one row ignored, targets in every chunk; weights F32 and BF16.
TEST_P(BackwardOps, LmHeadCeChunked) {
  const int64_t N = 6, C = 24, V = 9000;
  std::vector<int32_t> tg{5, 4095, 4096, -100, 8999, 7000};
  auto x = random_floats(N * C, 31, -1, 1), wf = random_floats(V * C, 32, -1, 1);
  auto dl = random_floats(N, 33, 0.1f, 1.f);
  for (DType wt : {DType::F32, DType::BF16}) {
    auto w16 = to_bf16(wf);
    Vec wd = wt == DType::F32 ? to_double(wf) : widen(w16, wt), xd = to_double(x), dld = to_double(dl);
    Vec loss(N), lse(N), dx(N * C);
    k::lmhead_ce_forward_ref(loss.data(), lse.data(), xd.data(), wd.data(), tg.data(), N, C, V);
    k::lmhead_ce_backward_ref(dx.data(), dld.data(), xd.data(), wd.data(), tg.data(), lse.data(), N, C, V);
    GuardedBuffer gx = upload_guarded(be(), x), gt = upload_guarded(be(), tg), gdl = upload_guarded(be(), dl);
    GuardedBuffer gw = wt == DType::F32 ? upload_guarded(be(), wf) : upload_guarded(be(), w16);
    GuardedBuffer gloss(be(), N * 4), glse(be(), N * 4), gdx(be(), N * C * 4);
    be().lmhead_ce_forward(gloss.tensor(DType::F32, {N}), glse.tensor(DType::F32, {N}), gx.tensor(DType::F32, {N, C}),
                           gw.tensor(wt, {V, C}), gt.tensor(DType::I32, {N}));
    be().lmhead_ce_backward(gdx.tensor(DType::F32, {N, C}), gdl.tensor(DType::F32, {N}), gx.tensor(DType::F32, {N, C}),
                            gw.tensor(wt, {V, C}), gt.tensor(DType::I32, {N}), glse.tensor(DType::F32, {N}));
    // Logits are C-term fp32 dot products of values ≤ 1: |err_z| ≤ (C+2)·eps32·C. The LSE and
    // the loss shift by at most that (a softmax-weighted mean of logit errors), plus the
    // rounding of lse (|lse| ≤ C + ln V ≈ 33) to fp32.
    const double ez = static_cast<double>(C + 2) * kEps32 * static_cast<double>(C);
    expect_close(glse.download<float>(), lse, std::vector<double>(N, 2 * ez + 33 * kEps32), "lse");
    expect_close(gloss.download<float>(), loss, std::vector<double>(N, 3 * ez + 66 * kEps32), "loss");
    // dx = Σ_v dl·(p_v − 1[v=t])·w_v: p_v carries the relative error of exp(z − lse) (≤ 3·ez +
    // 4u, the argument error times its magnitude 1) and Σ_v p_v = 1, |w| ≤ 1, so the softmax
    // part errs by ≤ 3ez + V-term GEMM rounding (V + 2)·eps32·(Σ p·|w| ≤ 1) per element.
    const double edx = 3 * ez + static_cast<double>(V + 2) * kEps32 * 2;
    expect_close(gdx.download<float>(), dx, std::vector<double>(N * C, edx), "dx");
    EXPECT_TRUE(gdx.guards_intact() && gloss.guards_intact() && glse.guards_intact());
  }
}

TEST_P(BackwardOps, LmHeadCeRejectsBadTarget) {
  std::vector<int32_t> tg{1, 12};
  auto x = random_floats(2 * 3, 34), w = random_floats(10 * 3, 35);
  GuardedBuffer gx = upload_guarded(be(), x), gw = upload_guarded(be(), w), gt = upload_guarded(be(), tg);
  GuardedBuffer l(be(), 8), s(be(), 8);
  try {
    be().lmhead_ce_forward(l.tensor(DType::F32, {2}), s.tensor(DType::F32, {2}), gx.tensor(DType::F32, {2, 3}),
                           gw.tensor(DType::F32, {10, 3}), gt.tensor(DType::I32, {2}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "lm-head cross-entropy: target 12 at row 1 is outside the vocabulary [0, 10) and is not "
                 "the ignore index -100; check the labels of the batch");
  }
}

TEST_P(BackwardOps, BiasGradAccumulates) {
  const int64_t N = 5, O = 3;
  std::vector<float> g{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, db{1, 0, -1};
  GuardedBuffer gg = upload_guarded(be(), g), gd = upload_guarded(be(), db);
  be().bias_grad(gd.tensor(DType::F32, {O}), gg.tensor(DType::F32, {N, O}));
  EXPECT_EQ(gd.download<float>(), (std::vector<float>{36, 40, 44}));  // small integers: exact
}

TEST_P(BackwardOps, SumSquares) {
  std::vector<float> x{3, -4, 0.5f, 12};
  GuardedBuffer gx = upload_guarded(be(), x);
  EXPECT_EQ(be().sum_squares(gx.tensor(DType::F32, {4})), 169.25);  // exact in double
}

// torch.optim.AdamW(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01), 3 steps on
// fixed gradients, printed by torch 2.5.1 (float.hex) — see the values below.
TEST_P(BackwardOps, AdamWMatchesTorch) {
  std::vector<float> p{0.5f, -0.25f, 1.0f, 0.125f, -2.0f, 3.0f, 0.0f, -0.75f};
  const std::vector<std::vector<float>> grads{{0.1f, -0.2f, 0.3f, 0.0f, 1.5f, -0.05f, 0.7f, -1.25f},
                                              {0.2f, 0.1f, -0.3f, 0.25f, -1.0f, 0.05f, 0.0f, 0.5f},
                                              {-0.1f, 0.4f, 0.3f, -0.25f, 0.5f, 0.0f, -0.7f, 1.0f}};
  const std::vector<float> want_p{0x1.fd8acap-2f,  -0x1.fe53ecp-3f, 0x1.ff53ep-1f,   0x1.fd1f2ap-4f,
                                  -0x1.002ca8p+1f, 0x1.801acp+1f,   -0x1.9f476ep-10f, -0x1.7f628ap-1f};
  const std::vector<float> want_m{0x1.07c84cp-6f,  0x1.0cb296p-5f, 0x1.bf488p-6f,   -0x1.47ae1ap-9f,
                                  0x1.4dd2f4p-4f,  0x1.d7dbep-12f, -0x1.b3d08p-7f,  0x1.666668p-5f};
  const std::vector<float> want_v{0x1.f6d032p-15f, 0x1.b8369ap-13f, 0x1.1ad52p-12f, 0x1.06035p-13f,
                                  0x1.ca080ap-9f,  0x1.4f0a8cp-18f, 0x1.00a4f4p-10f, 0x1.7032a8p-9f};
  const int64_t n = 8;
  const std::vector<float> zeros(n, 0.f);  // torch starts m = v = 0
  GuardedBuffer gp = upload_guarded(be(), p), gm = upload_guarded(be(), zeros), gv = upload_guarded(be(), zeros);
  GuardedBuffer gg(be(), n * 4);
  for (int s = 0; s < 3; ++s) {
    gg.upload(grads[static_cast<size_t>(s)].data());
    AdamWParams hp;
    hp.lr = 1e-3;
    hp.weight_decay = 0.01;
    hp.step = s + 1;
    be().adamw(gp.tensor(DType::F32, {n}), gg.tensor(DType::F32, {n}), gm.tensor(DType::F32, {n}),
               gv.tensor(DType::F32, {n}), hp);
  }
  // torch's vectorised lerp/addcmul may use fused multiply-adds where we round twice: each of
  // the ~10 operations per step may differ by one rounding, and 3 steps compose
  // them, so m, v agree to 3·4 roundings relative and p (|update| ≤ lr·3) to 3·10 roundings of
  // the update plus its own roundings.
  auto rel = [](const std::vector<float>& w, int c) {
    Vec b(w.size());
    for (size_t i = 0; i < w.size(); ++i) b[i] = elementwise_bound(c, std::fabs(w[i]));
    return b;
  };
  Vec bp = rel(want_p, 3);
  for (double& b : bp) b += elementwise_bound(30, 3e-3);
  expect_close(gm.download<float>(), to_double(want_m), rel(want_m, 12), "adamw m");
  expect_close(gv.download<float>(), to_double(want_v), rel(want_v, 12), "adamw v");
  expect_close(gp.download<float>(), to_double(want_p), bp, "adamw p");
}

// dora_backward_scale (backend.h "DoRA"): the scaled gradients are elementwise fp32 ops, equal
// exactly; dm's row sums are double sums over the rows in row order on every backend (one
// thread per column on CUDA), then one fp32 division and add: exact too.
TEST_P(BackwardOps, DoraBackwardScale) {
  const int64_t N = 23, O = 300;  // O over a CUDA block of columns, not a multiple of it
  const float s = 1.5f;
  auto a = random_floats(static_cast<size_t>(N * O), 180, -2.f, 2.f), b = random_floats(a.size(), 181),
       dy = random_floats(a.size(), 182), m = random_floats(static_cast<size_t>(O), 183, 0.5f, 2.f),
       n = random_floats(static_cast<size_t>(O), 184, 0.5f, 2.f), dm0 = random_floats(static_cast<size_t>(O), 185);
  GuardedBuffer gm = upload_guarded(be(), m), gn = upload_guarded(be(), n);
  for (DType at : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(dtype_name(at));
    const bool f32 = at == DType::F32;
    const std::vector<uint16_t> a16 = to_bf16(a), b16 = to_bf16(b), dy16 = to_bf16(dy);
    GuardedBuffer ga = f32 ? upload_guarded(be(), a) : upload_guarded(be(), a16);
    GuardedBuffer gb = f32 ? upload_guarded(be(), b) : upload_guarded(be(), b16);
    GuardedBuffer gdy = f32 ? upload_guarded(be(), dy) : upload_guarded(be(), dy16);
    GuardedBuffer gdm = upload_guarded(be(), dm0);
    be().dora_backward_scale(gdm.tensor(DType::F32, {O}), ga.tensor(at, {N, O}), gb.tensor(at, {N, O}),
                             gdy.tensor(at, {N, O}), gm.tensor(DType::F32, {O}), gn.tensor(DType::F32, {O}), s);
    const std::vector<float> got_dm = gdm.download<float>();
    const std::vector<float> got_a = f32 ? ga.download<float>() : std::vector<float>(),
                             got_b = f32 ? gb.download<float>() : std::vector<float>();
    const std::vector<uint16_t> got_a16 = f32 ? std::vector<uint16_t>() : ga.download<uint16_t>(),
                                got_b16 = f32 ? std::vector<uint16_t>() : gb.download<uint16_t>();
    for (int64_t o = 0; o < O; ++o) {
      const size_t oo = static_cast<size_t>(o);
      const float c = m[oo] / n[oo];
      double d1 = 0, d2 = 0;
      for (int64_t r = 0; r < N; ++r) {
        const size_t k = static_cast<size_t>(r * O + o);
        const float g = f32 ? dy[k] : bf16_to_f32(dy16[k]);
        if (f32) {
          d1 += static_cast<double>(g) * a[k];
          ASSERT_EQ(got_a[k], c * g) << k;
          ASSERT_EQ(got_b[k], (c - 1.f) * g) << k;
        } else {
          const float gs = g * s;
          d1 += static_cast<double>(g) * bf16_to_f32(a16[k]);
          d2 += static_cast<double>(gs) * bf16_to_f32(b16[k]);
          ASSERT_EQ(got_a16[k], f32_to_bf16(g * (c - 1.f))) << k;
          ASSERT_EQ(got_b16[k], f32_to_bf16(gs * c)) << k;
        }
      }
      const float want = f32 ? dm0[oo] + static_cast<float>(d1 / n[oo])
                             : dm0[oo] + (static_cast<float>(d1) + static_cast<float>(d2)) / n[oo];
      EXPECT_EQ(got_dm[oo], want) << "dm " << o;
    }
    EXPECT_TRUE(ga.guards_intact() && gb.guards_intact() && gdm.guards_intact());
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, BackwardOps, ::testing::Values("cpu", "cuda"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace lorafit
