// GRPOTrainer: one GRPO step = prompts → RolloutEngine (G samples each) → RewardPipeline →
// group-relative advantages → μ update passes in micro-batches → metrics (TRL's names) and,
// every K steps, a rollout dump from which the logged loss can be recomputed.
// Knob names and defaults follow TRL's GRPOConfig (see docs/algorithms.md).
//
// Data parallel (a distributed dist::World): step() gets this rank's prompts (shard them with
// dist::shard); each rank generates and scores its own groups, sampling prompt p of the global
// batch with a seed derived from (seed, step, p), so the rollouts do not depend on the number
// of ranks;
// advantages stay local except scale_rewards: batch (global std). Every loss_type is
// normalized by global counts (sequences, tokens) summed over ranks and micro-batches, so the
// update equals one process's on the global batch with gradient_accumulation_steps = 1.
// Metrics are reduced over ranks; rank 0 alone writes logs and dumps.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "selfrl/generation/rollout_engine.h"
#include "selfrl/metrics/metrics.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/rewards/reward_pipeline.h"
#include "selfrl/trainers/advantages.h"
#include "selfrl/trainers/grpo_loss.h"
#include "selfrl/trainers/optimizer.h"

namespace selfrl::dist {
class World;
}

namespace selfrl::trainers {

struct GRPOConfig {
  // Generation (TRL GRPOConfig names).
  int64_t num_generations = 8;
  int64_t max_completion_length = 256;
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;
  double min_p = 0.0;
  std::vector<int64_t> stop_token_ids;
  int64_t generation_batch_size = 64;  // rows decoded together by the rollout engine
  // Loss and advantages.
  GRPOLossConfig loss;  // beta, epsilon, epsilon_high, delta, loss_type, importance_sampling_level
  ScaleRewards scale_rewards = ScaleRewards::kGroup;
  int64_t num_iterations = 1;  // μ
  bool mask_truncated_completions = false;
  // DAPO dynamic sampling: drop groups whose rewards are all equal and refill the batch with
  // new prompts, for at most this many extra generation rounds (0 = off).
  int64_t max_resample_rounds = 0;
  // Optimization.
  OptimizerConfig optimizer;
  int64_t gradient_accumulation_steps = 1;  // micro-batches per optimizer step
  bool gradient_checkpointing = false;
  int64_t logprob_chunk_size = 1024;
  bool bf16 = false;  // forward passes under bfloat16 autocast; float32 weights, optimizer, loss
  // Bookkeeping.
  std::string output_dir;            // metrics.jsonl, TensorBoard, rollout dumps ("" = none)
  int64_t dump_rollouts_every = 0;   // 0 = never
  std::string rollouts_dir;          // where dumps go ("" = output_dir/rollouts); set alone, no metrics are written
  uint64_t seed = 42;
};

// One training prompt: its token ids and its dataset row (what rewards may look at).
struct PromptExample {
  std::vector<int64_t> prompt_ids;
  std::string prompt_text;
  nlohmann::json row;
};

struct GRPOStepResult {
  metrics::Scalars metrics;
  int64_t step = 0;
};

class GRPOTrainer {
 public:
  using Decoder = std::function<std::string(const std::vector<int64_t>&)>;
  // `decode` turns completion ids into the text rewards see (default: ids joined by spaces).
  // A frozen reference copy of the policy is made only when loss.beta != 0.
  GRPOTrainer(std::shared_ptr<model::CausalLM> policy, rewards::RewardPipeline rewards, GRPOConfig config,
              Decoder decode = nullptr, std::vector<int64_t> eos_token_ids = {},
              std::shared_ptr<dist::World> world = nullptr);

  // One step on `prompts`. With max_resample_rounds > 0, `more_prompts(n)` supplies
  // replacements for groups dropped by dynamic sampling.
  GRPOStepResult step(const std::vector<PromptExample>& prompts,
                      const std::function<std::vector<PromptExample>(int64_t)>& more_prompts = nullptr);

  int64_t global_step() const { return step_; }
  model::CausalLM& policy() { return *policy_; }
  const GRPOConfig& config() const { return cfg_; }
  TrainingOptimizer& optimizer() { return *optimizer_; }
  void set_global_step(int64_t step) { step_ = step; }  // resume
  double num_tokens_seen() const { return num_tokens_; }
  void set_num_tokens_seen(double n) { num_tokens_ = n; }  // resume

 private:
  std::shared_ptr<model::CausalLM> policy_;
  std::shared_ptr<model::CausalLM> ref_;
  rewards::RewardPipeline rewards_;
  GRPOConfig cfg_;
  Decoder decode_;
  std::unique_ptr<generation::RolloutEngine> engine_;
  std::unique_ptr<TrainingOptimizer> optimizer_;
  std::unique_ptr<metrics::MetricsLogger> logger_;
  int64_t step_ = 0;
  double num_tokens_ = 0;
  int64_t pad_id_ = 0;
  std::shared_ptr<dist::World> world_;
};

}  // namespace selfrl::trainers
