// Batched generation: up to `slots` sequences decode together, one token per row per step,
// through one forward of B = active rows (the weights are read once for all of them) and one
// KV cache whose rows keep their own positions and lengths (model/kv_cache.h KvRow). A row
// that stops (eos, its max_new_tokens, its end of context) frees its slot at once and the
// next queued prompt is prefilled into it, so short answers never wait for long ones.
// Greedy output equals Generator's one-at-a-time output (tests/unit/test_generate_batch.cpp).
//
// This is the engine of `lorafit eval` and of a server: submit() requests with their own
// settings and adapter, call step() until idle(); on_token streams each id as it is chosen.
// Rows of different adapters (or none) decode in the same step: the batch is ordered by
// adapter and each adapter's rows get its LoRA branch at the one LoRA seam (lora/lora_mix.h),
// while the base weights are read once for all rows.
//
// Letters: B active rows (≤ slots), S cache capacity (positions), V vocab, C hidden.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "generate/generate.h"
#include "lora/lora_mix.h"

namespace lorafit {

class BatchGenerator {
 public:
  // `slots` rows of `capacity` positions each (prompt + generated, ≤ context_length()).
  // `lora` (may be null) is the adapter of requests submitted without one; adapters must
  // outlive the generator.
  // `prefill_chunk`: the most prompt tokens run at once (Generator::kPrefillChunk).
  BatchGenerator(const Model& model, int64_t slots, int64_t capacity, const LoraParams* lora = nullptr,
                 int64_t prefill_chunk = Generator::kPrefillChunk);
  ~BatchGenerator();

  int64_t slots() const { return cache_.B(); }
  int64_t capacity() const { return cache_.capacity(); }

  // Queues a request (`id` is the caller's). Throws Error as Generator::generate does for an
  // empty prompt, ids outside the vocabulary, a prompt that leaves no room for one new token,
  // or max_new_tokens < 1.
  void submit(int64_t id, std::vector<int32_t> prompt, const GenerateSettings& settings);
  // The same, decoded with `lora` (null: the base model).
  void submit(int64_t id, std::vector<int32_t> prompt, const GenerateSettings& settings, const LoraParams* lora);
  // Stops request `id` (a client gone): a queued one leaves the queue unprefilled, a running
  // one frees its slot before the next forward; either is reported by the next step() as
  // finished with StopReason::Interrupted. False when `id` is neither queued nor running.
  bool cancel(int64_t id);
  bool idle() const { return queue_.empty() && active_.empty(); }
  const ActivationArena& arena() const { return *arena_; }  // activations and KV cache: one table

  struct Finished {
    int64_t id;
    GenerateResult result;
  };
  // on_token(id, token, logprobs) is called for each chosen token (logprobs: null unless the
  // request's settings.logprobs ≥ 0); returning false stops that request (StopReason::Interrupted).
  using TokenFn = std::function<bool(int64_t, int32_t, const TokenLogprobs*)>;
  // Fills free slots from the queue (prefill, first token), then decodes one token for every
  // active row. Returns the requests that finished in this step.
  std::vector<Finished> step(const TokenFn& on_token = {});

  // Convenience: every prompt with the same settings, results in prompt order. on_done(i)
  // is called as prompt i finishes (progress bars).
  std::vector<GenerateResult> generate_all(const std::vector<std::vector<int32_t>>& prompts,
                                           const GenerateSettings& settings,
                                           const std::function<void(size_t)>& on_done = {});

 private:
  struct Row {
    int64_t id = 0;
    int64_t slot = 0;
    GenerateSettings settings;
    const LoraParams* lora = nullptr;
    bool cancelled = false;
    std::unique_ptr<Sampler> sampler;
    std::vector<int32_t> context;  // prompt + generated (repetition penalty)
    GenerateResult result;
    int32_t next = 0;  // the token chosen last, fed in the next step
  };
  struct Pending {
    int64_t id;
    std::vector<int32_t> prompt;
    GenerateSettings settings;
    const LoraParams* lora = nullptr;
    bool cancelled = false;
  };

  void prefill(Pending p, int64_t slot, const TokenFn& on_token, std::vector<Finished>& done);
  // Chooses the row's next token from its raw logits (modified) and records it; true when the
  // row stops (its result is then complete).
  bool choose(Row& row, std::span<float> logits, const TokenFn& on_token);
  // The arena viewed as (B, 1) for a decode step of B rows.
  ActivationArena& step_arena(int64_t B);
  void drop_cancelled(std::vector<Finished>& done);

  const Model& model_;
  const LoraParams* lora_;
  // One table, one allocation: activations of max(slots, prefill chunk) rows — (B, 1) views for
  // decode steps, (1, T) for prompt chunks — and the KV cache (slots, capacity) of every layer.
  std::unique_ptr<ActivationArena> arena_;
  KvCache cache_;  // views into arena_
  std::deque<Pending> queue_;
  std::vector<Row> active_;
  std::vector<int64_t> free_slots_;
  LoraMix mix_;  // the step's rows grouped by adapter
};

}  // namespace lorafit
