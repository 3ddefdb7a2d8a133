// Shared trainer setup (see selfrl/trainers/trainer_setup.h).
#include "selfrl/trainers/trainer_setup.h"

#include "selfrl/core/host_allocator.h"

namespace selfrl::trainers {

std::shared_ptr<dist::World> join_world(std::shared_ptr<dist::World> world, model::CausalLM& model) {
  if (!world || !world->distributed()) return nullptr;
  dist::broadcast_module(*world, model);
  return world;
}

std::unique_ptr<TrainingOptimizer> make_optimizer(model::CausalLM& model, const OptimizerConfig& config,
                                                  std::shared_ptr<dist::World> world) {
  tune_host_allocator();  // every trainer builds its optimizer here; activations reuse freed pages
  std::vector<torch::Tensor> params;
  for (auto& p : model.parameters())
    if (p.requires_grad()) params.push_back(p);
  return std::make_unique<TrainingOptimizer>(params, config, std::move(world));
}

std::unique_ptr<metrics::MetricsLogger> make_logger(const std::string& output_dir, const dist::World* world,
                                                    bool tensorboard) {
  if (output_dir.empty() || (world && !world->is_main())) return nullptr;
  return std::make_unique<metrics::MetricsLogger>(output_dir, tensorboard);
}

int64_t pad_id_of(const model::CausalLM& model, const std::vector<int64_t>& stop_ids) {
  const auto& c = model.config();
  const auto& eos = stop_ids.empty() ? c.eos_token_ids : stop_ids;
  return c.pad_token_id.value_or(eos.empty() ? 0 : eos[0]);
}

}  // namespace selfrl::trainers
