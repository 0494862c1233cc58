// matvec_bf16 (simd.h): the AVX512-BF16 kernel, compiled for that instruction set by function
// attribute and called only after cpuid says the CPU has it; the fallback widens to fp32 and
// runs the Highway matvec_f32. No model-number tables: features only.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "backend/cpu/simd.h"
#include "util/error.h"

namespace lorafit::cpu {

namespace {

bool detect_bf16_dot() {
  __builtin_cpu_init();
  // __builtin_cpu_supports checks cpuid and that the OS saves the ZMM state (xgetbv).
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512bf16");
}

std::atomic<bool>& bf16_dot_on() {
  static std::atomic<bool> on{detect_bf16_dot()};
  return on;
}

// y32[m·O + o] = x (M, I) · W[o] (I), M ≤ 4: one W row streamed once, 32 bf16 per load. The
// AVX512 body is its own function: clang outlines an OpenMP region into a function without the
// enclosing target attribute, so the parallel loop (dot_rows_dpbf16) must hold no vector code.
template <int M>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void dot_row_dpbf16(float* y32, const uint16_t* x,
                                                                          const uint16_t* W, int64_t o, int64_t O,
                                                                          int64_t I) {
  const uint16_t* w = W + o * I;  // (I)
  __m512 acc[M];
  for (int m = 0; m < M; ++m) acc[m] = _mm512_setzero_ps();
  for (int64_t k = 0; k < I; k += 32) {
    const __mmask32 mask = I - k >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << (I - k)) - 1u);
    const __m512i wv = _mm512_maskz_loadu_epi16(mask, w + k);  // zeros beyond I add nothing
    for (int m = 0; m < M; ++m) {
      const __m512i xv = _mm512_maskz_loadu_epi16(mask, x + m * I + k);
      acc[m] = _mm512_dpbf16_ps(acc[m], reinterpret_cast<__m512bh>(xv), reinterpret_cast<__m512bh>(wv));
    }
  }
  for (int m = 0; m < M; ++m) {  // lanes summed through memory (GCC 12 warns falsely inside _mm512_reduce_add_ps)
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, acc[m]);
    float s = 0.f;
    for (float l : lanes) s += l;
    y32[m * O + o] = s;
  }
}

// y32 (M, O) = x (M, I) · W (O, I)ᵀ, rows of W split across threads.
template <int M>
void dot_rows_dpbf16(float* y32, const uint16_t* x, const uint16_t* W, int64_t O, int64_t I) {
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < O; ++o) dot_row_dpbf16<M>(y32, x, W, o, O, I);
}

void dot_dpbf16(float* y32, const uint16_t* x, const uint16_t* W, int64_t M, int64_t O, int64_t I) {
  switch (M) {
    case 1: return dot_rows_dpbf16<1>(y32, x, W, O, I);
    case 2: return dot_rows_dpbf16<2>(y32, x, W, O, I);
    case 3: return dot_rows_dpbf16<3>(y32, x, W, O, I);
    default: return dot_rows_dpbf16<4>(y32, x, W, O, I);
  }
}

}  // namespace

bool cpu_has_bf16_dot() { return bf16_dot_on().load(); }
void set_bf16_dot_for_test(bool on) { bf16_dot_on().store(on && detect_bf16_dot()); }

void matvec_bf16(void* y, bool y_bf16, const uint16_t* x, const uint16_t* W, int64_t M, int64_t O, int64_t I,
                 float alpha, float beta) {
  LF_CHECK(M >= 1 && M <= kMatvecRows, "matvec_bf16: {} rows (at most {})", M, kMatvecRows);
  thread_local std::vector<float> y32, x32, yold;  // (M, O), (M, I), (M, O)
  y32.resize(static_cast<size_t>(M * O));
  if (cpu_has_bf16_dot()) {
    dot_dpbf16(y32.data(), x, W, M, O, I);
  } else {
    x32.resize(static_cast<size_t>(M * I));
    convert_bf16_to_f32(x32.data(), x, M * I);
    matvec_f32(y32.data(), x32.data(), W, true, M, O, I, 1.f, 0.f);
  }
  // y = alpha · dot + beta · y, in fp32; a bf16 y is widened, combined and rounded once.
  const int64_t n = M * O;
  if (!y_bf16) {
    float* yf = static_cast<float*>(y);
    for (int64_t i = 0; i < n; ++i) yf[i] = beta == 0.f ? alpha * y32[i] : alpha * y32[i] + beta * yf[i];
    return;
  }
  uint16_t* yb = static_cast<uint16_t*>(y);
  if (beta != 0.f) {
    yold.resize(static_cast<size_t>(n));
    convert_bf16_to_f32(yold.data(), yb, n);
  }
  for (int64_t i = 0; i < n; ++i) y32[i] = beta == 0.f ? alpha * y32[i] : alpha * y32[i] + beta * yold[i];
  convert_f32_to_bf16(yb, y32.data(), n);
}

}  // namespace lorafit::cpu
