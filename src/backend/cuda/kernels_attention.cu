// Causal GQA attention on CUDA, flash-attention style: tiles of keys/values in shared memory,
// an online softmax with fp32 accumulators, never a (T,T) score matrix. The arithmetic per
// query follows cpu::attention_forward / attention_backward_kernel (scores scaled by D^-½,
// max subtracted, lse saved; the backward recomputes P from lse).
//
// Layout of the work (deliberately simple; a tuned kernel would use tensor cores):
//  forward / dq: one block per (query tile, head, batch row); each warp owns some queries of
//    the tile; lane j scores key j of the current 32-key tile (a full D-length dot product
//    from shared memory), then P·V / dS·K accumulate with lanes splitting the head dim.
//  dk/dv: one block per (key tile, kv head, batch row); each warp owns some keys; lane j
//    handles query j of a 32-query tile, over every query head of the kv head's group.
// Every output row is written by exactly one block: no atomics, deterministic results.
// Rows of a key tile are padded to an odd stride so lanes reading different rows hit
// different shared-memory banks.
#include <cmath>

#include "backend/cuda/cuda_common.cuh"

namespace lorafit::cuda {
namespace {

constexpr int kWarps = 4;                    // warps per block
constexpr int kThreadsA = kWarps * 32;
constexpr int kTile = 32;                    // keys (forward, dq) or queries (dk/dv) per tile: one per lane
constexpr int kLaneDims = kMaxHeadDim / 32;  // head-dim elements per lane in the accumulators
constexpr int kFwdQPerWarp = 4;              // forward: 16 queries per block
constexpr int kDqQPerWarp = 2;               // dq: 8 queries per block (two query tiles in smem)
constexpr int kDkvKPerWarp = 2;              // dk/dv: 8 keys per block

__host__ __device__ constexpr int64_t padded(int64_t D) { return D | 1; }  // odd stride

// ---- forward (also attention_decode: Tq new queries at positions p0.. over a cache) ----
template <class A>
__global__ void __launch_bounds__(kThreadsA)
    attention_forward_k(A* out, float* lse, const A* q, const A* k, const A* v, const int32_t* seg, AttnShape s,
                        float scale) {
  constexpr int BQ = kWarps * kFwdQPerWarp;
  extern __shared__ float smem[];
  const int64_t D = s.D, Dp = padded(D);
  float* sq = smem;            // (BQ, D) the tile's queries
  float* sk = sq + BQ * D;     // (kTile, Dp) keys
  float* sv = sk + kTile * Dp;  // (kTile, D) values
  const int64_t b = blockIdx.z, h = blockIdx.y, t0 = static_cast<int64_t>(blockIdx.x) * BQ;
  const int64_t hk = h / (s.H / s.Hkv);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  for (int64_t i = threadIdx.x; i < BQ * D; i += blockDim.x) {
    const int64_t r = i / D, d = i % D, t = t0 + r;
    sq[i] = t < s.Tq ? ld(q, ((b * s.Tq + t) * s.H + h) * D + d) : 0.f;
  }
  float m[kFwdQPerWarp], l[kFwdQPerWarp], acc[kFwdQPerWarp][kLaneDims];
  for (int i = 0; i < kFwdQPerWarp; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.f;
    for (int dd = 0; dd < kLaneDims; ++dd) acc[i][dd] = 0.f;
  }
  const int64_t last_t = (t0 + BQ < s.Tq ? t0 + BQ : s.Tq) - 1;
  const int64_t kv_end = s.p0 + last_t + 1;  // keys [0, kv_end) are visible to some query here
  for (int64_t s0 = 0; s0 < kv_end; s0 += kTile) {
    __syncthreads();  // the previous tile is consumed (and the query tile is loaded)
    for (int64_t i = threadIdx.x; i < kTile * D; i += blockDim.x) {
      const int64_t j = i / D, d = i % D, key = s0 + j;
      float kx = 0.f, vx = 0.f;
      if (key < kv_end) {
        const int64_t off = ((b * s.S + key) * s.Hkv + hk) * D + d;
        kx = ld(k, off);
        vx = ld(v, off);
      }
      sk[j * Dp + d] = kx;
      sv[j * D + d] = vx;
    }
    __syncthreads();
    const int64_t key = s0 + lane;
    #pragma unroll  // keeps the per-query accumulators in registers
    for (int i = 0; i < kFwdQPerWarp; ++i) {
      const int64_t r = warp + kWarps * i, t = t0 + r;
      if (t >= s.Tq) break;  // uniform across the warp
      bool ok = key <= s.p0 + t;
      if (ok && seg != nullptr) ok = seg[b * s.S + key] == seg[b * s.S + t];
      float sc = -INFINITY;
      if (ok) {
        float dot = 0.f;
        for (int64_t d = 0; d < D; ++d) dot += sq[r * D + d] * sk[lane * Dp + d];
        sc = dot * scale;
      }
      const float tile_max = warp_max(sc);
      if (tile_max == -INFINITY) continue;  // no visible key in this tile for this query
      const float new_m = fmaxf(m[i], tile_max);
      const float corr = expf(m[i] - new_m);  // 0 on the first visible tile (m = −inf)
      const float p = ok ? expf(sc - new_m) : 0.f;
      l[i] = l[i] * corr + warp_sum(p);
      for (int dd = 0; dd < kLaneDims; ++dd) acc[i][dd] *= corr;
      for (int j = 0; j < kTile; ++j) {
        const float pj = __shfl_sync(kFullMask, p, j);
        for (int dd = 0; dd < kLaneDims; ++dd) {
          const int64_t d = lane + 32 * dd;
          if (d < D) acc[i][dd] += pj * sv[j * D + d];
        }
      }
      m[i] = new_m;
    }
  }
  #pragma unroll  // keeps the per-query accumulators in registers
  for (int i = 0; i < kFwdQPerWarp; ++i) {
    const int64_t r = warp + kWarps * i, t = t0 + r;
    if (t >= s.Tq) break;
    for (int dd = 0; dd < kLaneDims; ++dd) {
      const int64_t d = lane + 32 * dd;
      if (d < D) st(out, ((b * s.Tq + t) * s.H + h) * D + d, acc[i][dd] / l[i]);
    }
    if (lse != nullptr && lane == 0) lse[(b * s.H + h) * s.Tq + t] = m[i] + logf(l[i]);
  }
}

// δ (B,H,T) = Σ_d dout·out per query row: one thread per row.
template <class A>
__global__ void attention_delta_k(float* delta, const A* dout, const A* out, AttnShape s) {
  const int64_t rows = s.B * s.Tq * s.H;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < rows;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t h = idx % s.H, t = (idx / s.H) % s.Tq, b = idx / (s.H * s.Tq);  // idx = (b·T + t)·H + h
    float acc = 0.f;
    for (int64_t d = 0; d < s.D; ++d) acc += ld(dout, idx * s.D + d) * ld(out, idx * s.D + d);
    delta[(b * s.H + h) * s.Tq + t] = acc;
  }
}

// dq_t = scale · Σ_s P_ts (dout_t·v_s − δ_t) k_s, P_ts = exp(scale·q_t·k_s − lse_t).
template <class A>
__global__ void __launch_bounds__(kThreadsA)
    attention_dq_k(A* dq, const A* dout, const A* q, const A* k, const A* v, const float* lse, const float* delta,
                   const int32_t* seg, AttnShape s, float scale) {
  constexpr int BQ = kWarps * kDqQPerWarp;
  extern __shared__ float smem[];
  const int64_t D = s.D, Dp = padded(D), T = s.Tq;
  float* sq = smem;             // (BQ, D) queries
  float* sdo = sq + BQ * D;     // (BQ, D) output gradients
  float* sk = sdo + BQ * D;     // (kTile, Dp) keys
  float* sv = sk + kTile * Dp;  // (kTile, Dp) values (lane j reads row j)
  const int64_t b = blockIdx.z, h = blockIdx.y, t0 = static_cast<int64_t>(blockIdx.x) * BQ;
  const int64_t hk = h / (s.H / s.Hkv);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  for (int64_t i = threadIdx.x; i < BQ * D; i += blockDim.x) {
    const int64_t r = i / D, d = i % D, t = t0 + r;
    const bool in = t < T;
    sq[i] = in ? ld(q, ((b * T + t) * s.H + h) * D + d) : 0.f;
    sdo[i] = in ? ld(dout, ((b * T + t) * s.H + h) * D + d) : 0.f;
  }
  float lse_t[kDqQPerWarp], delta_t[kDqQPerWarp], acc[kDqQPerWarp][kLaneDims];
  for (int i = 0; i < kDqQPerWarp; ++i) {
    const int64_t t = t0 + warp + kWarps * i;
    lse_t[i] = t < T ? lse[(b * s.H + h) * T + t] : 0.f;
    delta_t[i] = t < T ? delta[(b * s.H + h) * T + t] : 0.f;
    for (int dd = 0; dd < kLaneDims; ++dd) acc[i][dd] = 0.f;
  }
  const int64_t kv_end = t0 + BQ < T ? t0 + BQ : T;
  for (int64_t s0 = 0; s0 < kv_end; s0 += kTile) {
    __syncthreads();
    for (int64_t i = threadIdx.x; i < kTile * D; i += blockDim.x) {
      const int64_t j = i / D, d = i % D, key = s0 + j;
      float kx = 0.f, vx = 0.f;
      if (key < kv_end) {
        const int64_t off = ((b * T + key) * s.Hkv + hk) * D + d;
        kx = ld(k, off);
        vx = ld(v, off);
      }
      sk[j * Dp + d] = kx;
      sv[j * Dp + d] = vx;
    }
    __syncthreads();
    const int64_t key = s0 + lane;
    for (int i = 0; i < kDqQPerWarp; ++i) {
      const int64_t r = warp + kWarps * i, t = t0 + r;
      if (t >= T) break;  // uniform across the warp
      bool ok = key <= t;
      if (ok && seg != nullptr) ok = seg[b * T + key] == seg[b * T + t];
      float ds = 0.f;
      if (ok) {
        float sc = 0.f, dp = 0.f;
        for (int64_t d = 0; d < D; ++d) {
          sc += sq[r * D + d] * sk[lane * Dp + d];
          dp += sdo[r * D + d] * sv[lane * Dp + d];
        }
        const float p = expf(sc * scale - lse_t[i]);
        ds = p * (dp - delta_t[i]);
      }
      for (int j = 0; j < kTile; ++j) {
        const float a = __shfl_sync(kFullMask, ds, j) * scale;
        for (int dd = 0; dd < kLaneDims; ++dd) {
          const int64_t d = lane + 32 * dd;
          if (d < D) acc[i][dd] += a * sk[j * Dp + d];
        }
      }
    }
  }
  for (int i = 0; i < kDqQPerWarp; ++i) {
    const int64_t t = t0 + warp + kWarps * i;
    if (t >= T) break;
    for (int dd = 0; dd < kLaneDims; ++dd) {
      const int64_t d = lane + 32 * dd;
      if (d < D) st(dq, ((b * T + t) * s.H + h) * D + d, acc[i][dd]);
    }
  }
}

// dk_s = scale · Σ_{h in group, t ≥ s} dS_ts q_t ; dv_s = Σ P_ts dout_t.
template <class A>
__global__ void __launch_bounds__(kThreadsA)
    attention_dkv_k(A* dk, A* dv, const A* dout, const A* q, const A* k, const A* v, const float* lse,
                    const float* delta, const int32_t* seg, AttnShape s, float scale) {
  constexpr int BK = kWarps * kDkvKPerWarp;
  extern __shared__ float smem[];
  const int64_t D = s.D, Dp = padded(D), T = s.Tq, group = s.H / s.Hkv;
  float* skk = smem;              // (BK, D) the block's keys
  float* svv = skk + BK * D;      // (BK, D) the block's values
  float* sq = svv + BK * D;       // (kTile, Dp) queries (lane j reads row j)
  float* sdo = sq + kTile * Dp;   // (kTile, Dp) output gradients
  float* slse = sdo + kTile * Dp;  // (kTile)
  float* sdelta = slse + kTile;   // (kTile)
  const int64_t b = blockIdx.z, hk = blockIdx.y, k0 = static_cast<int64_t>(blockIdx.x) * BK;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  for (int64_t i = threadIdx.x; i < BK * D; i += blockDim.x) {
    const int64_t r = i / D, d = i % D, key = k0 + r;
    const bool in = key < T;
    skk[i] = in ? ld(k, ((b * T + key) * s.Hkv + hk) * D + d) : 0.f;
    svv[i] = in ? ld(v, ((b * T + key) * s.Hkv + hk) * D + d) : 0.f;
  }
  float adk[kDkvKPerWarp][kLaneDims], adv[kDkvKPerWarp][kLaneDims];
  for (int i = 0; i < kDkvKPerWarp; ++i)
    for (int dd = 0; dd < kLaneDims; ++dd) adk[i][dd] = adv[i][dd] = 0.f;

  for (int64_t hh = 0; hh < group; ++hh) {
    const int64_t h = hk * group + hh;
    for (int64_t tq0 = k0; tq0 < T; tq0 += kTile) {  // queries before the first key see none of them
      __syncthreads();
      for (int64_t i = threadIdx.x; i < kTile * D; i += blockDim.x) {
        const int64_t j = i / D, d = i % D, t = tq0 + j;
        const bool in = t < T;
        sq[j * Dp + d] = in ? ld(q, ((b * T + t) * s.H + h) * D + d) : 0.f;
        sdo[j * Dp + d] = in ? ld(dout, ((b * T + t) * s.H + h) * D + d) : 0.f;
      }
      for (int64_t j = threadIdx.x; j < kTile; j += blockDim.x) {
        const int64_t t = tq0 + j;
        slse[j] = t < T ? lse[(b * s.H + h) * T + t] : 0.f;
        sdelta[j] = t < T ? delta[(b * s.H + h) * T + t] : 0.f;
      }
      __syncthreads();
      const int64_t t = tq0 + lane;
      for (int i = 0; i < kDkvKPerWarp; ++i) {
        const int64_t r = warp + kWarps * i, key = k0 + r;
        if (key >= T) break;  // uniform across the warp
        bool ok = t < T && t >= key;
        if (ok && seg != nullptr) ok = seg[b * T + key] == seg[b * T + t];
        float p = 0.f, ds = 0.f;
        if (ok) {
          float sc = 0.f, dp = 0.f;
          for (int64_t d = 0; d < D; ++d) {
            sc += sq[lane * Dp + d] * skk[r * D + d];
            dp += sdo[lane * Dp + d] * svv[r * D + d];
          }
          p = expf(sc * scale - slse[lane]);
          ds = p * (dp - sdelta[lane]);
        }
        for (int j = 0; j < kTile; ++j) {
          const float pj = __shfl_sync(kFullMask, p, j);
          const float a = __shfl_sync(kFullMask, ds, j) * scale;
          for (int dd = 0; dd < kLaneDims; ++dd) {
            const int64_t d = lane + 32 * dd;
            if (d < D) {
              adv[i][dd] += pj * sdo[j * Dp + d];
              adk[i][dd] += a * sq[j * Dp + d];
            }
          }
        }
      }
    }
  }
  for (int i = 0; i < kDkvKPerWarp; ++i) {
    const int64_t key = k0 + warp + kWarps * i;
    if (key >= T) break;
    for (int dd = 0; dd < kLaneDims; ++dd) {
      const int64_t d = lane + 32 * dd;
      if (d < D) {
        st(dk, ((b * T + key) * s.Hkv + hk) * D + d, adk[i][dd]);
        st(dv, ((b * T + key) * s.Hkv + hk) * D + d, adv[i][dd]);
      }
    }
  }
}

float softmax_scale(int64_t D) { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(D))); }

}  // namespace

