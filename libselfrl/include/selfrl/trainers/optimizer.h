// The update every trainer shares: AdamW (torch::optim), the learning-rate schedule,
// gradient-norm clipping and the non-finite guard — a NaN/Inf loss or gradient skips the
// step (gradients zeroed, weights untouched), is counted and reported.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "selfrl/trainers/lr_schedule.h"

namespace selfrl::trainers {

struct OptimizerConfig {
  double learning_rate = 1e-6;
  double weight_decay = 0.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_epsilon = 1e-8;
  double max_grad_norm = 1.0;  // <= 0: no clipping
  LrSchedulerType lr_scheduler_type = LrSchedulerType::kLinear;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
};

struct StepReport {
  double grad_norm = 0;      // before clipping (NaN when non-finite)
  double learning_rate = 0;  // the rate this step used
  bool skipped = false;      // non-finite loss or gradient
};

class TrainingOptimizer {
 public:
  TrainingOptimizer(std::vector<torch::Tensor> params, const OptimizerConfig& cfg);
  // Call after backward. `loss_finite` false (the caller saw a NaN/Inf loss) also skips.
  StepReport step(bool loss_finite = true);
  void zero_grad();
  int64_t steps_taken() const { return step_; }
  int64_t steps_skipped() const { return skipped_; }
  torch::optim::AdamW& adamw() { return *adamw_; }
  const LrSchedule& schedule() const { return schedule_; }

 private:
  std::vector<torch::Tensor> params_;
  std::unique_ptr<torch::optim::AdamW> adamw_;
  LrSchedule schedule_;
  double max_grad_norm_;
  int64_t step_ = 0;
  int64_t skipped_ = 0;
};

}  // namespace selfrl::trainers
