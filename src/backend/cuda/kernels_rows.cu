// Elementwise and row kernels of the CUDA backend. Each mirrors the CPU kernel of the same
// name (backend/cpu/kernels_forward.h, kernels_backward.h): same formula, same order of
// operations; values widen to fp32 (ld) and round once on store (st). Where the CPU computes
// a transcendental in its element type (cos/sin of RoPE, exp of SwiGLU) we evaluate it in
// double and round once, because CUDA's single-precision cosf/expf may be 2 ulp off while the
// parity bounds allow one rounding.
#include "backend/cuda/cuda_common.cuh"
#include "util/rng.h"

namespace lorafit::cuda {
namespace {

constexpr int kThreads = 256;

template <class D, class S>
__global__ void convert_k(D* dst, const S* src, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    st(dst, i, ld(src, i));
}

__global__ void first_out_of_range_k(int* first_bad, const int32_t* v, int64_t n, int32_t hi, int allow_ignore) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const int32_t x = v[i];
    const bool bad = !(allow_ignore && x == -100) && (x < 0 || x >= hi);
    if (bad) atomicMin(first_bad, static_cast<int>(i));
  }
}

// out (N,C) = table[ids]: one block per row.
template <class A, class W>
__global__ void embedding_forward_k(A* out, const int32_t* ids, const W* table, int64_t C) {
  const int64_t n = blockIdx.x, row = static_cast<int64_t>(ids[n]) * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) st(out, n * C + c, ld(table, row + c));
}

// out (N,C) = w · (x · rstd), rstd = 1/sqrt(mean(x²) + eps): one block per row; the sum of
// squares in fp32 (tree order), the rsqrt in double as the CPU does.
template <class A, class W>
__global__ void rmsnorm_forward_k(A* out, float* rstd, const A* x, const W* w, int64_t C, float eps) {
  const int64_t n = blockIdx.x;
  float ss = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float xv = ld(x, n * C + c);
    ss += xv * xv;
  }
  ss = block_sum(ss);
  const float r = static_cast<float>(1.0 / sqrt(static_cast<double>(ss) / static_cast<double>(C) + eps));
  if (rstd != nullptr && threadIdx.x == 0) rstd[n] = r;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) st(out, n * C + c, ld(w, c) * (ld(x, n * C + c) * r));
}

// dx = r·(g∘w) − x · r³/C · Σ_c (g∘w∘x)_c (cpu::rmsnorm_backward_kernel)
template <class A, class W>
__global__ void rmsnorm_backward_k(A* dx, const A* dout, const A* x, const W* w, const float* rstd, int64_t C) {
  const int64_t n = blockIdx.x;
  float dot = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dot += ld(dout, n * C + c) * ld(w, c) * ld(x, n * C + c);
  dot = block_sum(dot);
  const float r = rstd[n];
  const float k = dot * r * r * r / static_cast<float>(C);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    st(dx, n * C + c, r * ld(dout, n * C + c) * ld(w, c) - k * ld(x, n * C + c));
}

template <class A, class W>
__global__ void add_bias_k(A* out, const W* bias, int64_t N, int64_t O) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < N * O; i += int64_t{gridDim.x} * blockDim.x)
    st(out, i, ld(out, i) + ld(bias, i % O));
}

// dbias (O) += Σ_n dout (N,O): a thread per column (coalesced across the row), sum in double.
template <class A>
__global__ void bias_grad_k(float* dbias, const A* dout, int64_t N, int64_t O) {
  const int64_t o = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (o >= O) return;
  double s = 0.0;
  for (int64_t n = 0; n < N; ++n) s += ld(dout, n * O + o);
  dbias[o] += static_cast<float>(s);
}

