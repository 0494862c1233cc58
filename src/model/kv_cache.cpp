#include "model/kv_cache.h"

#include "util/error.h"

namespace lorafit {

KvCache::KvCache(Backend& be, const ModelConfig& cfg, int64_t B, int64_t capacity, DType dtype)
    : be_(be), B_(B), S_(capacity), Hkv_(cfg.num_kv_heads), D_(cfg.head_dim), L_(cfg.num_layers), dtype_(dtype),
      row_len_(static_cast<size_t>(B), 0) {
  LF_CHECK(B > 0 && capacity > 0, "KV cache B={} capacity={}", B, capacity);
  LF_CHECK(dtype == DType::F32 || dtype == DType::BF16, "KV cache dtype {}", dtype_name(dtype));
  buf_ = static_cast<char*>(be.alloc(bytes()));
}

size_t KvCache::bytes() const {
  return static_cast<size_t>(L_) * 2 * static_cast<size_t>(B_ * S_ * Hkv_ * D_) * dtype_size(dtype_);
}

KvCache::~KvCache() { be_.free(buf_); }

void KvCache::truncate(int64_t n) {
  LF_CHECK(n >= 0 && n <= len_, "KV cache truncate to {} of {}", n, len_);
  len_ = n;
}

void KvCache::advance(int64_t n) {
  LF_CHECK(n >= 0 && len_ + n <= S_, "KV cache advance {} + {} beyond {}", len_, n, S_);
  len_ += n;
}

void KvCache::set_row_length(int64_t b, int64_t n) {
  LF_CHECK(b >= 0 && b < B_ && n >= 0 && n <= S_, "KV cache row {} of {} length {} of {}", b, B_, n, S_);
  row_len_[static_cast<size_t>(b)] = n;
}

KvLayer KvCache::layer(int i) const {
  LF_CHECK(i >= 0 && i < L_, "KV cache layer {} of {}", i, L_);
  const size_t per = static_cast<size_t>(B_ * S_ * Hkv_ * D_) * dtype_size(dtype_);  // bytes of one k or v
  char* k = buf_ + static_cast<size_t>(i) * 2 * per;
  const Device dev = be_.device();
  return {Tensor(k, dtype_, {B_, S_, Hkv_, D_}, dev), Tensor(k + per, dtype_, {B_, S_, Hkv_, D_}, dev), len_, {}};
}

}  // namespace lorafit
