// The CUDA backend's BF16-activation path (the one training uses on a GPU) against the double
// reference kernels, fed the same bf16-rounded inputs. Skips without a CUDA device (and in a
// CPU-only build). Tolerances: the fp32 bounds of the F32 parity tests (backend_parity.h; the
// arithmetic is fp32 on both paths) plus the roundings to bf16 this path adds, each at most
// u16 = 2^-8 relative (bf16 keeps 8 significant bits, round to nearest even).
#include <cmath>

#include "backend/cpu/kernels_backward.h"
#include "backend/cpu/kernels_forward.h"
#include "backend_parity.h"

namespace lorafit {
namespace {

using namespace lorafit::testing;
namespace k = lorafit::cpu;
constexpr double kU16 = 1.0 / 256.0;

class CudaBf16 : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    be_ = try_backend("cuda", &why);
    if (!be_) GTEST_SKIP() << "no CUDA backend / device (" << why << ")";
  }
  Backend& be() { return *be_; }
  std::unique_ptr<Backend> be_;
};

// Random values rounded to bf16: the bits for the device, their exact values for the reference.
struct Bf16Data {
  std::vector<uint16_t> bits;
  std::vector<double> exact;
};
Bf16Data bf16_random(size_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  Bf16Data d;
  d.bits = to_bf16(random_floats(n, seed, lo, hi));
  d.exact = widen(d.bits, DType::BF16);
  return d;
}
std::vector<float> widen_bf16(const std::vector<uint16_t>& h) {
  std::vector<float> r(h.size());
  for (size_t i = 0; i < h.size(); ++i) r[i] = bf16_to_f32(h[i]);
  return r;
}

TEST_F(CudaBf16, LinearLayerMatmul) {
  const int64_t M = 37, N = 53, K = 300;
  auto a = bf16_random(M * K, 1), w = bf16_random(N * K, 2);
  GuardedBuffer ga = upload_guarded(be(), a.bits), gw = upload_guarded(be(), w.bits), out(be(), M * N * 2);
  be().matmul(out.tensor(DType::BF16, {M, N}), ga.tensor(DType::BF16, {M, K}), false, gw.tensor(DType::BF16, {N, K}),
              true, 1.f, 0.f);
  std::vector<double> ref(M * N, 0.0), bound(M * N);
  k::matmul_forward(ref.data(), a.exact.data(), false, w.exact.data(), true, M, N, K, 1.f, 0.f);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t kk = 0; kk < K; ++kk) s += std::fabs(a.exact[m * K + kk] * w.exact[n * K + kk]);
      // fp32 accumulation of exact bf16 products, then one rounding of the result to bf16.
      bound[m * N + n] = (1 + kU16) * sum_bound(K, s) + kU16 * std::fabs(ref[m * N + n]);
    }
  expect_close(widen_bf16(out.download<uint16_t>()), ref, bound, "bf16 matmul");
  EXPECT_TRUE(out.guards_intact());
}

TEST_F(CudaBf16, RmsNormAndSwiglu) {
  const int64_t N = 11, C = 333;
  auto x = bf16_random(N * C, 3, -3, 3), w = bf16_random(C, 4, 0.5f, 1.5f);
  GuardedBuffer gx = upload_guarded(be(), x.bits), gw = upload_guarded(be(), w.bits);
  GuardedBuffer out(be(), N * C * 2), rstd(be(), N * 4);
  be().rmsnorm_forward(out.tensor(DType::BF16, {N, C}), rstd.tensor(DType::F32, {N}), gx.tensor(DType::BF16, {N, C}),
                       gw.tensor(DType::BF16, {C}), 1e-6f);
  std::vector<double> ref(N * C), rref(N), b(N * C);
  k::rmsnorm_forward(ref.data(), rref.data(), x.exact.data(), w.exact.data(), N, C, 1e-6f);
  for (size_t i = 0; i < ref.size(); ++i)  // the F32 bound (see the F32 row) plus the store to bf16
    b[i] = sum_bound(C, 0.5 * std::fabs(ref[i])) + elementwise_bound(4, std::fabs(ref[i])) + kU16 * std::fabs(ref[i]);
  expect_close(widen_bf16(out.download<uint16_t>()), ref, b, "bf16 rmsnorm");

  // SwiGLU on bf16 gate/up: silu (double, one rounding), the product, the store to bf16.
  const int64_t n = 777;
  auto g = bf16_random(n, 5, -6, 6), u = bf16_random(n, 6, -2, 2);
  GuardedBuffer gg = upload_guarded(be(), g.bits), gu = upload_guarded(be(), u.bits), so(be(), n * 2);
  be().swiglu_forward(so.tensor(DType::BF16, {n}), gg.tensor(DType::BF16, {n}), gu.tensor(DType::BF16, {n}));
  std::vector<double> sref(n), sb(n);
  k::swiglu_forward(sref.data(), g.exact.data(), u.exact.data(), n);
  for (int64_t i = 0; i < n; ++i) sb[i] = elementwise_bound(2, std::fabs(sref[i])) + kU16 * std::fabs(sref[i]) * 1.01;
  expect_close(widen_bf16(so.download<uint16_t>()), sref, sb, "bf16 swiglu");
  EXPECT_TRUE(out.guards_intact() && so.guards_intact());
}

