#include "model/kv_cache.h"

#include "util/error.h"

namespace lorafit {

KvCache::KvCache(const ActivationArena& arena) { bind(arena); }

KvCache::KvCache(Backend& be, const ModelConfig& cfg, int64_t B, int64_t capacity, DType dtype) {
  LF_CHECK(B > 0 && capacity > 0, "KV cache B={} capacity={}", B, capacity);
  LF_CHECK(dtype == DType::F32 || dtype == DType::BF16, "KV cache dtype {}", dtype_name(dtype));
  ArenaSpec spec;  // one row of activations besides the cache (B·T = 1): a few KB to a few MB
  spec.act = dtype;
  spec.kv_rows = B;
  spec.kv_capacity = capacity;
  own_ = std::make_unique<ActivationArena>(be, cfg, spec);
  bind(*own_);
}

KvCache::~KvCache() = default;

void KvCache::bind(const ActivationArena& arena) {
  for (int i = 0; arena.has(fmt::format("kv.{}.k", i)); ++i) {
    k_.push_back(arena.get(fmt::format("kv.{}.k", i)));
    v_.push_back(arena.get(fmt::format("kv.{}.v", i)));
  }
  LF_CHECK(!k_.empty(), "the arena holds no KV cache (ArenaSpec::kv_capacity is 0)");
  B_ = k_[0].shape[0];
  S_ = k_[0].shape[1];
  dtype_ = k_[0].dtype;
  row_len_.assign(static_cast<size_t>(B_), 0);
}

size_t KvCache::bytes() const {
  size_t n = 0;
  for (size_t i = 0; i < k_.size(); ++i) n += k_[i].nbytes() + v_[i].nbytes();
  return n;
}

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
  LF_CHECK(i >= 0 && i < static_cast<int>(k_.size()), "KV cache layer {} of {}", i, k_.size());
  return {k_[static_cast<size_t>(i)], v_[static_cast<size_t>(i)], len_, {}};
}

}  // namespace lorafit
