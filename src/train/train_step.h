// One optimizer step of LoRA training over a gradient-accumulation window of micro-batches,
// with transformers 4.46 Trainer semantics (docs/SPEC.md "Trainer"):
//   N = labels ≠ −100 over the whole window (unshifted labels, as get_batch_samples counts);
//   each micro-batch adds Σ token CE / N to the loss and its gradient to the LoRA grads;
//   global L2 norm of the grads (logged pre-clip), clip to max_grad_norm, AdamW, schedule.
// A micro-batch without any label is skipped and counted; a window without any is no step.
// NaN/Inf in a loss or a gradient stops with an Error naming step, micro-batch, the first
// bad tensor and whether it was a damaged input or divergence (nonfinite.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lora/lora_params.h"
#include "model/model.h"
#include "model/model_backward.h"
#include "train/lr_schedule.h"

namespace lorafit {

struct TrainConfig {
  double learning_rate = 1e-4;
  double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
  double weight_decay = 0.0;  // decoupled; applied to every LoRA matrix (LoRA has no biases)
  double max_grad_norm = 1.0;  // ≤ 0: no clipping (the norm is still reported)
  bool gradient_checkpointing = true;
  uint64_t seed = 42;  // LoRA dropout masks derive from (seed, step, micro-batch)
};

// One right-padded micro-batch: ids and labels (B, T) row-major; labels −100 = not trained.
// Packed rows (several samples per row) also carry pos and seg; both empty = one sample per row.
struct MicroBatch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> ids;
  std::vector<int32_t> labels;  // unshifted, as the collator produces them
  std::vector<int32_t> pos;     // (B, T) position of each token within its sample (from 0), or empty
  std::vector<int32_t> seg;     // (B, T) sample index within the row (padding: its own), or empty
};

struct StepStats {
  int64_t step = 0;            // optimizer steps done after this one (1-based count)
  bool updated = false;        // false when the window held no label at all
  double loss = 0;             // Σ_micro Σ token CE / num_items (Trainer's step loss)
  double grad_norm = 0;        // global L2 norm before clipping
  double lr_applied = 0;       // the learning rate this step used
  double learning_rate = 0;    // the learning rate logged after this step (scheduler stepped)
  int64_t num_items = 0;       // N: labels ≠ −100 in the window (unshifted)
  int64_t predicted_tokens = 0;  // targets actually predicted (shifted labels ≠ −100)
  int skipped_micro_batches = 0;
  std::vector<double> micro_loss;  // mean CE per predicted token of each micro-batch (0 if none)
};

class LoraTrainer {
 public:
  // lora's params must be initialised (lora_init_peft or an adapter); its grads and Adam
  // state are reset here. `schedule` decides the learning rate of every step.
  LoraTrainer(const Model& m, LoraParams& lora, const TrainConfig& cfg, const LrSchedule& schedule);

  // One optimizer step over `window` (its size is the accumulation). Throws Error for bad
  // batches (shape mismatch, ids outside the vocabulary) and non-finite loss or gradients.
  StepStats step(const std::vector<MicroBatch>& window);

  int64_t steps_done() const { return step_; }
  void set_steps_done(int64_t k) { step_ = k; }  // resume
  ModelBackward& passes() { return *passes_; }

  // Loss and gradients of one micro-batch only, scaled by `loss_scale` (the building block of
  // step(); also what gradient tests call). Returns Σ token CE (unscaled) and sets
  // *predicted to the number of predicted tokens. Gradients accumulate.
  double accumulate(const MicroBatch& mb, double loss_scale, uint64_t seed, int64_t* predicted);

 private:
  const Model& m_;
  LoraParams& lora_;
  TrainConfig cfg_;
  LrSchedule schedule_;
  std::unique_ptr<ModelBackward> passes_;
  int64_t step_ = 0;
  int64_t updates_ = 0;  // optimizer steps applied by this object (0: LoRA/Adam state as loaded)

  // Throws Error "step k, micro-batch i: <what>; <where the first NaN/Inf came from>"
  // (nonfinite.h: a bad input named, or divergence located by re-running `mb`).
  [[noreturn]] void fail_non_finite(int64_t k, size_t i, const MicroBatch& mb, uint64_t seed, const std::string& what);
};

// Throws Error naming the first LoRA gradient tensor (table order) with a NaN or Inf, with
// `where` ("step 3, micro-batch 2") in the message. Cheap: one sum of squares per tensor.
void check_finite_grads(const LoraParams& lora, Backend& be, const std::string& where);

// Labels ≠ −100 in a micro-batch (what the Trainer counts into num_items_in_batch).
int64_t count_labels(const MicroBatch& mb);

}  // namespace lorafit
