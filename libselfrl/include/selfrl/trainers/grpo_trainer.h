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
#include "selfrl/dist/named_reduction.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/model/policy.h"
#include "selfrl/rewards/answer_extractor.h"
#include "selfrl/rewards/reward_pipeline.h"
#include "selfrl/trainers/advantages.h"
#include "selfrl/trainers/grpo_loss.h"
#include "selfrl/trainers/optimizer.h"

namespace selfrl::dist {
class World;
}

namespace selfrl::trainers {

struct GRPOConfig {
  // Generation: the rollout engine's parameters, whole. sampling.num_samples is TRL's
  // num_generations (G), sampling.max_new_tokens its max_completion_length (also the
  // dr_grpo normalizer); temperature, top_p, top_k, min_p, stop_token_ids as in vLLM.
  // sampling.seed is not used: the step's seeds derive from `seed` below.
  generation::SamplingParams sampling = default_sampling();
  int64_t generation_batch_size = 64;  // rows decoded together by the rollout engine
  bool continuous_batching = false;    // RolloutEngineOptions::continuous_batching
  bool share_prompt_cache = true;      // RolloutEngineOptions::share_prompt_cache
  int64_t kv_block_size = 256;         // RolloutEngineOptions::kv_block_size
  // LoRA: generate with the adapters merged into the weights (model::LoraMerged, restored
  // exactly afterwards) instead of through the unmerged adapters.
  bool merge_lora_for_generation = false;
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
  bool bf16 = false;          // forward passes under bfloat16 autocast; float32 weights, optimizer, loss
  bool padding_free = false;  // forward passes over packed rows (trainers::pack_padding_free)
  // Label-free diagnostics (label_free/* metrics, selfrl/trainers/label_free.h): with an answer
  // extractor, every step compares each group's sampled answers with each other and with their
  // self-certainty; with greedy_diagnostics, also with each prompt's greedy answer (one extra
  // greedy completion per prompt: 1/G more decoding).
  std::optional<rewards::AnswerExtractor> diagnostics_extractor;
  bool greedy_diagnostics = false;
  // Anchors (label_free/anchor_agreement, label_free.h): during the first `anchor_steps` steps,
  // up to `anchor_prompts` prompts whose G sampled answers were all one answer are kept with it;
  // every later step decodes them greedily (anchor_prompts more greedy rows) and reports the
  // fraction still giving that answer. 0 = off. Needs diagnostics_extractor.
  int64_t anchor_prompts = 0;
  int64_t anchor_steps = 5;
  // Bookkeeping.
  std::string output_dir;           // metrics.jsonl, TensorBoard, rollout dumps ("" = none)
  int64_t dump_rollouts_every = 0;  // 0 = never
  std::string rollouts_dir;         // where dumps go ("" = output_dir/rollouts); set alone, no metrics are written
  uint64_t seed = 42;

  int64_t num_generations() const { return sampling.num_samples; }
  int64_t max_completion_length() const { return sampling.max_new_tokens; }
  // TRL's defaults: G = 8, 256 new tokens, temperature 1.
  static generation::SamplingParams default_sampling() {
    generation::SamplingParams s;
    s.num_samples = 8;
    s.max_new_tokens = 256;
    return s;
  }
};

// One training prompt: its token ids and its dataset row (what rewards may look at).
struct PromptExample {
  std::vector<int64_t> prompt_ids;
  std::string prompt_text;
  nlohmann::json row;
  // Optional: a second prompt that asks the same question (a paraphrase; the demo uses the
  // commuted sum). The trainer samples num_generations completions of it too; they join the
  // vote of the consensus / borda rewards (rewards::Group::vote_samples) and are not trained on.
  std::vector<int64_t> vote_prompt_ids;
};

struct GRPOStepResult {
  metrics::Scalars metrics;
  int64_t step = 0;
};

class GRPOTrainer {
 public:
  // The policy's tokenizer decodes the completions rewards see (none: ids joined by spaces);
  // its stop ids end them. A frozen reference copy of the model is made only when
  // loss.beta != 0.
  GRPOTrainer(model::Policy policy, rewards::RewardPipeline rewards, GRPOConfig config,
              std::shared_ptr<dist::World> world = nullptr);

