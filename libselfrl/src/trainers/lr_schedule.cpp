// Learning-rate schedules (see selfrl/trainers/lr_schedule.h).
#include "selfrl/trainers/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "selfrl/core/error.h"

namespace selfrl::trainers {

LrSchedulerType parse_lr_scheduler_type(const std::string& name) {
  if (name == "constant") return LrSchedulerType::kConstant;
  if (name == "constant_with_warmup") return LrSchedulerType::kConstantWithWarmup;
  if (name == "linear") return LrSchedulerType::kLinear;
  if (name == "cosine") return LrSchedulerType::kCosine;
  throw Error("unknown lr_scheduler_type '" + name + "'").hint("use constant, constant_with_warmup, linear or cosine");
}

int64_t resolve_warmup_steps(int64_t warmup_steps, double warmup_ratio, int64_t total_steps) {
  SELFRL_CHECK(warmup_steps >= 0, "warmup_steps must be >= 0");
  SELFRL_CHECK(warmup_ratio >= 0 && warmup_ratio <= 1, "warmup_ratio must be in [0, 1], got ", warmup_ratio);
  if (warmup_steps > 0) return warmup_steps;
  return static_cast<int64_t>(std::ceil(warmup_ratio * static_cast<double>(total_steps)));
}

double LrSchedule::at(int64_t step) const {
  const double lr = learning_rate;
  if (type == LrSchedulerType::kConstant) return lr;
  if (step < warmup_steps)
    return lr * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  if (type == LrSchedulerType::kConstantWithWarmup) return lr;
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  const double progress = static_cast<double>(step - warmup_steps) / span;
  if (type == LrSchedulerType::kLinear) return lr * std::max(0.0, 1.0 - progress);
  constexpr double kPi = 3.14159265358979323846;
  return lr * std::max(0.0, 0.5 * (1.0 + std::cos(kPi * 0.5 * 2.0 * progress)));
}

}  // namespace selfrl::trainers
