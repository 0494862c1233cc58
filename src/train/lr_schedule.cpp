#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "util/error.h"

namespace lorafit {

LrSchedulerType parse_lr_scheduler_type(const std::string& name) {
  if (name == "linear") return LrSchedulerType::Linear;
  if (name == "cosine") return LrSchedulerType::Cosine;
  if (name == "constant") return LrSchedulerType::Constant;
  if (name == "constant_with_warmup") return LrSchedulerType::ConstantWithWarmup;
  throw Error("lr_scheduler_type '{}' is not supported: use linear, cosine, constant or constant_with_warmup",
              name);
}

const char* lr_scheduler_name(LrSchedulerType t) {
  switch (t) {
    case LrSchedulerType::Linear: return "linear";
    case LrSchedulerType::Cosine: return "cosine";
    case LrSchedulerType::Constant: return "constant";
    case LrSchedulerType::ConstantWithWarmup: return "constant_with_warmup";
  }
  return "?";
}

LrSchedule::LrSchedule(LrSchedulerType type, double base_lr, int64_t total_steps, int64_t warmup_steps,
                       double warmup_ratio)
    : type_(type), base_lr_(base_lr), total_(total_steps) {
  if (total_steps < 1) throw Error("the schedule needs at least 1 optimizer step, got {}", total_steps);
  if (warmup_steps < 0) throw Error("warmup_steps = {}: expected 0 or more", warmup_steps);
  if (!(warmup_ratio >= 0.0 && warmup_ratio <= 1.0))
    throw Error("warmup_ratio = {}: expected a fraction in [0, 1]", warmup_ratio);
  warmup_ = warmup_steps > 0 ? warmup_steps
                             : static_cast<int64_t>(std::ceil(static_cast<double>(total_steps) * warmup_ratio));
}

// The lr_lambda functions of transformers/optimization.py, in the same floating-point order.
double LrSchedule::factor(int64_t k) const {
  const double W = static_cast<double>(warmup_), N = static_cast<double>(total_), kd = static_cast<double>(k);
  if (type_ == LrSchedulerType::Constant) return 1.0;
  if (k < warmup_) return kd / std::max(1.0, W);
  switch (type_) {
    case LrSchedulerType::Linear: return std::max(0.0, (N - kd) / std::max(1.0, N - W));
    case LrSchedulerType::Cosine: {
      const double progress = (kd - W) / std::max(1.0, N - W);
      return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * 0.5 * 2.0 * progress)));
    }
    default: return 1.0;
  }
}

}  // namespace lorafit