  // Supplies `n` replacement prompts for groups dropped by dynamic sampling.
  using PromptSource = std::function<std::vector<PromptExample>(int64_t n)>;
  // One step on `prompts`. With max_resample_rounds > 0 and `more_prompts`, groups whose
  // rewards are all equal are dropped and replaced (DAPO dynamic sampling).
  GRPOStepResult step(const std::vector<PromptExample>& prompts, const PromptSource& more_prompts = nullptr);

  int64_t global_step() const { return step_; }
  model::CausalLM& policy() { return *policy_.model; }
  const GRPOConfig& config() const { return cfg_; }
  TrainingOptimizer& optimizer() { return *optimizer_; }
  void set_global_step(int64_t step) { step_ = step; }  // resume
  double num_tokens_seen() const { return num_tokens_; }
  void set_num_tokens_seen(double n) { num_tokens_ = n; }  // resume
  // The anchors kept so far and how many steps looked for them (checkpointed by the GRPO loop).
  nlohmann::json anchor_state() const;
  void restore_anchors(const nlohmann::json& j);
  int64_t num_anchors() const { return static_cast<int64_t>(anchors_.size()); }

 private:
  // The phases of step(), in order; their results are defined in grpo_trainer.cpp.
  struct Groups;
  struct Batch;
  struct OldLogprobs;
  struct Timings;
  Groups generate_and_score(const std::vector<PromptExample>& prompts, const PromptSource& more_prompts, Timings& t);
  void add_greedy_answers(Groups& groups, Timings& t);  // and the anchors' check
  // The prompts' rollouts; `votes` gets one per prompt, of its vote_prompt_ids (an empty
  // Rollout where it has none).
  std::vector<generation::Rollout> generate(const std::vector<PromptExample>& prompts, int64_t round,
                                            uint64_t prompt_offset, Timings& t,
                                            std::vector<generation::Rollout>& votes);
  void score(const std::vector<PromptExample>& prompts, const std::vector<generation::Rollout>& rollouts,
             const std::vector<generation::Rollout>& votes, Groups& into, bool drop_zero_std, int64_t target,
             Timings& t);
  Advantages advantages(const Groups& groups);
  Batch training_batch(const Groups& groups, const Advantages& adv);
  OldLogprobs old_and_ref_logprobs(const Batch& batch, bool dump_now);
  void update(const Batch& batch, const OldLogprobs& old, dist::NamedReduction& sums, metrics::Scalars& m);
  dist::NamedReduction declare_step_sums() const;
  void add_group_sums(const Groups& groups, const Batch& batch, const Advantages& adv, dist::NamedReduction& sums);
  metrics::Scalars report(dist::NamedReduction& sums, metrics::Scalars m, const Timings& t);
  void dump_rollouts(const Groups& groups, const Batch& batch, const Advantages& adv, const OldLogprobs& old) const;

  model::Policy policy_;
  std::shared_ptr<model::CausalLM> ref_;
  rewards::RewardPipeline rewards_;
  GRPOConfig cfg_;
  std::unique_ptr<generation::RolloutEngine> engine_;
  std::unique_ptr<TrainingOptimizer> optimizer_;
  std::unique_ptr<metrics::MetricsLogger> logger_;
  int64_t step_ = 0;
  double num_tokens_ = 0;
  int64_t pad_id_ = 0;
  std::shared_ptr<dist::World> world_;
  struct Anchor {
    std::vector<int64_t> prompt_ids;
    std::string answer;
  };
  std::vector<Anchor> anchors_;
  int64_t anchor_steps_seen_ = 0;  // steps that looked for anchors
};

}  // namespace selfrl::trainers
