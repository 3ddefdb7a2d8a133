// The setup every trainer (SFTTrainer, DPOTrainer, GRPOTrainer) does the same way, written
// once: joining the world, the optimizer over the trainable parameters, rank 0's metrics
// logger and the pad id.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "selfrl/dist/world.h"
#include "selfrl/metrics/metrics.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/trainers/optimizer.h"

namespace selfrl::trainers {

// The world a trainer uses: null for none or one process; otherwise `world`, after every rank's
// `model` was set to rank 0's weights (call it before making a reference copy).
std::shared_ptr<dist::World> join_world(std::shared_ptr<dist::World> world, model::CausalLM& model);

// A TrainingOptimizer over the parameters of `model` that require gradients (frozen ones, e.g.
// a base under adapters, get no optimizer state).
std::unique_ptr<TrainingOptimizer> make_optimizer(model::CausalLM& model, const OptimizerConfig& config,
                                                  std::shared_ptr<dist::World> world);

// metrics.jsonl (+ TensorBoard) in `output_dir` on rank 0; null elsewhere or when output_dir is "".
std::unique_ptr<metrics::MetricsLogger> make_logger(const std::string& output_dir, const dist::World* world,
                                                    bool tensorboard = true);

// The id padding rows of a batch: pad_token_id, else the first stop id, else 0.
int64_t pad_id_of(const model::CausalLM& model, const std::vector<int64_t>& stop_ids);

}  // namespace selfrl::trainers
