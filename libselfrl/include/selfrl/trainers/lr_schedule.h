// Learning-rate schedules, as Hugging Face transformers' get_scheduler defines them
// (lr_scheduler_type: constant, constant_with_warmup, linear, cosine; warmup_steps or
// warmup_ratio), so that a TRL user's numbers carry over:
//   warmup (step < W):  lr · step / W
//   linear:             lr · max(0, (T − step) / (T − W))
//   cosine:             lr · max(0, ½ (1 + cos(π · num_cycles · 2 · progress))), num_cycles = 0.5
// with progress = (step − W) / (T − W).
#pragma once

#include <string>

namespace selfrl::trainers {

enum class LrSchedulerType { kConstant, kConstantWithWarmup, kLinear, kCosine };
LrSchedulerType parse_lr_scheduler_type(const std::string& name);

struct LrSchedule {
  LrSchedulerType type = LrSchedulerType::kLinear;  // transformers' default
  double learning_rate = 1e-6;                      // TRL GRPO default
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  // The learning rate for optimizer step `step` (0-based: the lr used by the step'th update).
  double at(int64_t step) const;
};

// warmup_steps from warmup_ratio when warmup_steps is 0 (ceil, as transformers).
int64_t resolve_warmup_steps(int64_t warmup_steps, double warmup_ratio, int64_t total_steps);

}  // namespace selfrl::trainers
