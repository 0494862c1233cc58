// The key/value cache of generation: every layer's keys and values (after RoPE) of the tokens
// seen so far, so each new token runs the layers on itself alone and attends over the cache
// (docs/DESIGN.md §6: prefill the prompt, then decode). The cache is the "kv.{i}.{k,v}" buffers of
// an activation arena's table (model/activations.h: one table, one allocation, for generation's
// activations and its cache), in the run's activation dtype (BF16 for a bf16 run, as
// transformers' DynamicCache holds bf16 k/v).
//
// Letters: B batch, S capacity (positions), Hkv kv heads, D head dim, L layers.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "formats/model_config.h"
#include "model/activations.h"

namespace lorafit {

// Batched generation (src/generate/batch_generate.h): row r of the forward's batch goes to cache
// row `slot`, its new tokens to positions p0, p0+1, ... of that row. Rows have their own
// lengths, so prompts of different lengths decode together and finish independently.
struct KvRow {
  int64_t slot = 0;
  int64_t p0 = 0;  // tokens already cached in that row
};

// The cache of one layer as layer_forward sees it: the new tokens go to positions p0, p0+1, ...
// of every row, or, with `rows`, as each KvRow says.
struct KvLayer {
  Tensor k;        // (B, S, Hkv, D)
  Tensor v;        // (B, S, Hkv, D)
  int64_t p0 = 0;  // position of the first new token = tokens already cached
  std::span<const KvRow> rows;  // empty: forward row b = cache row b, all at p0
};

class KvCache {
 public:
  // The cache held by `arena` (made with ArenaSpec::kv_rows/kv_capacity); the arena outlives it.
  explicit KvCache(const ActivationArena& arena);
  // A cache with its own table: an arena of one activation row whose kv buffers are B × capacity.
  KvCache(Backend& be, const ModelConfig& cfg, int64_t B, int64_t capacity, DType dtype = DType::F32);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int64_t B() const { return B_; }
  int64_t capacity() const { return S_; }  // S
  int64_t length() const { return len_; }  // positions filled
  DType dtype() const { return dtype_; }
  size_t bytes() const;
  // Keeps the first n positions (n ≤ length()): a shared prompt prefix is reused, the rest is
  // overwritten by the next forward.
  void truncate(int64_t n);
  void reset() { truncate(0); }
  // Marks n more positions as filled (Model::forward does this after its layers ran).
  void advance(int64_t n);
  KvLayer layer(int i) const;  // p0 = length()

  // Per-row lengths (batched generation; length() is then unused): tokens cached in row b.
  int64_t row_length(int64_t b) const { return row_len_.at(static_cast<size_t>(b)); }
  void set_row_length(int64_t b, int64_t n);  // n ≤ capacity(); 0 frees the row

 private:
  void bind(const ActivationArena& arena);  // takes the views of its "kv.*" buffers
  std::unique_ptr<ActivationArena> own_;  // the table, when the cache has its own
  std::vector<Tensor> k_, v_;              // (L) views, each (B, S, Hkv, D) of dtype_
  int64_t B_ = 0, S_ = 0;
  DType dtype_ = DType::F32;
  int64_t len_ = 0;
  std::vector<int64_t> row_len_;  // (B)
};

}  // namespace lorafit
