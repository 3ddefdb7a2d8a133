// RunContext: what every trainer and loop of `selfrl train` shares — the policy (model,
// tokenizer, stop ids), the datasets, the answer extractor, one MetricsLogger for the run
// (train steps and loop iterations go to the same metrics.jsonl, with one global step), and
// helpers for the phases loops are made of: sample, SFT, DPO, evaluate, save.
//
// Distributed: run_training() (self_improvement_loop.cpp) creates the dist::World from the
// launcher's environment and hands it to the context. Every rank runs the same loop on the
// same data. Sampling phases (sample(), and the judge of the loops) are sharded: the prompts go
// in waves of generation_batch_size / n, each rank generates a contiguous range of waves, and
// the rollouts are gathered, so that every rank holds all of them, the same as one process
// would have made (seeds are per prompt and the waves are the same). The trainers take each
// rank's contiguous shard of every global batch (per_device_train_batch_size x
// gradient_accumulation_steps x world size). Rank 0 alone evaluates and writes output_dir
// (metrics, TensorBoard, dumps, final/, checkpoints). Checkpoints go through
// save_checkpoint() / resume_checkpoint() (selfrl/trainers/checkpoint.h).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "selfrl/data/prompt_dataset.h"
#include "selfrl/dist/world.h"
#include "selfrl/eval/evaluator.h"
#include "selfrl/generation/rollout.h"
#include "selfrl/loops/train_config.h"
#include "selfrl/metrics/metrics.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/model/policy.h"
#include "selfrl/rewards/judge_reward.h"
#include "selfrl/rewards/reward_pipeline.h"
#include "selfrl/tokenizer/tokenizer.h"
#include "selfrl/trainers/dpo_trainer.h"
#include "selfrl/trainers/sft_trainer.h"

namespace selfrl::loops {

// How a front end (the Python bindings, a user's binary) watches and steers a run.
struct RunHooks {
  // Train this model in place instead of loading cfg.model_dir's weights (the tokenizer and
  // stop ids still come from cfg.model_dir). Must be on cfg.device.
  std::shared_ptr<model::CausalLM> model;
  // Called for every train step and every iteration line (kind "iteration"), logged or not.
  std::function<void(int64_t step, const std::string& kind, const metrics::Scalars& m)> on_log;
  // Polled at step and iteration boundaries; true stops the run with selfrl::Interrupted.
  std::function<bool()> should_stop;
  // The world to run in; null: from the launcher's environment.
  std::shared_ptr<dist::World> world;
};

using model::Policy;

class RunContext {
 public:
  // Loads the model and tokenizer of cfg.model_dir and the datasets; rank 0 creates output_dir.
  // `world` null: a world of one process.
  explicit RunContext(const TrainConfig& cfg, std::shared_ptr<dist::World> world = nullptr, RunHooks hooks = {});

  const TrainConfig& cfg;
  std::shared_ptr<dist::World> world;  // never null
  bool is_main() const { return world->is_main(); }
  // The checkpoint `resume_from_checkpoint` names (auto: the newest complete one); "" = fresh run.
  std::string resume_dir;
  Policy policy;
  std::vector<data::Prompt> train, eval_set;
  rewards::AnswerExtractor extractor;
  int64_t global_step = 0;

  // metrics.jsonl + TensorBoard. A train step advances global_step; logged every logging_steps.
  void log_train(const metrics::Scalars& m, const std::string& kind = "train");
  void log_iteration(int64_t iteration, const metrics::Scalars& m);
  // Per-iteration evaluation on data.eval (empty when there is none), prefixed "eval/".
  metrics::Scalars evaluate(int64_t iteration);

  // n samples for each prompt with the current policy (progress bar labelled `label`).
  // Collective in a distributed run: every rank calls it with the same prompts and gets all the
  // rollouts, each rank having generated its share of the waves.
  std::vector<generation::Rollout> sample(const std::vector<std::vector<int64_t>>& prompts, int64_t n,
                                          double temperature, int64_t max_new_tokens, uint64_t seed,
                                          const std::string& label) const;
  // Prompt text → ids with the run's prompt options (chat template, system prompt).
  std::vector<int64_t> encode_prompt(const std::string& text) const;
  // For prompts the loops build themselves (judge, writer and hint prompts): keeps the last
  // max_position_embeddings − max_new_tokens ids, warning once per run when it cuts.
  std::vector<int64_t> fit_prompt(std::vector<int64_t> ids, int64_t max_new_tokens) const;

