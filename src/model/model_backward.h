// LoRA training passes over one micro-batch: the forward (keeping what the backward needs),
// the fused chunked lm-head + cross-entropy, and the backward that mirrors layer_forward
// op by op, accumulating (+=) into the LoRA gradient section. The base model is frozen:
// only activation gradients flow through embeddings, norms and base linears.
//
// Gradient checkpointing on: the arena keeps each layer's input (residual.i) and one layer
// set; the backward recomputes layer i with layer_forward (same dropout seeds) just before
// differentiating it. Off: every layer's activations are kept. Both give bitwise-identical
// gradients on the CPU because the recomputation runs the same deterministic ops.
//
// Letters: B batch, T time, N = B·T, C hidden, H heads, Hkv kv heads, D head dim, F ffn, r rank.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "lora/lora_params.h"
#include "model/activations.h"
#include "model/model.h"

namespace lorafit {

class ModelBackward {
 public:
  // `lora` must outlive this object. The arena (activations and gradients, one buffer table)
  // is allocated once, for the longest batch: reserve() it up front (the trainer does, from
  // the memory plan) and every micro-batch takes (B, T) views; a longer batch than reserved
  // reallocates once (counted by allocations()).
  ModelBackward(const Model& m, const LoraParams& lora, bool checkpointing);
  ~ModelBackward();
  ModelBackward(const ModelBackward&) = delete;
  ModelBackward& operator=(const ModelBackward&) = delete;

  bool checkpointing() const { return checkpointing_; }
  // Sizes the arena for batches of up to B·T rows.
  void reserve(int64_t B, int64_t T);
  int allocations() const { return allocations_; }

  // Forward of ids (B·T row-major, right-padded) through all layers, then the per-row CE of
  // `targets` (N, the labels already shifted: row (b, t) predicts targets[b·T + t], −100 =
  // ignored). With training, LoRA dropout (if configured) draws its masks from `seed`.
  // Returns the per-row losses (N) (0 for ignored rows).
  std::vector<float> forward(int64_t B, int64_t T, const std::vector<int32_t>& ids,
                             const std::vector<int32_t>& targets, bool training, uint64_t seed);
  // The same for packed rows: pos (B·T) per-token positions (restarting at 0 in each sample)
  // and seg (B·T) the sample index within its row; attention stays inside each seg value.
  // Both empty = unpacked (positions 0..T−1, no segment mask), exactly the overload above.
  std::vector<float> forward(int64_t B, int64_t T, const std::vector<int32_t>& ids, const std::vector<int32_t>& pos,
                             const std::vector<int32_t>& seg, const std::vector<int32_t>& targets, bool training,
                             uint64_t seed);

  // Backward of Σ_n loss_scale·loss_n for the batch of the last forward (same `training`
  // and seed): LoRA gradients accumulate into lora.grads().
  void backward(float loss_scale);

  // The arena of the last forward (for dumps and tests).
  const ActivationArena& activations() const { return *acts_; }
  // Bytes of activation + gradient scratch held (at capacity).
  size_t bytes() const;

 private:
  void ensure_shape(int64_t B, int64_t T);
  Tensor seg_mask() const { return packed_ ? acts_->seg() : Tensor(); }  // (B,T) I32 or empty
  void layer_backward(int i, Tensor dx, Tensor dy, const LayerActs& a, const GradBufs& g);

  const Model& m_;
  const LoraParams& lora_;
  bool checkpointing_;
  bool dropout_ = false;  // LoRA dropout configured (arena holds xdrop buffers)
  std::unique_ptr<ActivationArena> acts_;  // activations + gradients, sized once
  int allocations_ = 0;
  int64_t B_ = 0, T_ = 0;
  bool training_ = false;
  uint64_t seed_ = 0;
  bool have_forward_ = false;
  bool packed_ = false;  // the last forward had seg: attention masks by acts_->seg()
  std::vector<int32_t> host_targets_;  // (N) of the last forward
};

// The shifted targets of a right-padded batch: targets[b·T + t] = labels[b·T + t + 1] for
// t < T − 1, −100 at t = T − 1 (as transformers' ForCausalLMLoss shifts labels).
// With seg (B·T, packed rows) also −100 where seg changes between t and t + 1: the last token
// of one sample never predicts the first token of the next.
std::vector<int32_t> shift_labels(const std::vector<int32_t>& labels, int64_t B, int64_t T,
                                  const std::vector<int32_t>& seg = {});

}  // namespace lorafit
