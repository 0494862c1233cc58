// gemm() on oneDNN's matmul primitive (brgemm kernels for AVX2 / AVX-512 / AVX512-BF16 / AMX),
// one primitive per shape, cached. Not dnnl_sgemm: its result for a row depends on how many
// rows the call has (M blocking), and the model relies on a row's result depending only on
// that row (a packed sample equals the sample alone: test_train_packing); the matmul
// primitive keeps that property. Where oneDNN has no bf16 matmul for this CPU the bf16
// operands are widened to fp32 (exact) and multiplied in fp32: the same products and fp32
// accumulation, only slower. K = 0 (C = beta·C) goes to dnnl_sgemm.
#include "backend/cpu/gemm.h"

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/simd.h"
#include "util/error.h"

namespace lorafit::cpu {

namespace {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

using Key = std::tuple<uint8_t, uint8_t, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, uint32_t,
                       uint32_t>;

// A matmul primitive for one shape/stride/scale combination; `ok` false when oneDNN has none.
struct Matmul {
  bool ok = false;
  dnnl::matmul prim;
  dnnl::memory::desc a, b, c, scratch;
  std::string impl;  // oneDNN's name of the kernel, e.g. "brg:avx512_core_bf16"
};

std::shared_ptr<const Matmul> make_matmul(DType ab, DType c, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                                          float alpha, int64_t lda, int64_t ldb, float beta, int64_t ldc) {
  using md = dnnl::memory::desc;
  using dims = dnnl::memory::dims;
  using dt = dnnl::memory::data_type;
  auto m = std::make_shared<Matmul>();
  const dt tab = ab == DType::BF16 ? dt::bf16 : dt::f32, tc = c == DType::BF16 ? dt::bf16 : dt::f32;
  m->a = md({M, K}, tab, ta ? dims{1, lda} : dims{lda, 1});
  m->b = md({K, N}, tab, tb ? dims{1, ldb} : dims{ldb, 1});
  m->c = md({M, N}, tc, dims{ldc, 1});
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per-thread scratch: concurrent calls are safe
  if (alpha != 1.f) attr.set_output_scales(0, {alpha});
  if (beta != 0.f) {
    dnnl::post_ops po;
    po.append_sum(beta);
    attr.set_post_ops(po);
  }
  try {
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(m->a, m->b, m->c), attr, engine());
    m->prim = dnnl::matmul(pd);
    m->scratch = pd.scratchpad_desc();
    m->impl = pd.impl_info_str();
    m->ok = true;
  } catch (const dnnl::error&) {
    m->ok = false;  // no bf16 matmul on this CPU: the caller widens to fp32
  }
  return m;
}

// Primitives by shape. Training sees a few dozen shapes per padded length; the cache is
// emptied when it reaches kMaxPrimitives so a long run with many lengths stays bounded.
constexpr size_t kMaxPrimitives = 2048;

std::shared_ptr<const Matmul> cached_matmul(DType ab, DType c, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                                            float alpha, int64_t lda, int64_t ldb, float beta, int64_t ldc) {
  static std::mutex mu;
  static std::map<Key, std::shared_ptr<const Matmul>> cache;
  const Key key{static_cast<uint8_t>(ab), static_cast<uint8_t>(c), ta, tb, M, N, K, lda, ldb, ldc,
                float_bits(alpha), float_bits(beta)};
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
  }
  auto m = make_matmul(ab, c, ta, tb, M, N, K, alpha, lda, ldb, beta, ldc);  // outside the lock: JIT takes ms
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() >= kMaxPrimitives) cache.clear();
  cache.emplace(key, m);
  return m;
}

void sgemm_dnnl(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const dnnl_status_t st =
      dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  LF_CHECK(st == dnnl_success, "dnnl_sgemm failed (status {}) for M={} N={} K={}", static_cast<int>(st), M, N, K);
}