  // cfg.model_dir's weights, with fresh LoRA adapters when the run uses LoRA.
  std::shared_ptr<model::CausalLM> load_base() const;
  // Adds the run's LoRA adapters to `m` (lora.adapter, or new ones when lora.r > 0).
  void attach_lora(model::CausalLM& m) const;
  // SFT on `data` (epochs, batch size, optimizer from the config), every step logged;
  // returns summary metrics (sft/loss_first, sft/loss_last, sft/steps).
  // `nft` set: the NFT loss instead of cross-entropy (the examples carry verdicts, r̂ and old
  // log-probs).
  metrics::Scalars sft(const std::shared_ptr<model::CausalLM>& model, const std::vector<trainers::SFTExample>& data,
                       const std::optional<trainers::NFTLossConfig>& nft = std::nullopt);
  // DPO (or ScPO when `scpo`) on `pairs`: max(1, max_steps) passes of batches; every step logged.
  metrics::Scalars dpo(const std::shared_ptr<model::CausalLM>& model,
                       const std::vector<trainers::PreferencePair>& pairs, bool scpo, double scpo_alpha);
  rewards::RewardPipeline make_rewards(const std::vector<std::string>& funcs, const std::vector<double>& weights) const;
  // One reward by its recipe name (consensus, self_certainty, borda, verifier, format,
  // soft_overlong, length_penalty, judge).
  rewards::RewardPtr make_reward(const std::string& name) const;
  // The LLM judge as a generation callable: judge.model (loaded once, frozen) when set, else the
  // current policy, so that the judge changes as the policy trains. Judge prompts are encoded
  // with the run's prompt options (chat template, system prompt) and cut like fit_prompt.
  // `over_ranks`: the judgements are sharded over the ranks like sample() (collective: for the
  // loops' judge phases, where every rank asks the same); false for a GRPO reward, where each
  // rank judges its own groups.
  rewards::JudgeFn judge_fn(bool over_ranks = false) const;
  // The loops' sampling done on this rank since the last log_iteration (logged there as
  // timing_s/gen and gen/prompts_this_rank, then reset).
  struct GenStats {
    double seconds = 0;
    int64_t prompts = 0;
  };
  const GenStats& gen_stats() const { return gen_stats_; }
  // The final model in HF format with the tokenizer files, under output_dir/final.
  std::string save_final() const;
  // Whether the hooks ask the run to stop (checked at step and iteration boundaries). In a
  // distributed run any rank's request stops every rank (a max over ranks: all stop together).
  bool stop_requested() const;
  // Throws selfrl::Interrupted naming the step; `checkpoint` is what was saved on the way out.
  [[noreturn]] void interrupt(const std::string& checkpoint = "") const;
  // Writes output_dir/checkpoint-<global_step> (collective): the policy weights, `optimizer`'s
  // moments (null: the loop keeps none across iterations), every rank's RNG state, and
  // `extra` + {global_step, metrics_lines} as the opaque loop state. Keeps save_total_limit.
  std::string save_checkpoint(nlohmann::json extra, trainers::TrainingOptimizer* optimizer);
  // Restores resume_dir (collective) into the policy and `optimizer`; sets global_step and
  // returns the `extra` saved with it. nullopt when resume_dir is empty.
  std::optional<nlohmann::json> resume_checkpoint(trainers::TrainingOptimizer* optimizer);
  // trainer: sft | dpo resumed inside their pass: sft() / dpo() reload `dir` into their own
  // trainer's optimizer and skip the first `step` batches of the pass begun at `phase_start`.
  struct PhaseResume {
    std::string dir;
    int64_t step = 0, phase_start = 0;
  };
  void resume_phase(PhaseResume r) { phase_resume_ = std::move(r); }

 private:
  std::vector<generation::Rollout> sample_with(const Policy& model, const std::vector<std::vector<int64_t>>& prompts,
                                               int64_t n, double temperature, int64_t max_new_tokens, uint64_t seed,
                                               const std::string& label,  // "": no progress bar
                                               bool over_ranks) const;
  std::vector<int64_t> fit_to(std::vector<int64_t> ids, int64_t max_new_tokens, int64_t context) const;
  // After an SFT / DPO step: the step checkpoint (trainer: sft | dpo with save_steps) and the stop check.
  void after_phase_step(bool step_checkpoints, int64_t steps, int64_t phase_start,
                        trainers::TrainingOptimizer& optimizer);

  RunHooks hooks_;
  std::unique_ptr<metrics::MetricsLogger> logger_;  // rank 0 only
  std::shared_ptr<const void> output_dir_lock_;     // rank 0 only: an io::DirectoryLock
  mutable std::shared_ptr<Policy> judge_;           // judge.model, loaded on first use
  int64_t metrics_lines_ = 0;                       // lines logged so far (counted on every rank)
  PhaseResume phase_resume_;
  mutable bool warned_truncation_ = false;
  mutable GenStats gen_stats_;
};

// Copies the tokenizer / generation files of `from` into `to` (those that exist).
void copy_tokenizer_files(const std::string& from, const std::string& to);

}  // namespace selfrl::loops
