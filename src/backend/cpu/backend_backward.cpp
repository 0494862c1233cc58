// CPU backend: backward ops, the fused lm-head + cross-entropy pair, and the optimizer ops.
// Each op checks its views and forwards to a kernel in kernels_backward.h (or, for the big
// GEMMs of the lm-head, to BLAS). Letters as in backend.h; VC = vocabulary chunk.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/backend_bf16.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels_backward.h"
#include "backend/cpu/simd.h"

namespace lorafit {

namespace {

// Rows of W converted to fp32 per lm-head chunk: 4096 · C floats (14.7 MB at C = 896).
constexpr int64_t kVocabChunk = 4096;

void check_f32(const Tensor& t, const char* op, const char* what) {
  LF_CHECK(t.dtype == DType::F32, "{}: {} must be F32, got {}", op, what, dtype_name(t.dtype));
}

// Calls f(ptr) with the weight pointer typed by its dtype (float, Bf16 or F16).
template <class F>
void with_weight(const Tensor& w, const char* op, F&& f) {
  switch (w.dtype) {
    case DType::F32: f(w.as<const float>()); return;
    case DType::BF16: f(w.as<const cpu::Bf16>()); return;
    case DType::F16: f(w.as<const cpu::F16>()); return;
    default: LF_CHECK(false, "{}: weight dtype {} unsupported", op, dtype_name(w.dtype));
  }
}

// Rows [v0, v1) of w (V,C) as fp32 into dst (v1 − v0, C).
void weight_rows_f32(float* dst, const Tensor& w, int64_t v0, int64_t v1) {
  const int64_t C = w.dim(1);
  LF_CHECK(w.dtype == DType::F32 || w.dtype == DType::BF16 || w.dtype == DType::F16,
           "lmhead: weight dtype {} unsupported", dtype_name(w.dtype));
#pragma omp parallel for schedule(static)
  for (int64_t r = v0; r < v1; ++r) {
    float* d = dst + (r - v0) * C;  // (C)
    if (w.dtype == DType::F32)
      std::copy(w.as<const float>() + r * C, w.as<const float>() + (r + 1) * C, d);
    else if (w.dtype == DType::BF16)
      cpu::convert_bf16_to_f32(d, static_cast<const uint16_t*>(w.data) + r * C, C);
    else
      cpu::convert_f16_to_f32(d, static_cast<const uint16_t*>(w.data) + r * C, C);
  }
}

// logits (N, VC) = x (N,C) · wc (VC,C)ᵀ
void chunk_logits(float* logits, const float* x, const float* wc, int64_t N, int64_t C, int64_t VC) {
  cpu::sgemm(false, true, N, VC, C, 1.f, x, C, wc, C, 0.f, logits, VC);
}

// Query rows per tile of the blocked fp32 attention backward (as in backend_forward.cpp).
constexpr int64_t kAttnTile = 64;

// The fp32 attention backward, blocked like the forward: per (b, kv head j), head h of its
// group and tile of queries [t0, t1) against keys [0, t1), five sgemm calls on the strided
// (B,T,H,D) rows in place:
//   P = exp(scale·Q Kᵀ − lse) (masked to 0), dP = dO Vᵀ, dS = scale·P∘(dP − δ),
//   dQ = dS K (=), dK += dSᵀ Q, dV += Pᵀ dO.
// Same formulas as cpu::attention_backward_kernel (the reference, also run in double by the
// gradient checks). One task per (b, j) owns its dk/dv rows and accumulates its heads and
// tiles in a fixed order: deterministic. sgemm inside the parallel region runs on 1 thread.
void attention_backward_f32(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                            const float* v, const float* out, const float* lse, const int32_t* seg, int64_t B,
                            int64_t Tn, int64_t H, int64_t Hkv, int64_t D) {
  const int64_t g = H / Hkv;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  const int64_t ldq = H * D, ldk = Hkv * D;
#pragma omp parallel
  {
    const size_t tile = static_cast<size_t>(std::min(kAttnTile, Tn) * Tn);
    std::vector<float> p(tile);   // (tile, keys) probabilities
    std::vector<float> ds(tile);  // (tile, keys) dP, then the score gradients dS
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < Hkv; ++j) {
        const float* kb = k + (b * Tn * Hkv + j) * D;  // (T, D) at row stride Hkv·D
        const float* vb = v + (b * Tn * Hkv + j) * D;  // (T, D) at row stride Hkv·D
        float* dkb = dk + (b * Tn * Hkv + j) * D;      // (T, D) at row stride Hkv·D
        float* dvb = dv + (b * Tn * Hkv + j) * D;      // (T, D) at row stride Hkv·D
        const int32_t* sb = seg ? seg + b * Tn : nullptr;  // (T) or null
        for (int64_t s = 0; s < Tn; ++s) {
          std::fill(dkb + s * Hkv * D, dkb + s * Hkv * D + D, 0.f);
          std::fill(dvb + s * Hkv * D, dvb + s * Hkv * D + D, 0.f);
        }
        for (int64_t h = j * g; h < (j + 1) * g; ++h) {
          for (int64_t t0 = 0; t0 < Tn; t0 += kAttnTile) {
            const int64_t t1 = std::min(Tn, t0 + kAttnTile), nt = t1 - t0, ns = t1;  // keys 0 .. t1−1
            const int64_t off = ((b * Tn + t0) * H + h) * D;  // first row of the tile in (B,T,H,D)
            const float* qt = q + off;     // (nt, D) at row stride H·D
            const float* ot = out + off;   // (nt, D)
            const float* gt = dout + off;  // (nt, D)
            cpu::sgemm(false, true, nt, ns, D, scale, qt, ldq, kb, ldk, 0.f, p.data(), ns);
            cpu::sgemm(false, true, nt, ns, D, 1.f, gt, ldq, vb, ldk, 0.f, ds.data(), ns);
            for (int64_t i = 0; i < nt; ++i) {
              const int64_t t = t0 + i;
              float* pr = p.data() + i * ns;   // (ns)
              float* dsr = ds.data() + i * ns;  // (ns)
              float delta = 0;  // δ_t = Σ_d dout·out, length D as in the reference
              for (int64_t d = 0; d < D; ++d) delta += gt[i * H * D + d] * ot[i * H * D + d];
              const float l = lse[(b * H + h) * Tn + t];
              for (int64_t s = 0; s < ns; ++s) {
                const bool allowed = s <= t && (!sb || sb[s] == sb[t]);
                pr[s] = allowed ? std::exp(pr[s] - l) : 0.f;
                dsr[s] = pr[s] * (dsr[s] - delta) * scale;
              }
            }
            cpu::sgemm(false, false, nt, D, ns, 1.f, ds.data(), ns, kb, ldk, 0.f, dq + off, ldq);
            cpu::sgemm(true, false, ns, D, nt, 1.f, ds.data(), ns, qt, ldq, 1.f, dkb, ldk);
            cpu::sgemm(true, false, ns, D, nt, 1.f, p.data(), ns, gt, ldq, 1.f, dvb, ldk);
          }
        }
      }
    }
  }
}

}  // namespace

