// The update every trainer shares: AdamW (torch::optim), the learning-rate schedule,
// gradient-norm clipping and the non-finite guard — a NaN/Inf loss or gradient skips the
// step (gradients zeroed, weights untouched), is counted and reported.
// With a distributed dist::World the gradients are summed over ranks (flat buckets) before
// the norm, and a non-finite loss on any rank skips the step on every rank.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "selfrl/trainers/lr_schedule.h"

namespace selfrl::dist {
class World;
}

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
  // 1: ZeRO-1 — with a distributed world each rank keeps the AdamW moments of its own
  // contiguous share of the parameters only, updates that share and broadcasts it (see
  // docs/distributed.md). 0: every rank keeps all moments. Results are identical either way.
  int zero_stage = 0;
};

struct StepReport {
  double grad_norm = 0;      // before clipping (NaN when non-finite)
  double learning_rate = 0;  // the rate this step used
  bool skipped = false;      // non-finite loss or gradient
};

class TrainingOptimizer {
 public:
  // `world` null or of one process: no communication (the single-process behaviour). Otherwise
  // each rank's loss must already be normalized by global counts: gradients are *summed*.
  TrainingOptimizer(std::vector<torch::Tensor> params, const OptimizerConfig& cfg,
                    std::shared_ptr<dist::World> world = nullptr);
  // Call after backward. `loss_finite` false (the caller saw a NaN/Inf loss) also skips.
  StepReport step(bool loss_finite = true);
  // Data parallel, optional: call right before the backward pass of a step's last micro-batch.
  // Gradient buckets (reverse parameter order, WorldOptions::bucket_bytes) are then all-reduced
  // while that backward still runs, each as soon as its last gradient is final (as torch DDP
  // does); step() only reduces what is left. No-op for one process.
  void expect_final_backward();
  // Buckets of the last step started during backward, and in all (observability, tests).
  std::pair<int64_t, int64_t> overlapped_buckets() const { return overlapped_; }
  void zero_grad();
  int64_t steps_taken() const { return step_; }
  int64_t steps_skipped() const { return skipped_; }
  torch::optim::AdamW& adamw() { return *adamw_; }
  const LrSchedule& schedule() const { return schedule_; }
  const std::vector<torch::Tensor>& params() const { return params_; }
  const std::shared_ptr<dist::World>& world() const { return world_; }
  // ZeRO-1: the rank that owns params()[i]'s moments; -1 when moments are not sharded.
  int owner_of(size_t i) const { return owner_.empty() ? -1 : owner_[i]; }
  bool sharded() const { return !owner_.empty(); }
  // Resume: the counters a checkpoint saved (the AdamW moments are restored through adamw()).
  void restore_counters(int64_t steps_taken, int64_t steps_skipped) {
    step_ = steps_taken;
    skipped_ = steps_skipped;
  }

 private:
  std::vector<torch::Tensor> params_;
  std::unique_ptr<torch::optim::AdamW> adamw_;
  LrSchedule schedule_;
  double max_grad_norm_;
  int64_t step_ = 0;
  int64_t skipped_ = 0;
  std::shared_ptr<dist::World> world_;
  std::vector<int> owner_;  // ZeRO-1 owner rank per parameter (empty: not sharded)
  struct Overlap;
  std::shared_ptr<Overlap> overlap_;  // gradient buckets reduced during backward (DP only)
  std::pair<int64_t, int64_t> overlapped_{0, 0};

  void gather_sharded_params();
  void reduce_gradients(bool& loss_finite);
};

}  // namespace selfrl::trainers
