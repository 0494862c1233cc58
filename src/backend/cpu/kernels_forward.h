// Forward kernels of the CPU backend: plain loops, templated on the element type so the same
// code is the fp32 implementation (T = float) and the scalar reference of the parity tests and
// gradient checks (T = double). Long sums accumulate in double. Weights W may be float,
// double, Bf16 or F16 (read through load_weight).
//
// Letters: N rows (= B·S), C hidden, O/I out/in features, H query heads, Hkv kv heads,
// D head dim, F ffn width, V vocab, B batch, S sequence length (T is the element type here).
// Contract (backend.h): outputs first, overwritten. Pointers marked "may be null" are optional.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "tensor/dtype.h"
#include "util/rng.h"

namespace lorafit::cpu {

// The keys query t may attend, when they are one contiguous run s0..t: s0 (0 without segments;
// the segment's first position when no earlier position shares its value), else −1.
inline int64_t allowed_run_start(const int32_t* seg, int64_t t) {
  if (!seg) return 0;
  int64_t s0 = t;
  while (s0 > 0 && seg[s0 - 1] == seg[t]) --s0;
  for (int64_t s = 0; s < s0; ++s)
    if (seg[s] == seg[t]) return -1;
  return s0;
}

// 16-bit float storage types, distinct so the weight type selects the conversion.
struct Bf16 {
  uint16_t bits;
};
struct F16 {
  uint16_t bits;
};
static_assert(sizeof(Bf16) == 2 && sizeof(F16) == 2);

// Element i of a weight, widened to float (or double for double weights).
inline float load_weight(const float* w, int64_t i) { return w[i]; }
inline double load_weight(const double* w, int64_t i) { return w[i]; }
inline float load_weight(const Bf16* w, int64_t i) { return bf16_to_f32(w[i].bits); }
inline float load_weight(const F16* w, int64_t i) { return f16_to_f32(w[i].bits); }

// ---- counter-based RNG for dropout: the mask of element i depends only on (seed, i), so the
// backward (and any other backend) regenerates exactly the same mask. ----
// (util/rng.h; the CUDA kernels use the same function.)
inline float dropout_uniform(uint64_t seed, int64_t i) { return counter_uniform24(seed, i); }
inline bool dropout_keep(uint64_t seed, int64_t i, float p) { return dropout_uniform(seed, i) >= p; }

// out (N,C) = table[ids] ; ids (N) already range-checked against V by the caller.
template <class T, class W>
void embedding_forward(T* out, const int32_t* ids, const W* table, int64_t N, int64_t C) {
#pragma omp parallel for if (N > 1)  // one row (a decode step): no team to wake
  for (int64_t n = 0; n < N; ++n) {
    const int64_t row = static_cast<int64_t>(ids[n]) * C;
    for (int64_t c = 0; c < C; ++c) out[n * C + c] = static_cast<T>(load_weight(table, row + c));
  }
}

// out (N,C) = (x · rstd) · w, rstd (N) = 1/sqrt(mean(x²) + eps) (may be null).
// Order of operations as in transformers: normalise first, then multiply by the weight.
template <class T, class W>
void rmsnorm_forward(T* out, T* rstd, const T* x, const W* w, int64_t N, int64_t C, float eps) {
#pragma omp parallel for if (N > 1)  // one row (a decode step): no team to wake
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = x + n * C;
    double ss = 0.0;
    for (int64_t c = 0; c < C; ++c) ss += static_cast<double>(xr[c]) * static_cast<double>(xr[c]);
    const T r = static_cast<T>(1.0 / std::sqrt(ss / static_cast<double>(C) + static_cast<double>(eps)));
    if (rstd) rstd[n] = r;
    for (int64_t c = 0; c < C; ++c) out[n * C + c] = static_cast<T>(load_weight(w, c)) * (xr[c] * r);
  }
}

// out (M,N) = alpha · op(a) · op(b) + beta · out ; op(a) (M,K), op(b) (K,N).
// a is stored (M,K), or (K,M) when trans_a; b is stored (K,N), or (N,K) when trans_b.
// beta == 0 overwrites out without reading it (as BLAS does). The scalar reference; the
// backend uses BLAS for T = float.
template <class T, class W>
void matmul_forward(T* out, const T* a, bool trans_a, const W* b, bool trans_b, int64_t M,
                    int64_t N, int64_t K, float alpha, float beta) {
#pragma omp parallel for
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double av = static_cast<double>(trans_a ? a[k * M + m] : a[m * K + k]);
        const double bv = static_cast<double>(trans_b ? load_weight(b, n * K + k) : load_weight(b, k * N + n));
        acc += av * bv;
      }
      const double prev = beta == 0.f ? 0.0 : static_cast<double>(beta) * static_cast<double>(out[m * N + n]);
      out[m * N + n] = static_cast<T>(static_cast<double>(alpha) * acc + prev);
    }
  }
}

// out (N,O) += bias (O)
template <class T, class W>
void add_bias(T* out, const W* bias, int64_t N, int64_t O) {
#pragma omp parallel for if (N > 1)  // one row (a decode step): no team to wake
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) out[n * O + o] += static_cast<T>(load_weight(bias, o));
}