// (rows, cols) bf16 at leading dimension ld → dense fp32 (rows, cols).
void widen(std::vector<float>& dst, const void* src, int64_t rows, int64_t cols, int64_t ld) {
  dst.resize(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    convert_bf16_to_f32(dst.data() + r * cols, static_cast<const uint16_t*>(src) + r * ld, cols);
}

// The fallback of a bf16 GEMM: operands widened (exactly), fp32 GEMM, C rounded once.
void gemm_bf16_widened(DType c, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void* A,
                       int64_t lda, const void* B, int64_t ldb, float beta, void* C, int64_t ldc) {
  thread_local std::vector<float> a32, b32, c32;
  widen(a32, A, ta ? K : M, ta ? M : K, lda);
  widen(b32, B, tb ? N : K, tb ? K : N, ldb);
  if (c == DType::F32) {
    sgemm_dnnl(ta, tb, M, N, K, alpha, a32.data(), ta ? M : K, b32.data(), tb ? K : N, beta,
               static_cast<float*>(C), ldc);
    return;
  }
  c32.assign(static_cast<size_t>(M * N), 0.f);
  if (beta != 0.f) widen(c32, C, M, N, ldc);
  sgemm_dnnl(ta, tb, M, N, K, alpha, a32.data(), ta ? M : K, b32.data(), tb ? K : N, beta, c32.data(), N);
  for (int64_t m = 0; m < M; ++m) convert_f32_to_bf16(static_cast<uint16_t*>(C) + m * ldc, c32.data() + m * N, N);
}

}  // namespace

void gemm(DType ab, DType c, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void* A,
          int64_t lda, const void* B, int64_t ldb, float beta, void* C, int64_t ldc) {
  LF_CHECK((ab == DType::F32 || ab == DType::BF16) && (c == DType::F32 || c == DType::BF16),
           "gemm: operands {} and result {} (want F32 or BF16)", dtype_name(ab), dtype_name(c));
  LF_CHECK(ab == DType::BF16 || c == DType::F32, "gemm: F32 operands with a BF16 result are not supported");
  LF_CHECK(M >= 0 && N >= 0 && K >= 0, "gemm: negative dimension M={} N={} K={}", M, N, K);
  if (M == 0 || N == 0) return;
  const bool f32 = ab == DType::F32;
  const auto m = K == 0 ? nullptr : cached_matmul(ab, c, ta, tb, M, N, K, alpha, lda, ldb, beta, ldc);
  if (!m || !m->ok) {  // C = beta·C (K = 0), or no oneDNN matmul for these types on this CPU
    if (f32)
      sgemm_dnnl(ta, tb, M, N, K, alpha, static_cast<const float*>(A), lda, static_cast<const float*>(B), ldb, beta,
                 static_cast<float*>(C), ldc);
    else
      gemm_bf16_widened(c, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  thread_local dnnl::stream stream(engine());
  thread_local std::vector<char> scratch;
  scratch.resize(std::max<size_t>(m->scratch.get_size(), 1));
  dnnl::engine& e = engine();
  dnnl::memory ma(m->a, e, const_cast<void*>(A)), mb(m->b, e, const_cast<void*>(B)), mc(m->c, e, C),
      ms(m->scratch, e, scratch.data());
  m->prim.execute(stream, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}, {DNNL_ARG_SCRATCHPAD, ms}});
  stream.wait();
}

std::string gemm_kernel_info() {
  const dnnl_version_t* v = dnnl_version();
  std::string isa;
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: isa = "sse41"; break;
    case dnnl_cpu_isa_avx: isa = "avx"; break;
    case dnnl_cpu_isa_avx2: isa = "avx2"; break;
    case dnnl_cpu_isa_avx2_vnni: isa = "avx2_vnni"; break;
    case dnnl_cpu_isa_avx512_core: isa = "avx512_core"; break;
    case dnnl_cpu_isa_avx512_core_vnni: isa = "avx512_core_vnni"; break;
    case dnnl_cpu_isa_avx512_core_bf16: isa = "avx512_core_bf16"; break;
    case dnnl_cpu_isa_avx512_core_amx: isa = "avx512_core_amx"; break;
    default: isa = "other"; break;
  }
  // The implementation oneDNN picks for a representative bf16 linear (768 × 896 × 896).
  const auto m = make_matmul(DType::BF16, DType::F32, false, true, 768, 896, 896, 1.f, 896, 896, 0.f, 896);
  std::string bf16 = "widened to fp32 (no oneDNN bf16 matmul on this CPU)";
  if (m->ok) bf16 = m->impl;
  const auto m32 = make_matmul(DType::F32, DType::F32, false, true, 768, 896, 896, 1.f, 896, 896, 0.f, 896);
  return fmt::format("oneDNN {}.{}.{} (max ISA {}): f32 {}, bf16 {}", v->major, v->minor, v->patch, isa,
                     m32->ok ? m32->impl : "dnnl_sgemm", bf16);
}

}  // namespace lorafit::cpu
