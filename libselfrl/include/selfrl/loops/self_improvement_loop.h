// SelfImprovementLoop: the shape every `selfrl train` run takes —
//
//   evaluate (iteration 0) → for each iteration: iterate() [generate → select → train]
//                                               → evaluate → one "iteration" line in metrics.jsonl
//   → save output_dir/final (HF model + tokenizer)
//
// iterate() runs the shared trainers (SFT for STaR / ReST-EM / B-STaR, DPO for self-rewarding /
// ScPO, GRPO for TTRL / Intuitor / SEC / KnowRL); each of their optimizer steps is logged too.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "selfrl/loops/run_context.h"
#include "selfrl/loops/train_config.h"
#include "selfrl/metrics/metrics.h"
#include "selfrl/rewards/reward_pipeline.h"

namespace selfrl::loops {

class SelfImprovementLoop {
 public:
  virtual ~SelfImprovementLoop() = default;
  virtual std::string name() const = 0;
  virtual int64_t num_iterations(const RunContext& ctx) const { return ctx.cfg.iterations; }
  // One iteration (1-based); returns its metrics (the evaluation is added by run()).
  virtual metrics::Scalars iterate(RunContext& ctx, int64_t iteration) = 0;
  // The per-iteration evaluation (iteration 0 = before training); default: ctx.evaluate().
  virtual metrics::Scalars evaluate(RunContext& ctx, int64_t iteration) { return ctx.evaluate(iteration); }
  // The whole run; returns the last iteration's metrics (eval included). With resume_dir set,
  // restores the checkpoint and continues after the iteration (or step) it was saved at; with
  // save_steps > 0 writes a checkpoint after every save_steps-th iteration (GRPO / SEC save
  // every save_steps optimizer steps themselves).
  metrics::Scalars run(RunContext& ctx);

  // Checkpoint hooks. prepare(): build what must exist before weights are restored (trainers
  // that keep an optimizer). optimizer(): the optimizer whose moments a checkpoint keeps (null:
  // none survives an iteration). state() / restore(): the loop's own state (data position,
  // curriculum, controller values, RNG) as JSON.
  virtual void prepare(RunContext&) {}
  virtual trainers::TrainingOptimizer* optimizer() { return nullptr; }
  virtual nlohmann::json state() const { return nlohmann::json::object(); }
  virtual void restore(RunContext&, const nlohmann::json&) {}
  // Whether checkpoints happen inside iterate() (GRPO / SEC: every save_steps steps).
  virtual bool checkpoints_steps() const { return false; }

  // The start of a run, once: restores resume_dir's checkpoint, or evaluates and logs iteration
  // 0. run() calls it; Run::step() calls it before the first step.
  void begin(RunContext& ctx);
  // One optimizer step outside run() (Run::step(); GRPO / SEC only: other loops throw). A step
  // that completes an iteration also evaluates and logs it, so a run driven by step() writes
  // the metrics.jsonl that run() writes; a later run() continues after it.
  virtual metrics::Scalars step(RunContext& ctx);
  // Iterations whose line is logged.
  int64_t iterations_done() const { return done_; }

 protected:
  // After iterate(it): evaluates, merges into `m`, logs the iteration line, writes the
  // per-iteration checkpoint (loops without step checkpoints) and honours a stop request.
  metrics::Scalars finish_iteration(RunContext& ctx, int64_t it, metrics::Scalars m);

 private:
  bool begun_ = false;
  int64_t done_ = 0;
};

// The loop or trainer `cfg.kind` names.
std::unique_ptr<SelfImprovementLoop> make_loop(const TrainConfig& cfg);

struct TrainResult {
  std::string final_model_dir;  // "" when save_model is false
  std::string metrics_path;
  std::string plot_path;  // RUN_DIR/curves.svg ("" when it could not be drawn)
  metrics::Scalars last;
};

// `selfrl train`: Run(cfg).train() (selfrl/loops/run.h).
TrainResult run_training(const TrainConfig& cfg);

// Shared pieces of the loops.
rewards::Group to_group(const data::Prompt& prompt, const generation::Rollout& rollout, const Policy& policy);
// Per group, per sample: Σ_f w_f r_f over the finite entries (NaN when none is finite).
std::vector<std::vector<double>> weighted_group_scores(rewards::RewardPipeline& pipeline,
                                                       const std::vector<rewards::Group>& groups);
// The label-free diagnostics (label_free/*, selfrl/trainers/label_free.h) of sampled groups:
// answers by ctx.extractor, certainty from the rollouts. Sampling loops log them per iteration.
metrics::Scalars label_free_metrics(const RunContext& ctx, const std::vector<generation::Rollout>& rollouts);
// Prompts in a seeded random order (one permutation per call).
std::vector<size_t> shuffled_indices(size_t n, uint64_t seed);

// Loops in their own files.
std::unique_ptr<SelfImprovementLoop> make_grpo_loop();  // grpo_loop.cpp (also SEC)
std::unique_ptr<SelfImprovementLoop> make_sec_loop();
std::unique_ptr<SelfImprovementLoop> make_sft_run();  // supervised_runs.cpp
std::unique_ptr<SelfImprovementLoop> make_dpo_run();
std::unique_ptr<SelfImprovementLoop> make_star_loop();     // star.cpp
std::unique_ptr<SelfImprovementLoop> make_rest_em_loop();  // star.cpp (shares its sample-filter-SFT shape)
std::unique_ptr<SelfImprovementLoop> make_bstar_loop();    // bstar.cpp
std::unique_ptr<SelfImprovementLoop> make_self_rewarding_loop(bool scpo);  // preference_loops.cpp
std::unique_ptr<SelfImprovementLoop> make_knowrl_loop();                   // introspection/knowrl_loop.cpp

}  // namespace selfrl::loops