// x (N,H,D) rotated in place by ±angle, angle = pos·inv_freq[i] in fp32, cos/sin times
// attention_scaling (cpu::rope_rotate):
// one thread per (n, i) pair, looping over the heads.
template <class A>
__global__ void rope_k(A* x, const int32_t* pos, int64_t N, int64_t H, int64_t D, RopeFreqs f, int sign) {
  const int64_t half = D / 2;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < N * half;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t n = idx / half, i = idx % half;
    const float angle = static_cast<float>(pos[n]) * f.inv_freq[i];
    double sd, cd;
    sincos(static_cast<double>(angle), &sd, &cd);
    const float c = static_cast<float>(cd) * f.attention_scaling,
                s = static_cast<float>(sign) * (static_cast<float>(sd) * f.attention_scaling);
    for (int64_t h = 0; h < H; ++h) {
      const int64_t base = (n * H + h) * D;
      const float x1 = ld(x, base + i), x2 = ld(x, base + i + half);
      st(x, base + i, x1 * c - x2 * s);
      st(x, base + i + half, x2 * c + x1 * s);
    }
  }
}

// out = silu(gate) · up; silu in double, rounded once.
template <class A>
__global__ void swiglu_forward_k(A* out, const A* gate, const A* up, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const double g = ld(gate, i);
    const float silu = static_cast<float>(g / (1.0 + exp(-g)));
    st(out, i, silu * ld(up, i));
  }
}

// dgate = dout·up·σ(g)·(1 + g·(1 − σ(g))), dup = dout·silu(g), in double, rounded once.
template <class A>
__global__ void swiglu_backward_k(A* dgate, A* dup, const A* dout, const A* gate, const A* up, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const double g = ld(gate, i), go = ld(dout, i), u = ld(up, i);
    const double sig = 1.0 / (1.0 + exp(-g));
    st(dgate, i, static_cast<float>(go * u * sig * (1.0 + g * (1.0 - sig))));
    st(dup, i, static_cast<float>(go * (g * sig)));
  }
}

template <class A>
__global__ void add_k(A* out, const A* a, const A* b, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    st(out, i, ld(a, i) + ld(b, i));
}

template <class A>
__global__ void scale_k(A* x, float s, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    st(x, i, s == 0.f ? 0.f : ld(x, i) * s);  // s = 0 writes zeros (backend.h), even over NaN
}

// ---- the counter-based dropout hash: the CPU's own function (util/rng.h) ----
__device__ __forceinline__ float dropout_uniform(uint64_t seed, int64_t i) { return lorafit::counter_uniform24(seed, i); }

template <class A>
__global__ void dropout_k(A* out, const A* x, float p, float inv_keep, uint64_t seed, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    st(out, i, dropout_uniform(seed, i) >= p ? ld(x, i) * inv_keep : 0.f);
}

// torch AdamW (cpu::adamw_kernel), with explicit roundings (no fused multiply-add) so the
// update is the CPU backend's bit for bit.
__global__ void adamw_k(float* p, const float* g, float* m, float* v, int64_t n, AdamWScalars s) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    float pi = p[i];
    if (s.apply_decay) pi = __fmul_rn(pi, s.decay);
    const float gi = g[i];
    float mi = m[i];
    mi = s.w1 < 0.5f ? __fadd_rn(mi, __fmul_rn(s.w1, __fsub_rn(gi, mi)))
                     : __fsub_rn(gi, __fmul_rn(__fsub_rn(gi, mi), __fsub_rn(1.f, s.w1)));
    const float vi = __fadd_rn(__fmul_rn(v[i], s.b2), __fmul_rn(__fmul_rn(s.w2, gi), gi));
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), s.bc2_sqrt), s.eps);
    p[i] = __fadd_rn(pi, __fdiv_rn(__fmul_rn(-s.step_size, mi), denom));
    m[i] = mi;
    v[i] = vi;
  }
}

__global__ void sum_squares_partial_k(double* partials, const float* x, int64_t n) {
  double s = 0.0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  s = block_sum(s);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}
