// SFTTrainer: cross-entropy on completion tokens only — the workhorse of STaR and ReST-EM.
// A step takes a batch of (prompt, completion) pairs, splits it into micro-batches and
// normalizes by the batch's total completion tokens, so the loss does not depend on how the
// batch is split.
#pragma once

#include <memory>
#include <vector>

#include "selfrl/metrics/metrics.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/trainers/optimizer.h"

namespace selfrl::trainers {

struct SFTExample {
  std::vector<int64_t> prompt_ids;
  std::vector<int64_t> completion_ids;
};

struct SFTConfig {
  OptimizerConfig optimizer;
  int64_t per_device_train_batch_size = 8;
  int64_t gradient_accumulation_steps = 1;
  int64_t num_train_epochs = 1;
  bool gradient_checkpointing = false;
  int64_t logprob_chunk_size = 1024;
  std::string output_dir;  // metrics.jsonl when set
  uint64_t seed = 42;      // shuffling
};

class SFTTrainer {
 public:
  SFTTrainer(std::shared_ptr<model::CausalLM> policy, SFTConfig config);
  metrics::Scalars step(const std::vector<SFTExample>& batch);
  // Epochs over `data` in seeded random order; returns each step's metrics.
  std::vector<metrics::Scalars> train(const std::vector<SFTExample>& data);
  // Optimizer steps train(data) will take (for the schedule's total_steps).
  static int64_t steps_for(size_t num_examples, const SFTConfig& cfg);
  int64_t global_step() const { return step_; }

 private:
  std::shared_ptr<model::CausalLM> policy_;
  SFTConfig cfg_;
  std::unique_ptr<TrainingOptimizer> optimizer_;
  std::unique_ptr<metrics::MetricsLogger> logger_;
  int64_t step_ = 0;
  int64_t pad_id_ = 0;
};

}  // namespace selfrl::trainers