// Targets must be a vocabulary index or −100; anything else is a data bug upstream.
void cpu_bf16::check_lmhead_targets(const int32_t* t, int64_t N, int64_t V) {
  for (int64_t n = 0; n < N; ++n)
    if (t[n] != -100 && (t[n] < 0 || t[n] >= V))
      throw Error("lm-head cross-entropy: target {} at row {} is outside the vocabulary [0, {}) "
                  "and is not the ignore index -100; check the labels of the batch",
                  t[n], n, V);
}

void CpuBackend::rmsnorm_backward(Tensor dx, Tensor dout, Tensor x, Tensor w, Tensor rstd) {
  if (cpu_bf16::any({&dx, &dout, &x})) return cpu_bf16::rmsnorm_backward(*this, dx, dout, x, w, rstd);
  const char* op = "rmsnorm_backward";
  check_f32(dx, op, "dx");
  check_f32(dout, op, "dout");
  check_f32(x, op, "x");
  check_f32(rstd, op, "rstd");
  const int64_t C = x.dim(-1), N = x.numel() / C;
  LF_CHECK(dx.numel() == N * C && dout.numel() == N * C && w.numel() == C && rstd.numel() == N);
  with_weight(w, op, [&](auto* wp) {
    cpu::rmsnorm_backward_kernel(dx.as<float>(), dout.as<const float>(), x.as<const float>(), wp,
                                 rstd.as<const float>(), N, C);
  });
}

