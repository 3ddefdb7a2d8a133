// DPOTrainer: preference pairs → summed completion log-probs under the policy and a frozen
// reference → dpo_loss (TRL's loss types) or, with `scpo`, ScPO's vote-margin-weighted loss.
#pragma once

#include <memory>
#include <vector>

#include "selfrl/metrics/metrics.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/trainers/optimizer.h"
#include "selfrl/trainers/preference_loss.h"

namespace selfrl::dist {
class World;
}

namespace selfrl::trainers {

struct PreferencePair {
  std::vector<int64_t> prompt_ids, chosen_ids, rejected_ids;
  double weight = 1.0;  // ScPO vote margin (V(y+) − V(y−)) / k; ignored by DPO
};

struct DPOConfig {
  DPOLossConfig loss;       // beta, label_smoothing, loss_type, loss_weights, reference_free
  bool scpo = false;        // use scpo_loss with each pair's weight
  double scpo_alpha = 1.0;  // ScPO's NLL coefficient
  OptimizerConfig optimizer;
  int64_t per_device_train_batch_size = 8;  // pairs per micro-batch
  bool bf16 = false;                        // forward passes (policy and reference) under bfloat16 autocast
  bool padding_free = false;                // forward passes over packed rows (trainers::pack_padding_free)
  std::string output_dir;
};

class DPOTrainer {
 public:
  // `ref` may be null: a frozen copy of the policy is taken (unless reference_free).
  // `world` (null: one process): step() then takes this rank's pairs; the loss is the mean
  // over the global number of pairs and the metrics are global means.
  DPOTrainer(std::shared_ptr<model::CausalLM> policy, std::shared_ptr<model::CausalLM> ref, DPOConfig config,
             std::shared_ptr<dist::World> world = nullptr);
  metrics::Scalars step(const std::vector<PreferencePair>& pairs);
  int64_t global_step() const { return step_; }
  void set_global_step(int64_t step) { step_ = step; }  // resume
  TrainingOptimizer& optimizer() { return *optimizer_; }

 private:
  std::shared_ptr<model::CausalLM> policy_, ref_;
  bool base_is_ref_ = false;  // LoRA: the reference is the policy with its adapters off
  DPOConfig cfg_;
  std::unique_ptr<TrainingOptimizer> optimizer_;
  std::unique_ptr<metrics::MetricsLogger> logger_;
  int64_t step_ = 0;
  int64_t pad_id_ = 0;
  std::shared_ptr<dist::World> world_;
};

}  // namespace selfrl::trainers