// One block adds the partials in a fixed order: the norm is deterministic run to run.
__global__ void sum_squares_final_k(double* result, const double* partials, int count) {
  double s = 0.0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) s += partials[i];
  s = block_sum(s);
  if (threadIdx.x == 0) *result = s;
}

// ---- lm-head + cross-entropy: the online log-sum-exp of CpuBackend::lmhead_ce_forward ----
__global__ void ce_init_k(double* run_max, double* run_sum, float* zt, int64_t N) {
  for (int64_t n = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; n < N; n += int64_t{gridDim.x} * blockDim.x) {
    run_max[n] = -INFINITY;
    run_sum[n] = 0.0;
    zt[n] = 0.f;
  }
}

// One block per row: the chunk's max and Σ exp(z − max) (fp32), merged into the running
// (max, sum) in double.
__global__ void ce_chunk_stats_k(double* run_max, double* run_sum, float* zt, const float* logits,
                                 const int32_t* targets, int64_t nc, int64_t v0) {
  const int64_t n = blockIdx.x;
  const float* z = logits + n * nc;  // (nc)
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < nc; j += blockDim.x) m = fmaxf(m, z[j]);
  m = block_max(m);
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < nc; j += blockDim.x) s += expf(z[j] - m);
  s = block_sum(s);
  if (threadIdx.x == 0) {
    const double old_m = run_max[n], new_m = fmax(old_m, static_cast<double>(m));
    run_sum[n] = run_sum[n] * exp(old_m - new_m) + static_cast<double>(s) * exp(static_cast<double>(m) - new_m);
    run_max[n] = new_m;
    const int32_t t = targets[n];
    if (t >= v0 && t < v0 + nc) zt[n] = z[t - v0];
  }
}

__global__ void ce_finish_k(float* loss, float* lse, const double* run_max, const double* run_sum, const float* zt,
                            const int32_t* targets, int64_t N) {
  for (int64_t n = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; n < N; n += int64_t{gridDim.x} * blockDim.x) {
    const double l = run_max[n] + log(run_sum[n]);
    lse[n] = static_cast<float>(l);
    loss[n] = targets[n] == -100 ? 0.f : static_cast<float>(l - static_cast<double>(zt[n]));
  }
}

template <class G>
__global__ void ce_dlogits_k(G* dlogits, const float* logits, const float* dloss, const float* lse,
                             const int32_t* targets, int64_t N, int64_t nc, int64_t v0) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < N * nc; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t n = i / nc, j = i % nc;
    const int32_t t = targets[n];
    const float dl = dloss[n];
    float gz = 0.f;
    if (t != -100 && dl != 0.f) {
      gz = dl * expf(logits[i] - lse[n]);
      if (t == v0 + j) gz -= dl;
    }
    st(dlogits, i, gz);
  }
}

}  // namespace

// ---- launchers ----
cudaError_t convert(void* dst, ET dt, const void* src, ET st_, int64_t n) {
  return with_any(dt, [&](auto dtag) {
    using D = typename decltype(dtag)::type;
    return with_any(st_, [&](auto stag) {
      using S = typename decltype(stag)::type;
      convert_k<<<grid_for(n, kThreads), kThreads>>>(static_cast<D*>(dst), static_cast<const S*>(src), n);
      return cudaGetLastError();
    });
  });
}

cudaError_t first_out_of_range(int* first_bad, const int32_t* v, int64_t n, int32_t hi, bool allow_ignore) {
  if (n == 0) return cudaSuccess;
  first_out_of_range_k<<<grid_for(n, kThreads), kThreads>>>(first_bad, v, n, hi, allow_ignore ? 1 : 0);
  return cudaGetLastError();
}

cudaError_t embedding_forward(void* out, ET at, const int32_t* ids, const void* table, ET wt, int64_t N, int64_t C) {
  if (N == 0) return cudaSuccess;
  return with_act(at, [&](auto atag) {
    using A = typename decltype(atag)::type;
    return with_any(wt, [&](auto wtag) {
      using W = typename decltype(wtag)::type;
      embedding_forward_k<<<static_cast<unsigned>(N), kThreads>>>(static_cast<A*>(out), ids,
                                                                  static_cast<const W*>(table), C);
      return cudaGetLastError();
    });
  });
}

