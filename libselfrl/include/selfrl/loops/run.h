// selfrl::loops::Run: one `selfrl train` run as an object — what the CLI, the Python bindings
// and a user's training binary all drive. Built from a TrainConfig (read from a recipe), it
// loads the policy and data, then either runs to the end (train(), exactly `selfrl train`) or
// advances one optimizer step at a time (step(), GRPO-based runs).
//
//   auto recipe = selfrl::recipe::Recipe::load("recipes/tiny/ttrl.yaml", {"max_steps=4"});
//   selfrl::loops::Run run(selfrl::loops::read_train_config(recipe));
//   auto result = run.train();  // metrics.jsonl, final/, curves.svg under output_dir
//
// RunHooks let a front end watch and steer the run without touching its internals: a model to
// train in place, a callback per logged line, and a stop check polled at step boundaries (Ctrl-C
// in Python). Not thread-safe: one thread drives a Run.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "selfrl/loops/run_context.h"
#include "selfrl/loops/self_improvement_loop.h"
#include "selfrl/loops/train_config.h"

namespace selfrl::loops {

class Run {
 public:
  // Loads the model (or takes hooks.model), tokenizer and datasets, and prepares output_dir.
  // The distributed world comes from hooks.world or the launcher's environment (mpirun,
  // torchrun, SLURM); a single process otherwise.
  explicit Run(TrainConfig cfg, RunHooks hooks = {});
  ~Run();
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  // Runs what is left of the run (all of it, unless step() already took some steps or a
  // checkpoint is resumed), saves output_dir/final and curves.svg. Throws selfrl::Interrupted
  // when the stop check fires (after writing a checkpoint when save_steps > 0).
  TrainResult train();
  // One optimizer step of a GRPO-based run (trainer: grpo, loop: sec); its metrics as logged.
  // Other kinds throw: their unit of work is an iteration (use train()).
  metrics::Scalars step();
  // Writes output_dir/checkpoint-<global step> now; returns its path.
  std::string save_checkpoint();

  const TrainConfig& config() const { return cfg_; }
  RunContext& context() { return *ctx_; }
  const std::shared_ptr<model::CausalLM>& model() const { return ctx_->policy.model; }
  int64_t global_step() const { return ctx_->global_step; }

 private:
  TrainConfig cfg_;  // declared first: ctx_ keeps a reference to it
  std::shared_ptr<dist::World> world_;
  std::unique_ptr<RunContext> ctx_;
  std::unique_ptr<SelfImprovementLoop> loop_;
};

}  // namespace selfrl::loops