void CpuBackend::bias_grad(Tensor dbias, Tensor dout) {
  if (cpu_bf16::any({&dout})) return cpu_bf16::bias_grad(*this, dbias, dout);
  check_f32(dbias, "bias_grad", "dbias");
  check_f32(dout, "bias_grad", "dout");
  const int64_t O = dbias.numel(), N = dout.numel() / O;
  LF_CHECK(dout.numel() == N * O);
  const float* g = dout.as<const float>();  // (N,O)
  float* db = dbias.as<float>();             // (O)
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < O; ++o) {
    double s = 0;  // a sum over N rows: double
    for (int64_t n = 0; n < N; ++n) s += g[n * O + o];
    db[o] += static_cast<float>(s);
  }
}

void CpuBackend::rope_backward(Tensor dx, Tensor pos, const RopeTable& rope) {
  if (cpu_bf16::any({&dx})) return cpu_bf16::rope(dx, pos, rope, -1);
  check_f32(dx, "rope_backward", "dx");
  LF_CHECK(dx.ndim == 3 && pos.dtype == DType::I32 && pos.numel() == dx.dim(0) &&
           static_cast<int64_t>(rope.inv_freq.size()) == dx.dim(2) / 2);
  cpu::rope_rotate(dx.as<float>(), pos.as<const int32_t>(), dx.dim(0), dx.dim(1), dx.dim(2), rope.inv_freq.data(),
                   rope.attention_scaling, -1);
}

void CpuBackend::attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k,
                                    Tensor v, Tensor out, Tensor lse, Tensor seg) {
  if (cpu_bf16::any({&dq, &dout, &q, &k, &v, &out}))
    return cpu_bf16::attention_backward(*this, dq, dk, dv, dout, q, k, v, out, lse, seg);
  const char* op = "attention_backward";
  for (const Tensor* t : {&dq, &dk, &dv, &dout, &q, &k, &v, &out, &lse}) check_f32(*t, op, "tensor");
  LF_CHECK(q.ndim == 4 && k.ndim == 4, "{}: q and k must be (B,T,H,D)", op);
  const int64_t B = q.dim(0), T = q.dim(1), H = q.dim(2), D = q.dim(3), Hkv = k.dim(2);
  LF_CHECK(H % Hkv == 0 && k.numel() == B * T * Hkv * D && v.numel() == k.numel() &&
           dk.numel() == k.numel() && dv.numel() == k.numel() && dq.numel() == q.numel() &&
           dout.numel() == q.numel() && out.numel() == q.numel() && lse.numel() == B * H * T);
  LF_CHECK(seg.empty() || (seg.dtype == DType::I32 && seg.numel() == B * T));
  attention_backward_f32(dq.as<float>(), dk.as<float>(), dv.as<float>(), dout.as<const float>(),
                         q.as<const float>(), k.as<const float>(), v.as<const float>(),
                         out.as<const float>(), lse.as<const float>(),
                         seg.empty() ? nullptr : seg.as<const int32_t>(), B, T, H, Hkv, D);
}

void CpuBackend::swiglu_backward(Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up) {
  if (cpu_bf16::any({&dgate, &dout, &gate})) return cpu_bf16::swiglu_backward(dgate, dup, dout, gate, up);
  const char* op = "swiglu_backward";
  for (const Tensor* t : {&dgate, &dup, &dout, &gate, &up}) check_f32(*t, op, "tensor");
  const int64_t n = gate.numel();
  LF_CHECK(dgate.numel() == n && dup.numel() == n && dout.numel() == n && up.numel() == n);
  cpu::swiglu_backward_f32(dgate.as<float>(), dup.as<float>(), dout.as<const float>(), gate.as<const float>(),
                           up.as<const float>(), n);
}