cudaError_t rmsnorm_forward(void* out, float* rstd, const void* x, ET at, const void* w, ET wt, int64_t N, int64_t C,
                            float eps) {
  if (N == 0) return cudaSuccess;
  return with_act(at, [&](auto atag) {
    using A = typename decltype(atag)::type;
    return with_any(wt, [&](auto wtag) {
      using W = typename decltype(wtag)::type;
      rmsnorm_forward_k<<<static_cast<unsigned>(N), kThreads>>>(static_cast<A*>(out), rstd,
                                                                static_cast<const A*>(x), static_cast<const W*>(w),
                                                                C, eps);
      return cudaGetLastError();
    });
  });
}

cudaError_t rmsnorm_backward(void* dx, const void* dout, const void* x, ET at, const void* w, ET wt,
                             const float* rstd, int64_t N, int64_t C) {
  if (N == 0) return cudaSuccess;
  return with_act(at, [&](auto atag) {
    using A = typename decltype(atag)::type;
    return with_any(wt, [&](auto wtag) {
      using W = typename decltype(wtag)::type;
      rmsnorm_backward_k<<<static_cast<unsigned>(N), kThreads>>>(static_cast<A*>(dx), static_cast<const A*>(dout),
                                                                 static_cast<const A*>(x),
                                                                 static_cast<const W*>(w), rstd, C);
      return cudaGetLastError();
    });
  });
}

cudaError_t add_bias(void* out, ET at, const void* bias, ET wt, int64_t N, int64_t O) {
  if (N * O == 0) return cudaSuccess;
  return with_act(at, [&](auto atag) {
    using A = typename decltype(atag)::type;
    return with_any(wt, [&](auto wtag) {
      using W = typename decltype(wtag)::type;
      add_bias_k<<<grid_for(N * O, kThreads), kThreads>>>(static_cast<A*>(out), static_cast<const W*>(bias), N, O);
      return cudaGetLastError();
    });
  });
}

cudaError_t bias_grad(float* dbias, const void* dout, ET at, int64_t N, int64_t O) {
  if (O == 0) return cudaSuccess;
  return with_act(at, [&](auto atag) {
    using A = typename decltype(atag)::type;
    const unsigned blocks = static_cast<unsigned>((O + kThreads - 1) / kThreads);
    bias_grad_k<<<blocks, kThreads>>>(dbias, static_cast<const A*>(dout), N, O);
    return cudaGetLastError();
  });
}

cudaError_t rope_rotate(void* x, ET at, const int32_t* pos, int64_t N, int64_t H, int64_t D, const RopeFreqs& f,
                        int sign) {
  if (N * (D / 2) == 0) return cudaSuccess;
  return with_act(at, [&](auto atag) {
    using A = typename decltype(atag)::type;
    rope_k<<<grid_for(N * (D / 2), kThreads), kThreads>>>(static_cast<A*>(x), pos, N, H, D, f, sign);
    return cudaGetLastError();
  });
}

cudaError_t swiglu_forward(void* out, const void* gate, const void* up, ET at, int64_t n) {
  if (n == 0) return cudaSuccess;
  return with_act(at, [&](auto atag) {
    using A = typename decltype(atag)::type;
    swiglu_forward_k<<<grid_for(n, kThreads), kThreads>>>(static_cast<A*>(out), static_cast<const A*>(gate),
                                                          static_cast<const A*>(up), n);
    return cudaGetLastError();
  });
}