// x (N,H,D) rotated in place: for i < D/2, (x_i, x_{i+D/2}) ← (x_i·cos − x_{i+D/2}·sin,
// x_{i+D/2}·cos + x_i·sin), angle = pos[n]·inv_freq[i] in fp32 (as transformers), cos and sin
// times `scaling` (yarn's attention factor). `sign` = −1 rotates by −angle (the backward).
// cos/sin are evaluated in T.
template <class T>
void rope_rotate(T* x, const int32_t* pos, int64_t N, int64_t H, int64_t D, const float* inv_freq, float scaling,
                 int sign) {
  const int64_t half = D / 2;
#pragma omp parallel for if (N > 1)  // one row (a decode step): no team to wake
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(pos[n]) * inv_freq[i];
      const T c = std::cos(static_cast<T>(angle)) * static_cast<T>(scaling);
      const T s = static_cast<T>(sign) * (std::sin(static_cast<T>(angle)) * static_cast<T>(scaling));
      for (int64_t h = 0; h < H; ++h) {
        T* xh = x + (n * H + h) * D;
        const T x1 = xh[i], x2 = xh[i + half];
        xh[i] = x1 * c - x2 * s;
        xh[i + half] = x2 * c + x1 * s;
      }
    }
  }
}
template <class T>
void rope_forward(T* x, const int32_t* pos, int64_t N, int64_t H, int64_t D, const float* inv_freq,
                  float scaling = 1.0f) {
  rope_rotate(x, pos, N, H, D, inv_freq, scaling, +1);
}

// Causal GQA attention. q (B,S,H,D), k/v (B,S,Hkv,D), out (B,S,H,D), lse (B,H,S) (may be
// null), seg (B,S) (may be null: one sequence per row). Query (b,t,h) attends keys s ≤ t
// (with seg[b,s] == seg[b,t]) of kv head h / (H/Hkv); scores scaled by D^-0.5; softmax
// with the max subtracted, sums in double. The scalar reference (and the T = double
// instantiation of the tests); the backend runs the blocked sgemm version for float
// (attention_forward_f32 in backend_forward.cpp), checked against this one.
template <class T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v, const int32_t* seg,
                       int64_t B, int64_t S, int64_t H, int64_t Hkv, int64_t D) {
  const int64_t group = H / Hkv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
#pragma omp parallel
  {
    std::vector<double> p(static_cast<size_t>(S));  // scores, then weights, of one query
    std::vector<double> acc(static_cast<size_t>(D));
#pragma omp for collapse(3)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = 0; h < H; ++h) {
        for (int64_t t = 0; t < S; ++t) {
          const int64_t hk = h / group;
          const T* qr = q + ((b * S + t) * H + h) * D;
          double mx = -std::numeric_limits<double>::infinity();
          for (int64_t s = 0; s <= t; ++s) {
            if (seg && seg[b * S + s] != seg[b * S + t]) continue;
            const T* kr = k + ((b * S + s) * Hkv + hk) * D;
            double dot = 0.0;
            for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(qr[d]) * static_cast<double>(kr[d]);
            p[static_cast<size_t>(s)] = dot * scale;
            if (p[static_cast<size_t>(s)] > mx) mx = p[static_cast<size_t>(s)];
          }
          double sum = 0.0;
          for (int64_t d = 0; d < D; ++d) acc[static_cast<size_t>(d)] = 0.0;
          for (int64_t s = 0; s <= t; ++s) {
            if (seg && seg[b * S + s] != seg[b * S + t]) continue;
            const double e = std::exp(p[static_cast<size_t>(s)] - mx);
            sum += e;
            const T* vr = v + ((b * S + s) * Hkv + hk) * D;
            for (int64_t d = 0; d < D; ++d) acc[static_cast<size_t>(d)] += e * static_cast<double>(vr[d]);
          }
          T* orow = out + ((b * S + t) * H + h) * D;
          for (int64_t d = 0; d < D; ++d) orow[d] = static_cast<T>(acc[static_cast<size_t>(d)] / sum);
          if (lse) lse[(b * H + h) * S + t] = static_cast<T>(mx + std::log(sum));
        }
      }
    }
  }
}

// out (n) = silu(gate) · up, silu(g) = g / (1 + e^-g)
template <class T>
void swiglu_forward(T* out, const T* gate, const T* up, int64_t n) {
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    const T g = gate[i];
    out[i] = g / (T(1) + std::exp(-g)) * up[i];
  }
}

// out (n) = a + b ; out may alias a or b.
template <class T>
void add(T* out, const T* a, const T* b, int64_t n) {
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

// x (n) *= s
template <class T>
void scale(T* x, float s, int64_t n) {
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) x[i] *= static_cast<T>(s);
}

// out (n) = x · keep(seed, i) / (1 − p); out may alias x. p in [0, 1).
template <class T>
void dropout(T* out, const T* x, float p, uint64_t seed, int64_t n) {
  const T inv_keep = static_cast<T>(1.0 / (1.0 - static_cast<double>(p)));
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) out[i] = dropout_keep(seed, i, p) ? x[i] * inv_keep : T(0);
}

}  // namespace lorafit::cpu