cudaError_t attention_forward(void* out, float* lse, const void* q, const void* k, const void* v, const int32_t* seg,
                              ET at, AttnShape s) {
  if (s.B * s.Tq * s.H == 0) return cudaSuccess;
  constexpr int BQ = kWarps * kFwdQPerWarp;
  const size_t smem = static_cast<size_t>(BQ * s.D + kTile * padded(s.D) + kTile * s.D) * sizeof(float);
  const dim3 grid(static_cast<unsigned>((s.Tq + BQ - 1) / BQ), static_cast<unsigned>(s.H),
                  static_cast<unsigned>(s.B));
  return with_act(at, [&](auto atag) {
    using A = typename decltype(atag)::type;
    attention_forward_k<A><<<grid, kThreadsA, smem>>>(static_cast<A*>(out), lse, static_cast<const A*>(q),
                                                      static_cast<const A*>(k), static_cast<const A*>(v), seg, s,
                                                      softmax_scale(s.D));
    return cudaGetLastError();
  });
}

cudaError_t attention_backward(void* dq, void* dk, void* dv, const void* dout, const void* q, const void* k,
                               const void* v, const void* out, const float* lse, const int32_t* seg, float* delta,
                               ET at, AttnShape s) {
  if (s.B * s.Tq * s.H == 0) return cudaSuccess;
  constexpr int BQ = kWarps * kDqQPerWarp, BK = kWarps * kDkvKPerWarp;
  const int64_t Dp = padded(s.D);
  const size_t smem_dq = static_cast<size_t>(2 * BQ * s.D + 2 * kTile * Dp) * sizeof(float);
  const size_t smem_dkv = static_cast<size_t>(2 * BK * s.D + 2 * kTile * Dp + 2 * kTile) * sizeof(float);
  const dim3 grid_dq(static_cast<unsigned>((s.Tq + BQ - 1) / BQ), static_cast<unsigned>(s.H),
                     static_cast<unsigned>(s.B));
  const dim3 grid_dkv(static_cast<unsigned>((s.Tq + BK - 1) / BK), static_cast<unsigned>(s.Hkv),
                      static_cast<unsigned>(s.B));
  const float sc = softmax_scale(s.D);
  return with_act(at, [&](auto atag) {
    using A = typename decltype(atag)::type;
    const int64_t rows = s.B * s.Tq * s.H;
    attention_delta_k<A><<<grid_for(rows, 256), 256>>>(delta, static_cast<const A*>(dout),
                                                      static_cast<const A*>(out), s);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    attention_dq_k<A><<<grid_dq, kThreadsA, smem_dq>>>(static_cast<A*>(dq), static_cast<const A*>(dout),
                                                       static_cast<const A*>(q), static_cast<const A*>(k),
                                                       static_cast<const A*>(v), lse, delta, seg, s, sc);
    e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    attention_dkv_k<A><<<grid_dkv, kThreadsA, smem_dkv>>>(static_cast<A*>(dk), static_cast<A*>(dv),
                                                          static_cast<const A*>(dout), static_cast<const A*>(q),
                                                          static_cast<const A*>(k), static_cast<const A*>(v), lse,
                                                          delta, seg, s, sc);
    return cudaGetLastError();
  });
}

}  // namespace lorafit::cuda
