// Templated CPU backward kernels (T = float for the backend, double for the gradient checks),
// plus the fused lm-head + cross-entropy pair, whose forward lives here too because its
// backward recomputes the forward chunk by chunk.
//
// Letters: B batch, T time, N = B·T rows, C hidden, H query heads, Hkv kv heads, D head dim,
// F ffn width, V vocab, VC vocabulary chunk.
// Contract (backend.h): activation gradients are overwritten (=); parameter gradients (+=).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "backend/cpu/kernels_forward.h"

namespace lorafit::cpu {

// ---- RMSNorm: y = x · r · w, r = (mean(x²) + eps)^-½ (rstd saved by the forward) ----
// dx = r·(g∘w) − x · r³/C · Σ_c (g∘w∘x)_c
template <class T, class W>
void rmsnorm_backward_kernel(T* dx, const T* dout, const T* x, const W* w, const T* rstd,
                             int64_t N, int64_t C) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const T* xn = x + n * C;   // (C)
    const T* gn = dout + n * C;  // (C)
    T* dxn = dx + n * C;       // (C)
    const double r = static_cast<double>(rstd[n]);
    double dot = 0;  // Σ g·w·x, a reduction of length C: double
    for (int64_t c = 0; c < C; ++c)
      dot += static_cast<double>(gn[c]) * static_cast<double>(load_weight(w, c)) * static_cast<double>(xn[c]);
    const double k = dot * r * r * r / static_cast<double>(C);
    for (int64_t c = 0; c < C; ++c)
      dxn[c] = static_cast<T>(r * static_cast<double>(gn[c]) * static_cast<double>(load_weight(w, c)) -
                              k * static_cast<double>(xn[c]));
  }
}

// RoPE backward = rope_rotate(..., sign = −1) from kernels_forward.h (rotation by −angle).

// ---- causal GQA attention backward from the saved log-sum-exp ----
// q,dq,out,dout (B,T,H,D); k,v,dk,dv (B,T,Hkv,D); lse (B,H,T); seg (B,T) or null.
// P_ts = exp(scale·q_t·k_s − lse_t) for allowed s ≤ t; δ_t = Σ_d dout_t·out_t;
// dS = P∘(dout_t·v_s − δ_t); dq_t = scale Σ_s dS k_s; dk_s = scale Σ_t dS q_t; dv_s = Σ_t P dout_t.
// One task per (b, kv head) owns its dk/dv rows, so no two threads write the same output.
// The reference; for float the backend runs the blocked sgemm version with the same formulas
// (attention_backward_f32 in backend_backward.cpp), checked against this one.
template <class T>
void attention_backward_kernel(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k,
                               const T* v, const T* out, const T* lse, const int32_t* seg,
                               int64_t B, int64_t Tn, int64_t H, int64_t Hkv, int64_t D) {
  const int64_t g = H / Hkv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const T scale_t = static_cast<T>(scale);
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t j = 0; j < Hkv; ++j) {
      std::vector<T> p(static_cast<size_t>(Tn));   // (T) probabilities of one query row
      std::vector<T> ds(static_cast<size_t>(Tn));  // (T) score gradients of one query row
      for (int64_t s = 0; s < Tn; ++s) {
        T* dks = dk + ((b * Tn + s) * Hkv + j) * D;
        T* dvs = dv + ((b * Tn + s) * Hkv + j) * D;
        std::fill(dks, dks + D, T(0));
        std::fill(dvs, dvs + D, T(0));
      }
      for (int64_t hh = 0; hh < g; ++hh) {
        const int64_t h = j * g + hh;
        for (int64_t t = 0; t < Tn; ++t) {
          const T* qt = q + ((b * Tn + t) * H + h) * D;    // (D)
          const T* ot = out + ((b * Tn + t) * H + h) * D;  // (D)
          const T* gt = dout + ((b * Tn + t) * H + h) * D;  // (D)
          T* dqt = dq + ((b * Tn + t) * H + h) * D;         // (D)
          const T l = lse[(b * H + h) * Tn + t];
          T delta = 0;
          for (int64_t d = 0; d < D; ++d) delta += gt[d] * ot[d];
          for (int64_t s = 0; s <= t; ++s) {
            if (seg && seg[b * Tn + s] != seg[b * Tn + t]) {
              p[s] = ds[s] = 0;
              continue;
            }
            const T* ks = k + ((b * Tn + s) * Hkv + j) * D;
            const T* vs = v + ((b * Tn + s) * Hkv + j) * D;
            T sc = 0, dp = 0;
            for (int64_t d = 0; d < D; ++d) {
              sc += qt[d] * ks[d];
              dp += gt[d] * vs[d];
            }
            p[s] = std::exp(sc * scale_t - l);
            ds[s] = p[s] * (dp - delta);
          }
          std::fill(dqt, dqt + D, T(0));
          for (int64_t s = 0; s <= t; ++s) {
            if (p[s] == T(0) && ds[s] == T(0)) continue;
            const T* ks = k + ((b * Tn + s) * Hkv + j) * D;
            T* dks = dk + ((b * Tn + s) * Hkv + j) * D;
            T* dvs = dv + ((b * Tn + s) * Hkv + j) * D;
            const T a = ds[s] * scale_t;
            for (int64_t d = 0; d < D; ++d) {
              dqt[d] += a * ks[d];
              dks[d] += a * qt[d];
              dvs[d] += p[s] * gt[d];
            }
          }
        }
      }
    }
  }
}

