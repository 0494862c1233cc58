// The generation loop (docs/DESIGN.md §2): prefill the prompt through the model into a KV cache,
// then decode one token at a time, choosing each with the Sampler, until an eos id, the
// token limit, the end of the context, or the caller says stop.
//
// Letters: V vocab, S cache capacity (positions), T tokens fed at once.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "generate/sampler.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace lorafit {

struct GenerateSettings {
  int max_new_tokens = 256;
  std::vector<int32_t> eos_ids;  // stop after generating any of these (it is part of the output)
  SamplingParams sampling;       // greedy by default
  uint64_t seed = 0;
  int logprobs = -1;  // ≥ 0 (BatchGenerator): record each token's TokenLogprobs with this many alternatives
};

enum class StopReason { Eos, MaxNewTokens, ContextFull, Interrupted };
const char* stop_reason_name(StopReason r);  // "eos", "max_new_tokens", "context_full", "interrupted"

struct GenerateResult {
  std::vector<int32_t> ids;  // the generated ids only; ends with the eos id when stop == Eos
  StopReason stop = StopReason::MaxNewTokens;
  int64_t prompt_tokens = 0;  // fed this call (a prefix shared with the last call is reused)
  double prefill_s = 0;       // prompt forward + first token choice (time to first token)
  double decode_s = 0;        // every later token
  std::vector<TokenLogprobs> logprobs;  // one per id when settings.logprobs ≥ 0 (BatchGenerator)
};

// The positions the model computes as transformers does: max_position_embeddings, and the
// sliding window when one is in effect.
int64_t context_length(const ModelConfig& cfg);

class Generator {
 public:
  // Prompt tokens run through the model at once: longer prompts are fed in chunks of this many
  // (llama.cpp's default n_ubatch), so the arena has a fixed size whatever the prompt.
  static constexpr int64_t kPrefillChunk = 512;

  // `capacity` positions of KV cache (prompt + generated), ≤ context_length(). `lora`
  // (may be null) adapts the model unmerged; it must outlive the generator.
  // `prefill_chunk`: the most prompt tokens run at once (the arena's rows; kPrefillChunk).
  Generator(const Model& model, int64_t capacity, const LoraParams* lora = nullptr,
            int64_t prefill_chunk = kPrefillChunk);
  ~Generator();

  const Model& model() const { return model_; }
  int64_t capacity() const { return cache_->capacity(); }
  // Switches the adapter (null: base model); the cache is cleared.
  void set_lora(const LoraParams* lora);

  // Generates after `prompt`. on_token(id) is called for each generated id as soon as it is
  // chosen; returning false stops (StopReason::Interrupted, the id is kept). Throws Error when
  // the prompt is empty, has ids outside the vocabulary or does not fit the cache.
  GenerateResult generate(std::span<const int32_t> prompt, const GenerateSettings& settings,
                          const std::function<bool(int32_t)>& on_token = {});

  // Runs `ids` after the cached tokens (positions cached()..) and returns the logits, row-major:
  // (T, V) of every fed position when all_rows, else (1, V) of the last. Exposed for tests of
  // the cache against the full forward.
  std::vector<float> feed(std::span<const int32_t> ids, bool all_rows = false);
  int64_t cached() const { return cache_->length(); }
  void reset() { cache_->reset(); history_.clear(); }
  const ActivationArena& arena() const { return *arena_; }

 private:
  // Sizes the arena (and the cache in its table) for the adapter's LoRA buffers.
  void build_arena();
  // Appends the logits of the arena's rows [n - R, n) to `out` (R·V floats).
  void append_logits(std::vector<float>& out, int64_t n, int64_t R);

  const Model& model_;
  const LoraParams* lora_;
  int64_t capacity_;
  int64_t prefill_chunk_;
  // One table, one allocation: activations of up to kPrefillChunk rows, viewed as (1, T) for a
  // prompt chunk and (1, 1) for a decode step, and the KV cache (1, capacity) of every layer.
  std::unique_ptr<ActivationArena> arena_;
  std::unique_ptr<KvCache> cache_;  // views into arena_
  std::vector<int32_t> history_;    // ids whose keys/values are in the cache
  void* logits_row_ = nullptr;      // (1, V) F32 on the backend
};

}  // namespace lorafit
