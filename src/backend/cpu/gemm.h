// The CPU backend's one matrix-multiply entry point. Every GEMM of the CPU backend (linear
// layers, LoRA, attention tiles, lm-head chunks) goes through gemm(), so the library behind it
// is chosen in one place: oneDNN's matmul primitive, which picks its kernels by the CPU's
// instruction sets at run time (AVX2, AVX-512, AVX512-BF16, AMX), not by CPU model numbers.
// (OpenBLAS 0.3.21 picks by model number and falls back to SSE3 kernels on CPUs it does not
// know; docs/performance.md has the measurements behind the choice.)
#pragma once
#include <cstdint>
#include <string>

#include "tensor/dtype.h"

namespace lorafit::cpu {

// C (M,N) = alpha · op(A) · op(B) + beta · C, all row-major with leading dimensions in elements.
// op(A) is (M,K): A is stored (M,K), or (K,M) when trans_a; op(B) is (K,N): B is stored (K,N),
// or (N,K) when trans_b. A and B share the element type `ab` (F32 or BF16); C is F32 or BF16.
// Products accumulate in fp32 (bf16 × bf16 products are exact in fp32); a BF16 C is rounded
// once, to nearest even, at the end. beta == 0 never reads C. Safe to call from several
// threads at once (each call then runs on its calling thread only).
void gemm(DType ab, DType c, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const void* A, int64_t lda, const void* B, int64_t ldb, float beta, void* C, int64_t ldc);

// fp32 shorthand: gemm(F32, F32, ...).
inline void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm(DType::F32, DType::F32, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// One line naming the library and the kernel family it runs for fp32 and bf16 on this CPU,
// e.g. "oneDNN 2.6.3, ISA avx512_core_bf16: f32 brg:avx512_core, bf16 brg:avx512_core_bf16".
std::string gemm_kernel_info();

}  // namespace lorafit::cpu
