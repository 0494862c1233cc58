// 4-bit dequantization (QLoRA): the CUDA twin of formats/quant4.cpp dequantize_4bit_blocks.
// One thread per packed byte (elements 2i and 2i+1: high nibble first). The products are
// written with __fmul_rn / __fadd_rn so nvcc cannot contract them into an FMA: each is one fp32
// rounding, as on the CPU, and the result equals the CPU reference bit for bit.
#include <algorithm>

#include "backend/cuda/cuda_common.cuh"

namespace lorafit::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kBlock = 64, kNested = 256;  // formats/quant4.h kQuant4Block, kNestedBlock

__device__ __forceinline__ float block_absmax(const void* absmax, const float* nested, const float* code8,
                                              float offset, int64_t b) {
  if (nested == nullptr) return static_cast<const float*>(absmax)[b];
  const uint8_t q = static_cast<const uint8_t*>(absmax)[b];
  return __fadd_rn(__fmul_rn(code8[q], nested[b / kNested]), offset);
}

template <class O>
__global__ void dequantize_4bit_k(O* out, const uint8_t* packed, const void* absmax, const float* nested,
                                  const float* code4, const float* code8, float offset, int64_t n) {
  const int64_t bytes = (n + 1) / 2;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < bytes; i += int64_t{gridDim.x} * blockDim.x) {
    const uint8_t byte = packed[i];
    const int64_t e = 2 * i;  // 2i and 2i+1 share a 64-block (64 is even)
    const float scale = block_absmax(absmax, nested, code8, offset, e / kBlock);
    st(out, e, __fmul_rn(code4[byte >> 4], scale));
    if (e + 1 < n) st(out, e + 1, __fmul_rn(code4[byte & 0x0f], scale));
  }
}

}  // namespace

cudaError_t dequantize_4bit(void* out, ET ot, const uint8_t* packed, const void* absmax, const float* nested,
                            const float* code4, const float* code8, float offset, int64_t n) {
  const int64_t bytes = (n + 1) / 2;
  const int blocks = static_cast<int>(std::min<int64_t>((bytes + kThreads - 1) / kThreads, 65535));
  if (ot == ET::F32)
    dequantize_4bit_k<<<blocks, kThreads>>>(static_cast<float*>(out), packed, absmax, nested, code4, code8, offset, n);
  else
    dequantize_4bit_k<<<blocks, kThreads>>>(static_cast<__nv_bfloat16*>(out), packed, absmax, nested, code4, code8,
                                            offset, n);
  return cudaGetLastError();
}

}  // namespace lorafit::cuda
