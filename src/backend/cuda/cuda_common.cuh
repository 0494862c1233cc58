// Device helpers shared by the .cu files: typed loads/stores (every element widens to fp32),
// warp/block reductions, grid sizing and the dtype dispatch of the launchers.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/cuda_kernels.h"

namespace lorafit::cuda {

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float ld(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ float ld(const __half* p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ void st(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__nv_bfloat16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }
__device__ __forceinline__ void st(__half* p, int64_t i, float v) { p[i] = __float2half_rn(v); }

template <class V>
__device__ __forceinline__ V warp_sum(V v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, ≤ 1024), returned to every thread. The
// leading barrier lets a kernel call it repeatedly with the same shared buffer.
template <class V>
__device__ __forceinline__ V block_sum(V v) {
  __shared__ V buf[32];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) buf[w] = v;
  __syncthreads();
  V r = lane < nw ? buf[lane] : V(0);
  return warp_sum(r);
}
__device__ __forceinline__ float block_max(float v) {
  __shared__ float buf[32];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) buf[w] = v;
  __syncthreads();
  float r = lane < nw ? buf[lane] : -INFINITY;
  return warp_max(r);
}

// Blocks for a grid-stride loop over n elements: enough to fill any current GPU, never more
// than the grid's x limit.
inline unsigned grid_for(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > 65536) b = 65536;
  return static_cast<unsigned>(b);
}

template <class T>
struct Tag {
  using type = T;
};
// Calls f(Tag<A>) for an activation type (F32 or BF16).
template <class F>
cudaError_t with_act(ET t, F&& f) {
  switch (t) {
    case ET::F32: return f(Tag<float>{});
    case ET::BF16: return f(Tag<__nv_bfloat16>{});
    default: return cudaErrorInvalidValue;
  }
}
// Calls f(Tag<W>) for a weight/storage type (F32, BF16 or F16).
template <class F>
cudaError_t with_any(ET t, F&& f) {
  switch (t) {
    case ET::F32: return f(Tag<float>{});
    case ET::BF16: return f(Tag<__nv_bfloat16>{});
    case ET::F16: return f(Tag<__half>{});
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace lorafit::cuda