cudaError_t swiglu_backward(void* dgate, void* dup, const void* dout, const void* gate, const void* up, ET at,
                            int64_t n) {
  if (n == 0) return cudaSuccess;
  return with_act(at, [&](auto atag) {
    using A = typename decltype(atag)::type;
    swiglu_backward_k<<<grid_for(n, kThreads), kThreads>>>(static_cast<A*>(dgate), static_cast<A*>(dup),
                                                           static_cast<const A*>(dout), static_cast<const A*>(gate),
                                                           static_cast<const A*>(up), n);
    return cudaGetLastError();
  });
}

cudaError_t add(void* out, const void* a, const void* b, ET at, int64_t n) {
  if (n == 0) return cudaSuccess;
  return with_act(at, [&](auto atag) {
    using A = typename decltype(atag)::type;
    add_k<<<grid_for(n, kThreads), kThreads>>>(static_cast<A*>(out), static_cast<const A*>(a),
                                               static_cast<const A*>(b), n);
    return cudaGetLastError();
  });
}

cudaError_t scale(void* x, ET at, float s, int64_t n) {
  if (n == 0) return cudaSuccess;
  return with_act(at, [&](auto atag) {
    using A = typename decltype(atag)::type;
    scale_k<<<grid_for(n, kThreads), kThreads>>>(static_cast<A*>(x), s, n);
    return cudaGetLastError();
  });
}

cudaError_t dropout(void* out, const void* x, ET at, float p, float inv_keep, uint64_t seed, int64_t n) {
  if (n == 0) return cudaSuccess;
  return with_act(at, [&](auto atag) {
    using A = typename decltype(atag)::type;
    dropout_k<<<grid_for(n, kThreads), kThreads>>>(static_cast<A*>(out), static_cast<const A*>(x), p, inv_keep,
                                                   seed, n);
    return cudaGetLastError();
  });
}

cudaError_t adamw(float* p, const float* g, float* m, float* v, int64_t n, AdamWScalars s) {
  if (n == 0) return cudaSuccess;
  adamw_k<<<grid_for(n, kThreads), kThreads>>>(p, g, m, v, n, s);
  return cudaGetLastError();
}

cudaError_t sum_squares(double* result, double* partials, const float* x, int64_t n) {
  sum_squares_partial_k<<<kSumSquaresBlocks, kThreads>>>(partials, x, n);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  sum_squares_final_k<<<1, kThreads>>>(result, partials, kSumSquaresBlocks);
  return cudaGetLastError();
}

cudaError_t ce_init(double* run_max, double* run_sum, float* zt, int64_t N) {
  if (N == 0) return cudaSuccess;
  ce_init_k<<<grid_for(N, kThreads), kThreads>>>(run_max, run_sum, zt, N);
  return cudaGetLastError();
}

cudaError_t ce_chunk_stats(double* run_max, double* run_sum, float* zt, const float* logits, const int32_t* targets,
                           int64_t N, int64_t nc, int64_t v0) {
  if (N == 0) return cudaSuccess;
  ce_chunk_stats_k<<<static_cast<unsigned>(N), kThreads>>>(run_max, run_sum, zt, logits, targets, nc, v0);
  return cudaGetLastError();
}

cudaError_t ce_finish(float* loss, float* lse, const double* run_max, const double* run_sum, const float* zt,
                      const int32_t* targets, int64_t N) {
  if (N == 0) return cudaSuccess;
  ce_finish_k<<<grid_for(N, kThreads), kThreads>>>(loss, lse, run_max, run_sum, zt, targets, N);
  return cudaGetLastError();
}

cudaError_t ce_dlogits(void* dlogits, ET dt, const float* logits, const float* dloss, const float* lse,
                       const int32_t* targets, int64_t N, int64_t nc, int64_t v0) {
  if (N * nc == 0) return cudaSuccess;
  return with_any(dt, [&](auto gtag) {
    using G = typename decltype(gtag)::type;
    ce_dlogits_k<<<grid_for(N * nc, kThreads), kThreads>>>(static_cast<G*>(dlogits), logits, dloss, lse, targets,
                                                           N, nc, v0);
    return cudaGetLastError();
  });
}

}  // namespace lorafit::cuda
