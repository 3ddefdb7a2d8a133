// SFTTrainer: cross-entropy on completion tokens only — the workhorse of STaR and ReST-EM.
// A step takes a batch of (prompt, completion) pairs, splits it into micro-batches and
// normalizes by the batch's total completion tokens, so the loss does not depend on how the
// batch is split.
//
// Data parallel (a distributed dist::World): step() takes this rank's share of the global
// batch; the token count is summed over ranks before normalizing, so the loss and the update
// equal one process's on the global batch. train() gives each rank a contiguous slice of each
// global batch (per_device_train_batch_size × gradient_accumulation_steps × world size).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "selfrl/metrics/metrics.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/trainers/optimizer.h"
#include "selfrl/trainers/preference_loss.h"

namespace selfrl::dist {
class World;
}

namespace selfrl::trainers {

struct SFTExample {
  std::vector<int64_t> prompt_ids;
  std::vector<int64_t> completion_ids;
  // NFT (SFTConfig::nft): the sample's verdict, its group's accuracy r̂ and the sampling policy's
  // per-token log-probs of the completion (SFTTrainer::completion_logprobs).
  bool correct = true;
  double r_hat = -1;
  std::vector<float> old_logprobs;
};

struct SFTConfig {
  OptimizerConfig optimizer;
  int64_t per_device_train_batch_size = 8;
  int64_t gradient_accumulation_steps = 1;
  int64_t num_train_epochs = 1;
  bool gradient_checkpointing = false;
  int64_t logprob_chunk_size = 1024;
  bool bf16 = false;          // forward passes under bfloat16 autocast; float32 weights, optimizer, loss
  bool padding_free = false;  // forward passes over packed rows (trainers::pack_padding_free)
  std::string output_dir;     // metrics.jsonl when set
  uint64_t seed = 42;         // shuffling
  // Set: the NFT loss (preference_loss.h) on correct and wrong samples instead of cross-entropy.
  std::optional<NFTLossConfig> nft;
};

class SFTTrainer {
 public:
  // `world`: null → one process. Rank 0's weights are broadcast to every rank here.
  SFTTrainer(std::shared_ptr<model::CausalLM> policy, SFTConfig config, std::shared_ptr<dist::World> world = nullptr);
  metrics::Scalars step(const std::vector<SFTExample>& batch);
  // Epochs over `data` in seeded random order; returns each step's metrics. After
  // resume_at(k) the first call skips the k global batches already trained on.
  std::vector<metrics::Scalars> train(const std::vector<SFTExample>& data);
  // The per-token log-probs of each example's completion under `model` (no grad, temperature
  // 1, `batch_size` rows at a time): the old policy NFT's ratios are taken against.
  static std::vector<std::vector<float>> completion_logprobs(model::CausalLM& model,
                                                             const std::vector<SFTExample>& examples,
                                                             int64_t batch_size, bool bf16 = false);
  // Optimizer steps train(data) will take (for the schedule's total_steps).
  static int64_t steps_for(size_t num_examples, const SFTConfig& cfg, int world_size = 1);
  int64_t global_step() const { return step_; }
  void set_global_step(int64_t step) { step_ = step; }
  // Resume: continue at `step` (from checkpoint::load); the next train() skips that many batches.
  void resume_at(int64_t step) { step_ = skip_batches_ = step; }
  TrainingOptimizer& optimizer() { return *optimizer_; }
  model::CausalLM& policy() { return *policy_; }

 private:
  std::shared_ptr<model::CausalLM> policy_;
  SFTConfig cfg_;
  std::unique_ptr<TrainingOptimizer> optimizer_;
  std::unique_ptr<metrics::MetricsLogger> logger_;
  int64_t step_ = 0;
  int64_t pad_id_ = 0;
  int64_t skip_batches_ = 0;
  std::shared_ptr<dist::World> world_;
};

}  // namespace selfrl::trainers