// ---- SwiGLU: out = silu(gate)·up ----
// dgate = dout·up·σ(g)·(1 + g·(1 − σ(g))), dup = dout·silu(g)
template <class T>
void swiglu_backward_kernel(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const T gv = gate[i];
    const T sig = T(1) / (T(1) + std::exp(-gv));
    const T go = dout[i];
    const T du = go * (gv * sig);
    dgate[i] = go * up[i] * sig * (T(1) + gv * (T(1) - sig));
    dup[i] = du;
  }
}

// ---- fused lm-head + cross-entropy (reference version, any T; the backend uses BLAS) ----
// x (N,C), w (V,C), targets (N) with −100 = ignored.
// loss_n = lse_n − x_n·w_t ; dx_n = dloss_n Σ_v (softmax_v − [v = t]) w_v.
template <class T>
void lmhead_ce_forward_ref(T* loss, T* lse, const T* x, const T* w, const int32_t* targets,
                           int64_t N, int64_t C, int64_t V) {
  for (int64_t n = 0; n < N; ++n) {
    T m = -std::numeric_limits<T>::infinity(), s = 0, zt = 0;
    for (int64_t vv = 0; vv < V; ++vv) {
      T z = 0;
      for (int64_t c = 0; c < C; ++c) z += x[n * C + c] * w[vv * C + c];
      if (vv == targets[n]) zt = z;
      if (z > m) {
        s = s * std::exp(m - z) + T(1);
        m = z;
      } else {
        s += std::exp(z - m);
      }
    }
    lse[n] = m + std::log(s);
    loss[n] = targets[n] == -100 ? T(0) : lse[n] - zt;
  }
}

template <class T>
void lmhead_ce_backward_ref(T* dx, const T* dloss, const T* x, const T* w, const int32_t* targets,
                            const T* lse, int64_t N, int64_t C, int64_t V) {
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) dx[n * C + c] = 0;
    if (targets[n] == -100) continue;
    for (int64_t vv = 0; vv < V; ++vv) {
      T z = 0;
      for (int64_t c = 0; c < C; ++c) z += x[n * C + c] * w[vv * C + c];
      const T gz = dloss[n] * (std::exp(z - lse[n]) - (vv == targets[n] ? T(1) : T(0)));
      for (int64_t c = 0; c < C; ++c) dx[n * C + c] += gz * w[vv * C + c];
    }
  }
}

// ---- AdamW exactly as torch's single-tensor path computes it in fp32 ----
// p ← p·(1 − lr·wd); m ← lerp(m, g, 1−β1); v ← β2·v + (1−β2)·g²;
// p ← p + (−lr/bc1)·m / (sqrt(v)/sqrt(bc2) + eps), bc = 1 − β^t in double (Python floats).
template <class T>
void adamw_kernel(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2,
                  double eps, double wd, int64_t step) {
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  const T step_size = static_cast<T>(lr / bc1);
  const T bc2_sqrt = static_cast<T>(std::sqrt(bc2));
  const T decay = static_cast<T>(1.0 - lr * wd);
  const T w1 = static_cast<T>(1.0 - beta1), b2 = static_cast<T>(beta2), w2 = static_cast<T>(1.0 - beta2);
  const T eps_t = static_cast<T>(eps);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    if (wd != 0.0) p[i] *= decay;
    const T gi = g[i];
    // torch lerp: weight < 0.5 → self + w·(end − self), else end − (end − self)·(1 − w)
    m[i] = w1 < T(0.5) ? m[i] + w1 * (gi - m[i]) : gi - (gi - m[i]) * (T(1) - w1);
    v[i] = v[i] * b2 + w2 * gi * gi;
    const T denom = std::sqrt(v[i]) / bc2_sqrt + eps_t;
    p[i] = p[i] + (-step_size * m[i]) / denom;  // addcdiv: self + value·t1 / t2
  }
}

}  // namespace lorafit::cpu