TEST_F(CudaBf16, Attention) {
  const int64_t B = 2, S = 45, H = 4, Hkv = 2, D = 64;  // more keys than one 32-key tile
  auto q = bf16_random(B * S * H * D, 7), kk = bf16_random(B * S * Hkv * D, 8), v = bf16_random(B * S * Hkv * D, 9);
  GuardedBuffer gq = upload_guarded(be(), q.bits), gk = upload_guarded(be(), kk.bits), gv = upload_guarded(be(), v.bits);
  GuardedBuffer out(be(), B * S * H * D * 2), lse(be(), B * H * S * 4);
  be().attention_forward(out.tensor(DType::BF16, {B, S, H, D}), lse.tensor(DType::F32, {B, H, S}),
                         gq.tensor(DType::BF16, {B, S, H, D}), gk.tensor(DType::BF16, {B, S, Hkv, D}),
                         gv.tensor(DType::BF16, {B, S, Hkv, D}), Tensor());
  std::vector<double> ref(q.exact.size()), lref(B * H * S);
  k::attention_forward(ref.data(), lref.data(), q.exact.data(), kk.exact.data(), v.exact.data(), nullptr, B, S, H, Hkv,
                       D);
  // Normwise version of the F32 row's bound: scores are D-term sums of |q·k| ≤ 1 scaled by
  // D^-½ (σ ≤ D^½), so each weight is off by ≤ 2·sum_bound(D, D^½) relative; the output is a
  // ≤ S-term weighted mean of |v| ≤ 1; then the store to bf16.
  const double score_err = sum_bound(D, std::sqrt(static_cast<double>(D)));
  std::vector<double> b(ref.size()), lb(lref.size());
  for (size_t i = 0; i < ref.size(); ++i) b[i] = sum_bound(S, 1.0) + 2 * score_err + kU16 * std::fabs(ref[i]);
  for (size_t i = 0; i < lref.size(); ++i)
    lb[i] = score_err + sum_bound(S, 1.0) + elementwise_bound(2, std::fabs(lref[i]));
  expect_close(widen_bf16(out.download<uint16_t>()), ref, b, "bf16 attention.out");
  expect_close(lse.download<float>(), lref, lb, "bf16 attention.lse");
  EXPECT_TRUE(out.guards_intact() && lse.guards_intact());
}

TEST_F(CudaBf16, LmHeadCeChunked) {
  const int64_t N = 5, C = 40, V = 9000;  // three vocabulary chunks, the last partial
  std::vector<int32_t> tg{7, 4096, -100, 8999, 5000};
  auto x = bf16_random(N * C, 10), w = bf16_random(V * C, 11);
  auto dlf = random_floats(N, 12, 0.1f, 1.f);
  std::vector<double> loss(N), lse(N), dx(N * C), dld = to_double(dlf);
  k::lmhead_ce_forward_ref(loss.data(), lse.data(), x.exact.data(), w.exact.data(), tg.data(), N, C, V);
  k::lmhead_ce_backward_ref(dx.data(), dld.data(), x.exact.data(), w.exact.data(), tg.data(), lse.data(), N, C, V);
  GuardedBuffer gx = upload_guarded(be(), x.bits), gw = upload_guarded(be(), w.bits), gt = upload_guarded(be(), tg);
  GuardedBuffer gdl = upload_guarded(be(), dlf), gloss(be(), N * 4), glse(be(), N * 4), gdx(be(), N * C * 2);
  be().lmhead_ce_forward(gloss.tensor(DType::F32, {N}), glse.tensor(DType::F32, {N}), gx.tensor(DType::BF16, {N, C}),
                         gw.tensor(DType::BF16, {V, C}), gt.tensor(DType::I32, {N}));
  be().lmhead_ce_backward(gdx.tensor(DType::BF16, {N, C}), gdl.tensor(DType::F32, {N}), gx.tensor(DType::BF16, {N, C}),
                          gw.tensor(DType::BF16, {V, C}), gt.tensor(DType::I32, {N}), glse.tensor(DType::F32, {N}));
  // As the F32 row (logits are fp32 sums of exact bf16 products), plus for dx: dlogits are
  // rounded to bf16 before the GEMM (≤ u16 of Σ_v |g_v·w_v| ≤ u16·dl·(Σp + 1) ≤ 2·u16) and dx
  // is stored as bf16 (u16·|dx|).
  const double ez = static_cast<double>(C + 2) * kEps32 * static_cast<double>(C);
  expect_close(glse.download<float>(), lse, std::vector<double>(N, 2 * ez + 40 * kEps32), "bf16 lse");
  expect_close(gloss.download<float>(), loss, std::vector<double>(N, 3 * ez + 80 * kEps32), "bf16 loss");
  std::vector<double> bdx(dx.size());
  for (size_t i = 0; i < dx.size(); ++i)
    bdx[i] = 3 * ez + static_cast<double>(V + 2) * kEps32 * 2 + 2 * kU16 + kU16 * std::fabs(dx[i]);
  expect_close(widen_bf16(gdx.download<uint16_t>()), dx, bdx, "bf16 dx");
  EXPECT_TRUE(gdx.guards_intact() && gloss.guards_intact() && glse.guards_intact());
}

}  // namespace
}  // namespace lorafit
