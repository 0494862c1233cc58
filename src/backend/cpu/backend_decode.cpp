// CpuBackend: the KV-cache ops of generation (kernels_decode.h). Shapes and dtypes are
// checked here; a mismatch is our bug (LF_CHECK).
#include "backend/cpu/backend_bf16.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/kernels_decode.h"

namespace lorafit {

namespace {

void check_f32_4d(const Tensor& t, const char* what) {
  LF_CHECK(t.data != nullptr && t.dtype == DType::F32 && t.device == Device::CPU && t.ndim == 4,
           "{}: expected a CPU F32 (B,T,H,D) tensor, got {} {}", what, dtype_name(t.dtype), t.shape_str());
}

}  // namespace

void CpuBackend::kv_cache_write(Tensor k_cache, Tensor v_cache, Tensor k, Tensor v, int64_t p0) {
  if (cpu_bf16::any({&k_cache, &k})) return cpu_bf16::kv_cache_write(k_cache, v_cache, k, v, p0);
  check_f32_4d(k_cache, "kv_cache_write k_cache");
  check_f32_4d(v_cache, "kv_cache_write v_cache");
  check_f32_4d(k, "kv_cache_write k");
  check_f32_4d(v, "kv_cache_write v");
  const int64_t B = k.dim(0), T = k.dim(1), Hkv = k.dim(2), D = k.dim(3), S = k_cache.dim(1);
  LF_CHECK(k_cache.dim(0) == B && k_cache.dim(2) == Hkv && k_cache.dim(3) == D && v_cache.shape == k_cache.shape &&
               v.shape == k.shape,
           "kv_cache_write: cache {} {} new {} {}", k_cache.shape_str(), v_cache.shape_str(), k.shape_str(),
           v.shape_str());
  LF_CHECK(p0 >= 0 && p0 + T <= S, "kv_cache_write: positions [{}, {}) outside a cache of {}", p0, p0 + T, S);
  cpu::kv_cache_write(k_cache.as<float>(), k.as<float>(), B, T, S, Hkv, D, p0);
  cpu::kv_cache_write(v_cache.as<float>(), v.as<float>(), B, T, S, Hkv, D, p0);
}

void CpuBackend::attention_decode(Tensor out, Tensor q, Tensor k_cache, Tensor v_cache, int64_t p0) {
  if (cpu_bf16::any({&out, &q, &k_cache})) return cpu_bf16::attention_decode(out, q, k_cache, v_cache, p0);
  check_f32_4d(out, "attention_decode out");
  check_f32_4d(q, "attention_decode q");
  check_f32_4d(k_cache, "attention_decode k_cache");
  check_f32_4d(v_cache, "attention_decode v_cache");
  const int64_t B = q.dim(0), T = q.dim(1), H = q.dim(2), D = q.dim(3), S = k_cache.dim(1), Hkv = k_cache.dim(2);
  LF_CHECK(k_cache.dim(0) == B && k_cache.dim(3) == D && Hkv > 0 && H % Hkv == 0 && v_cache.shape == k_cache.shape &&
               out.shape == q.shape,
           "attention_decode: q {} cache {} out {}", q.shape_str(), k_cache.shape_str(), out.shape_str());
  LF_CHECK(p0 >= 0 && p0 + T <= S, "attention_decode: positions [{}, {}) outside a cache of {}", p0, p0 + T, S);
  cpu::attention_decode(out.as<float>(), q.as<float>(), k_cache.as<float>(), v_cache.as<float>(), B, T, S, H, Hkv, D,
                        p0);
}

}  // namespace lorafit
