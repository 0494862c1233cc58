// DoRA's elementwise steps: the CUDA twins of backend/cpu/backend_dora.cpp (backend.h "DoRA").
// Every fp32 op is written with an explicit-rounding intrinsic (__fmul_rn, __fadd_rn, ...) so
// nvcc cannot fuse a multiply-add: each is one fp32 rounding in the CPU reference's order.
// Sums over rows (the norm's, dm's) are in double, as on the CPU; their order differs, which
// moves the fp32 result by at most an ulp (the parity test's bound).
#include "backend/cuda/cuda_common.cuh"

namespace lorafit::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float round_bf16(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

// One block per row r: n[r] = sqrt(Σ_k v²), v = w + s·ba (bf16_lora: w + bf16(s·bf16(ba))).
template <class W>
__global__ void dora_norm_k(float* n, const W* w, const float* ba, float s, int bf16_lora, int64_t I) {
  const int64_t r = blockIdx.x;
  double ss = 0;
  for (int64_t k = threadIdx.x; k < I; k += blockDim.x) {
    const float lw = ba[r * I + k];
    const float add = bf16_lora ? round_bf16(__fmul_rn(s, round_bf16(lw))) : __fmul_rn(s, lw);
    const float v = __fadd_rn(ld(w, r * I + k), add);
    ss += static_cast<double>(v) * v;
  }
  ss = block_sum(ss);
  if (threadIdx.x == 0) n[r] = static_cast<float>(sqrt(ss));
}

// y = (y + (c − 1)·t1) + (c·t2)·s (F32), or y = bf16(y + ((c − 1)·t1 + (c·t2)·s)) (BF16).
template <class A>
__global__ void dora_combine_k(A* y, const A* t1, const A* t2, const float* m, const float* n, float s, int64_t N,
                               int64_t O, int f32) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < N * O; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t o = i % O;
    const float c = __fdiv_rn(m[o], n[o]);
    const float cm1 = __fsub_rn(c, 1.f);
    const float a = __fmul_rn(cm1, ld(t1, i));
    const float b = __fmul_rn(__fmul_rn(c, ld(t2, i)), s);
    if (f32) {
      st(y, i, __fadd_rn(__fadd_rn(ld(y, i), a), b));
    } else {
      st(y, i, __fadd_rn(ld(y, i), __fadd_rn(a, b)));
    }
  }
}

// One thread per column o walks the N rows (reading a/b before it overwrites them): the dm sums
// and the scaled gradients. F32: a = S on entry, a = c·dy, b = (c − 1)·dy on exit. BF16: a = t1,
// b = t2 on entry, a = bf16(g·(c − 1)), b = bf16(g·s·c) on exit.
template <class A>
__global__ void dora_backward_scale_k(float* dm, A* a, A* b, const A* dy, const float* m, const float* n, float s,
                                      int64_t N, int64_t O, int f32) {
  const int64_t o = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (o >= O) return;
  const float c = __fdiv_rn(m[o], n[o]);
  const float cm1 = __fsub_rn(c, 1.f);
  double d1 = 0, d2 = 0;
  for (int64_t r = 0; r < N; ++r) {
    const int64_t i = r * O + o;
    const float g = ld(dy, i);
    if (f32) {
      d1 += static_cast<double>(g) * ld(a, i);
      st(a, i, __fmul_rn(c, g));
      st(b, i, __fmul_rn(cm1, g));
    } else {
      const float gs = __fmul_rn(g, s);
      d1 += static_cast<double>(g) * ld(a, i);
      d2 += static_cast<double>(gs) * ld(b, i);
      st(a, i, __fmul_rn(g, cm1));
      st(b, i, __fmul_rn(gs, c));
    }
  }
  if (f32) {
    dm[o] = __fadd_rn(dm[o], static_cast<float>(d1 / n[o]));
  } else {
    dm[o] = __fadd_rn(dm[o], __fdiv_rn(__fadd_rn(static_cast<float>(d1), static_cast<float>(d2)), n[o]));
  }
}

}  // namespace

cudaError_t dora_norm(float* n, const void* w, ET wt, const float* ba, float s, bool bf16_lora, int64_t R, int64_t I) {
  if (R == 0) return cudaSuccess;
  return with_any(wt, [&](auto tag) {
    using W = typename decltype(tag)::type;
    dora_norm_k<<<static_cast<unsigned>(R), kThreads>>>(n, static_cast<const W*>(w), ba, s, bf16_lora ? 1 : 0, I);
    return cudaGetLastError();
  });
}

cudaError_t dora_combine(void* y, const void* t1, const void* t2, ET at, const float* m, const float* n, float s,
                         int64_t N, int64_t O) {
  if (N * O == 0) return cudaSuccess;
  return with_act(at, [&](auto tag) {
    using A = typename decltype(tag)::type;
    dora_combine_k<<<grid_for(N * O, kThreads), kThreads>>>(
        static_cast<A*>(y), static_cast<const A*>(t1), static_cast<const A*>(t2), m, n, s, N, O, at == ET::F32 ? 1 : 0);
    return cudaGetLastError();
  });
}

cudaError_t dora_backward_scale(float* dm, void* a, void* b, const void* dy, ET at, const float* m, const float* n,
                                float s, int64_t N, int64_t O) {
  if (O == 0) return cudaSuccess;
  return with_act(at, [&](auto tag) {
    using A = typename decltype(tag)::type;
    dora_backward_scale_k<<<static_cast<unsigned>((O + kThreads - 1) / kThreads), kThreads>>>(
        dm, static_cast<A*>(a), static_cast<A*>(b), static_cast<const A*>(dy), m, n, s, N, O, at == ET::F32 ? 1 : 0);
    return cudaGetLastError();
  });
}

}  // namespace lorafit::cuda
