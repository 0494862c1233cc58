// Learning-rate schedules as transformers 4.46 builds them (optimization.py), stepping as the
// Trainer does (docs/SPEC.md "Trainer"): optimizer step k (1-based) uses lr·factor(k − 1); the
// learning_rate logged after step k is lr·factor(k).
#pragma once
#include <cstdint>
#include <string>

namespace lorafit {

enum class LrSchedulerType {
  Linear,              // warmup, then linear decay to 0 at total_steps
  Cosine,              // warmup, then half a cosine to 0 at total_steps
  Constant,            // transformers' "constant": factor 1, warmup ignored (as HF does)
  ConstantWithWarmup,  // warmup, then 1
};

// "linear", "cosine", "constant", "constant_with_warmup"; Error listing them otherwise.
LrSchedulerType parse_lr_scheduler_type(const std::string& name);
const char* lr_scheduler_name(LrSchedulerType t);

class LrSchedule {
 public:
  // warmup_steps > 0 wins; otherwise warmup = ceil(total_steps · warmup_ratio) (Trainer's
  // get_warmup_steps). Throws Error for total_steps < 1, negative warmup, ratio outside [0, 1].
  LrSchedule(LrSchedulerType type, double base_lr, int64_t total_steps, int64_t warmup_steps = 0,
             double warmup_ratio = 0.0);

  double factor(int64_t k) const;  // the LambdaLR multiplier after k scheduler steps
  double lr_for_step(int64_t step) const { return base_lr_ * factor(step - 1); }  // applied at step (1-based)
  double logged_lr(int64_t step) const { return base_lr_ * factor(step); }       // logged after step
  int64_t warmup_steps() const { return warmup_; }
  int64_t total_steps() const { return total_; }
  LrSchedulerType type() const { return type_; }

 private:
  LrSchedulerType type_;
  double base_lr_;
  int64_t total_, warmup_;
};

}  // namespace lorafit