// Online log-sum-exp over vocabulary chunks: per row, the running max m and Σ exp(z − m)
// (double), rescaled when a later chunk raises the max.
void CpuBackend::lmhead_ce_forward(Tensor loss, Tensor lse, Tensor x, Tensor w, Tensor targets) {
  if (cpu_bf16::any({&x})) return cpu_bf16::lmhead_ce_forward(*this, loss, lse, x, w, targets);
  const char* op = "lmhead_ce_forward";
  check_f32(loss, op, "loss");
  check_f32(lse, op, "lse");
  check_f32(x, op, "x");
  LF_CHECK(targets.dtype == DType::I32 && w.ndim == 2);
  const int64_t V = w.dim(0), C = w.dim(1), N = x.numel() / C;
  LF_CHECK(x.numel() == N * C && loss.numel() == N && lse.numel() == N && targets.numel() == N);
  const int32_t* tg = targets.as<const int32_t>();  // (N)
  cpu_bf16::check_lmhead_targets(tg, N, V);
  const int64_t VC = std::min(kVocabChunk, V);
  std::vector<float> wc(static_cast<size_t>(VC * C));      // (VC, C)
  std::vector<float> logits(static_cast<size_t>(N * VC));  // (N, VC)
  std::vector<double> mx(static_cast<size_t>(N), -INFINITY), sum(static_cast<size_t>(N), 0.0);
  std::vector<float> zt(static_cast<size_t>(N), 0.f);  // (N) the target's logit
  for (int64_t v0 = 0; v0 < V; v0 += VC) {
    const int64_t v1 = std::min(V, v0 + VC), nc = v1 - v0;
    weight_rows_f32(wc.data(), w, v0, v1);
    chunk_logits(logits.data(), x.as<const float>(), wc.data(), N, C, nc);
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const float* z = logits.data() + n * nc;  // (nc)
      float mc = -INFINITY;                      // this chunk's max (exact in float)
      for (int64_t j = 0; j < nc; ++j) mc = std::max(mc, z[j]);
      const double m = std::max(mx[n], static_cast<double>(mc));
      // exp in float (≤ 2 ulp, its argument z − m exact or 1 rounding), summed in double: the
      // relative error of the sum stays a few eps32, far inside the lse bound of the tests.
      const float mf = static_cast<float>(m);  // m is a logit, so exact in float
      double s = cpu::sum_exp_f32(z, nc, mf);
      s += sum[n] * std::exp(mx[n] - m);
      mx[n] = m;
      sum[n] = s;
      if (tg[n] >= v0 && tg[n] < v1) zt[n] = z[tg[n] - v0];
    }
  }
  float* lo = loss.as<float>();
  float* ls = lse.as<float>();
  for (int64_t n = 0; n < N; ++n) {
    const double l = mx[n] + std::log(sum[n]);
    ls[n] = static_cast<float>(l);
    lo[n] = tg[n] == -100 ? 0.f : static_cast<float>(l - static_cast<double>(zt[n]));
  }
}

