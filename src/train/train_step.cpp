#include "train/train_step.h"

#include <cmath>

#include "train/nonfinite.h"
#include "util/error.h"
#include "util/file.h"
#include "util/rng.h"

namespace lorafit {

namespace {

void check_batch(const MicroBatch& mb, size_t index) {
  if (mb.B <= 0 || mb.T <= 0 || static_cast<int64_t>(mb.ids.size()) != mb.B * mb.T ||
      mb.labels.size() != mb.ids.size())
    throw Error("micro-batch {}: expected ids and labels of B·T = {}·{} = {} entries, got {} ids and {} labels",
                index, mb.B, mb.T, mb.B * mb.T, mb.ids.size(), mb.labels.size());
  if (mb.pos.size() != mb.seg.size() || (!mb.seg.empty() && mb.seg.size() != mb.ids.size()))
    throw Error("micro-batch {}: a packed batch needs pos and seg of B·T = {} entries each, got {} pos and {} seg",
                index, mb.B * mb.T, mb.pos.size(), mb.seg.size());
}

}  // namespace

int64_t count_labels(const MicroBatch& mb) {
  int64_t n = 0;
  for (int32_t l : mb.labels) n += l != -100;
  return n;
}

void check_finite_grads(const LoraParams& lora, Backend& be, const std::string& where) {
  for (const LoraTensor& t : lora.tensors()) {
    const double ss = be.sum_squares(lora.view(lora.grads(), t));
    if (!std::isfinite(ss))
      throw Error("{}: the gradient of {} contains NaN or Inf (first non-finite tensor in table order); "
                  "lower learning_rate, check the data, or train in fp32",
                  where, t.key);
  }
}

LoraTrainer::LoraTrainer(const Model& m, LoraParams& lora, const TrainConfig& cfg, const LrSchedule& schedule)
    : m_(m), lora_(lora), cfg_(cfg), schedule_(schedule),
      passes_(std::make_unique<ModelBackward>(m, lora, cfg.gradient_checkpointing)) {
  lora_.zero_grads();
  lora_.zero_optimizer_state();
}

double LoraTrainer::accumulate(const MicroBatch& mb, double loss_scale, uint64_t seed, int64_t* predicted) {
  const std::vector<int32_t> targets = shift_labels(mb.labels, mb.B, mb.T, mb.seg);
  const std::vector<float> loss =
      passes_->forward(mb.B, mb.T, mb.ids, mb.pos, mb.seg, targets, /*training=*/true, seed);
  double sum = 0;  // Σ token CE, in double
  int64_t n = 0;
  for (size_t i = 0; i < loss.size(); ++i)
    if (targets[i] != -100) {
      sum += loss[i];
      ++n;
    }
  if (predicted) *predicted = n;
  if (std::isfinite(sum)) passes_->backward(static_cast<float>(loss_scale));
  return sum;
}

void LoraTrainer::fail_non_finite(int64_t k, size_t i, const MicroBatch& mb, uint64_t seed, const std::string& what) {
  check_mapped_files();  // zeros from a truncated file are finite, but say so first if it happened
  std::string why =
      diagnose_non_finite(m_, lora_, *passes_, mb, shift_labels(mb.labels, mb.B, mb.T, mb.seg), seed, updates_);
  if (why.empty())
    why = "every input and every forward activation is finite, so the backward pass overflowed: training diverged; "
          "lower learning_rate, check the data, or train in fp32";
  throw Error("step {}, micro-batch {}: {}; {}", k, i, what, why);
}

StepStats LoraTrainer::step(const std::vector<MicroBatch>& window) {
  Backend& be = m_.backend();
  StepStats st;
  const int64_t k = step_ + 1;  // the step being taken (1-based)
  for (size_t i = 0; i < window.size(); ++i) {
    check_batch(window[i], i);
    st.num_items += count_labels(window[i]);
  }
  lora_.zero_grads();
  st.micro_loss.assign(window.size(), 0.0);
  for (size_t i = 0; i < window.size(); ++i) {
    if (count_labels(window[i]) == 0) {  // nothing to learn from: skip, never divide by 0
      ++st.skipped_micro_batches;
      continue;
    }
    const uint64_t seed = splitmix64(cfg_.seed ^ splitmix64(static_cast<uint64_t>(k) * 0x10000u + i));
    int64_t pred = 0;
    const double ce = accumulate(window[i], 1.0 / static_cast<double>(st.num_items), seed, &pred);
    if (!std::isfinite(ce))
      fail_non_finite(k, i, window[i], seed, fmt::format("the loss is {}", std::isnan(ce) ? "NaN" : (ce > 0 ? "+Inf" : "-Inf")));
    for (const LoraTensor& t : lora_.tensors())
      if (!std::isfinite(be.sum_squares(lora_.view(lora_.grads(), t))))
        fail_non_finite(k, i, window[i], seed, fmt::format("the gradient of {} contains NaN or Inf", t.key));
    st.loss += ce / static_cast<double>(st.num_items);
    st.micro_loss[i] = pred ? ce / static_cast<double>(pred) : 0.0;
    st.predicted_tokens += pred;
  }
  if (st.num_items == 0) {  // the whole window was masked: no gradient, no optimizer step
    st.step = step_;
    return st;
  }

  // Global L2 norm over every trainable gradient (clip_grad_norm_), logged before clipping.
  const Tensor g = lora_.grads();
  st.grad_norm = std::sqrt(be.sum_squares(g));
  if (cfg_.max_grad_norm > 0) {
    const double coef = cfg_.max_grad_norm / (st.grad_norm + 1e-6);
    if (coef < 1.0) be.scale(g, static_cast<float>(coef));
  }
  AdamWParams hp;
  hp.lr = schedule_.lr_for_step(k);
  hp.beta1 = cfg_.beta1;
  hp.beta2 = cfg_.beta2;
  hp.eps = cfg_.adam_eps;
  hp.weight_decay = cfg_.weight_decay;  // no LoRA tensor is a bias: all decay
  hp.step = k;
  // A model file truncated or rewritten during this step read as zeros (file.cpp's SIGBUS
  // guard): stop before the update and before any checkpoint is written from it.
  check_mapped_files();
  be.adamw(lora_.params(), g, lora_.adam_m(), lora_.adam_v(), hp);
  ++updates_;
  step_ = k;
  st.step = k;
  st.updated = true;
  st.lr_applied = hp.lr;
  st.learning_rate = schedule_.logged_lr(k);
  return st;
}

}  // namespace lorafit
