// The key/value cache of generation: every layer's keys and values (after RoPE) of the tokens
// seen so far, so each new token runs the layers on itself alone and attends over the cache
// (docs/DESIGN.md §6: prefill the prompt, then decode). One allocation on the backend.
//
// Letters: B batch, S capacity (positions), Hkv kv heads, D head dim, L layers.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "formats/model_config.h"

namespace lorafit {

// The cache of one layer as layer_forward sees it: the new tokens go to positions p0, p0+1, ...
struct KvLayer {
  Tensor k;        // (B, S, Hkv, D)
  Tensor v;        // (B, S, Hkv, D)
  int64_t p0 = 0;  // position of the first new token = tokens already cached
};

class KvCache {
 public:
  KvCache(Backend& be, const ModelConfig& cfg, int64_t B, int64_t capacity);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int64_t B() const { return B_; }
  int64_t capacity() const { return S_; }  // S
  int64_t length() const { return len_; }  // positions filled
  // Keeps the first n positions (n ≤ length()): a shared prompt prefix is reused, the rest is
  // overwritten by the next forward.
  void truncate(int64_t n);
  void reset() { truncate(0); }
  // Marks n more positions as filled (Model::forward does this after its layers ran).
  void advance(int64_t n);
  KvLayer layer(int i) const;  // p0 = length()

 private:
  Backend& be_;
  int64_t B_, S_, Hkv_, D_;
  int L_;
  int64_t len_ = 0;
  float* buf_ = nullptr;  // (L, 2, B, S, Hkv, D)
};

}  // namespace lorafit