// Recomputes each chunk's logits, turns them into dlogits in place, and accumulates
// dx += dlogits (N,VC) · wc (VC,C) (the first chunk overwrites: activation gradient). Rows
// with target −100 (or dloss 0) have dx = 0 exactly: they are left out of the GEMMs (prompt
// tokens of a masked batch cost nothing) and their dx rows are written as zeros.
void CpuBackend::lmhead_ce_backward(Tensor dx, Tensor dloss, Tensor x, Tensor w, Tensor targets,
                                    Tensor lse) {
  if (cpu_bf16::any({&dx, &x})) return cpu_bf16::lmhead_ce_backward(*this, dx, dloss, x, w, targets, lse);
  const char* op = "lmhead_ce_backward";
  check_f32(dx, op, "dx");
  check_f32(dloss, op, "dloss");
  check_f32(x, op, "x");
  check_f32(lse, op, "lse");
  LF_CHECK(targets.dtype == DType::I32 && w.ndim == 2);
  const int64_t V = w.dim(0), C = w.dim(1), N = x.numel() / C;
  LF_CHECK(x.numel() == N * C && dx.numel() == N * C && dloss.numel() == N && lse.numel() == N &&
           targets.numel() == N);
  const int32_t* tg = targets.as<const int32_t>();  // (N)
  cpu_bf16::check_lmhead_targets(tg, N, V);
  const float* dl = dloss.as<const float>();  // (N)
  const float* ls = lse.as<const float>();    // (N)
  float* dxp = dx.as<float>();                // (N, C)
  std::vector<int64_t> rows;                  // (Na) the rows that receive a gradient
  for (int64_t n = 0; n < N; ++n)
    if (tg[n] != -100 && dl[n] != 0.f) rows.push_back(n);
  const int64_t Na = static_cast<int64_t>(rows.size());
  std::fill(dxp, dxp + N * C, 0.f);
  if (Na == 0) return;
  // All rows active (the usual pretraining batch): x and dx are used in place; otherwise the
  // active rows are gathered into xa and their gradients scattered back from dxa.
  const bool dense = Na == N;
  std::vector<float> xa, dxa;  // (Na, C) each, only when some rows are inactive
  if (!dense) {
    xa.resize(static_cast<size_t>(Na * C));
    dxa.resize(static_cast<size_t>(Na * C));
    for (int64_t i = 0; i < Na; ++i)
      std::copy(x.as<const float>() + rows[i] * C, x.as<const float>() + (rows[i] + 1) * C, xa.data() + i * C);
  }
  const float* xs = dense ? x.as<const float>() : xa.data();  // (Na, C)
  float* dxs = dense ? dxp : dxa.data();                       // (Na, C)
  const int64_t VC = std::min(kVocabChunk, V);
  std::vector<float> wc(static_cast<size_t>(VC * C));       // (VC, C)
  std::vector<float> logits(static_cast<size_t>(Na * VC));  // (Na, VC), then dlogits
  for (int64_t v0 = 0; v0 < V; v0 += VC) {
    const int64_t v1 = std::min(V, v0 + VC), nc = v1 - v0;
    weight_rows_f32(wc.data(), w, v0, v1);
    chunk_logits(logits.data(), xs, wc.data(), Na, C, nc);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < Na; ++i) {
      const int64_t n = rows[i];
      float* z = logits.data() + i * nc;  // (nc)
      cpu::exp_shift_scale_f32(z, nc, ls[n], dl[n]);
      if (tg[n] >= v0 && tg[n] < v1) z[tg[n] - v0] -= dl[n];
    }
    cpu::sgemm(false, false, Na, C, nc, 1.f, logits.data(), nc, wc.data(), C, v0 == 0 ? 0.f : 1.f, dxs, C);
  }
  if (!dense)
    for (int64_t i = 0; i < Na; ++i) std::copy(dxa.data() + i * C, dxa.data() + (i + 1) * C, dxp + rows[i] * C);
}

void CpuBackend::adamw(Tensor p, Tensor g, Tensor m, Tensor v, const AdamWParams& hp) {
  for (const Tensor* t : {&p, &g, &m, &v}) check_f32(*t, "adamw", "tensor");
  const int64_t n = p.numel();
  LF_CHECK(g.numel() == n && m.numel() == n && v.numel() == n && hp.step >= 1);
  // The scalars exactly as cpu::adamw_kernel derives them (double, rounded to float once).
  const double bc1 = 1.0 - std::pow(hp.beta1, static_cast<double>(hp.step));
  const double bc2 = 1.0 - std::pow(hp.beta2, static_cast<double>(hp.step));
  cpu::AdamWScalars sc{};
  sc.step_size = static_cast<float>(hp.lr / bc1);
  sc.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  sc.decay = static_cast<float>(1.0 - hp.lr * hp.weight_decay);
  sc.w1 = static_cast<float>(1.0 - hp.beta1);
  sc.b2 = static_cast<float>(hp.beta2);
  sc.w2 = static_cast<float>(1.0 - hp.beta2);
  sc.eps = static_cast<float>(hp.eps);
  sc.decay_on = hp.weight_decay != 0.0;
  cpu::adamw_f32(p.as<float>(), g.as<const float>(), m.as<float>(), v.as<float>(), n, sc);
}

double CpuBackend::sum_squares(Tensor x) {
  check_f32(x, "sum_squares", "x");
  return cpu::sum_squares_f32(x.as<const float>(), x.numel());
}

}  // namespace lorafit
