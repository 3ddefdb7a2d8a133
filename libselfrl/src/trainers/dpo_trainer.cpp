// DPOTrainer (see selfrl/trainers/dpo_trainer.h).
#include "selfrl/trainers/dpo_trainer.h"

#include <torch/torch.h>

#include <cmath>
#include <optional>

#include "selfrl/core/error.h"
#include "selfrl/core/memory.h"
#include "selfrl/model/lora.h"
#include "selfrl/trainers/trainer_setup.h"
#include "selfrl/dist/world.h"
#include "selfrl/trainers/sequence_batch.h"

namespace selfrl::trainers {
namespace {

// Summed completion log-probs and token counts for rows of (prompt, completion).
std::pair<torch::Tensor, torch::Tensor> sequence_logps(model::CausalLM& m, const SequenceBatch& b,
                                                       const DPOConfig& cfg) {
  TokenStatsOptions so;
  so.bf16 = cfg.bf16;
  so.padding_free = cfg.padding_free;
  const auto stats = completion_token_stats(m, b, so);
  const auto mask = b.completion_mask.to(stats.logprobs.device());
  return {(stats.logprobs * mask).sum(1), mask.sum(1)};
}

}  // namespace

DPOTrainer::DPOTrainer(std::shared_ptr<model::CausalLM> policy, std::shared_ptr<model::CausalLM> ref, DPOConfig config,
                       std::shared_ptr<dist::World> world)
    : policy_(std::move(policy)), ref_(std::move(ref)), cfg_(std::move(config)), world_(std::move(world)) {
  SELFRL_CHECK(policy_ != nullptr, "DPOTrainer: no policy model");
  world_ = join_world(world_, *policy_);
  if (world_ && ref_) dist::broadcast_module(*world_, *ref_);
  if (!cfg_.scpo) validate(cfg_.loss);
  // With LoRA the reference is the base itself (adapters off), not a copy.
  base_is_ref_ = !ref_ && !cfg_.loss.reference_free && model::has_lora(*policy_);
  if (!ref_ && !cfg_.loss.reference_free && !base_is_ref_) ref_ = clone_model(*policy_);
  optimizer_ = make_optimizer(*policy_, cfg_.optimizer, world_);
  logger_ = make_logger(cfg_.output_dir, world_.get());
  pad_id_ = pad_id_of(*policy_, {});
}

metrics::Scalars DPOTrainer::step(const std::vector<PreferencePair>& pairs) {
  SELFRL_CHECK(!pairs.empty() || world_, "DPOTrainer::step: no pairs");
  if (world_) world_->set_step(step_);
  const int64_t n = static_cast<int64_t>(pairs.size());
  // The mean runs over the global number of pairs.
  const double global_n =
      world_ ? world_->all_reduce_sum(static_cast<double>(n), "DPO pair count") : static_cast<double>(n);
  const int64_t micro = std::max<int64_t>(1, cfg_.per_device_train_batch_size);
  policy_->train();
  double loss = 0, chosen = 0, rejected = 0, margins = 0, acc = 0;
  bool finite = true;
  for (int64_t b0 = 0; b0 < n; b0 += micro) {
    const int64_t b1 = std::min(n, b0 + micro);
    std::vector<std::vector<int64_t>> prompts, completions;
    std::vector<double> weights;
    for (int64_t i = b0; i < b1; ++i) {  // chosen rows first, then rejected rows
      prompts.push_back(pairs[i].prompt_ids);
      completions.push_back(pairs[i].chosen_ids);
      weights.push_back(pairs[i].weight);
    }
    for (int64_t i = b0; i < b1; ++i) {
      prompts.push_back(pairs[i].prompt_ids);
      completions.push_back(pairs[i].rejected_ids);
    }
    const auto batch = pack_sequences(prompts, completions, pad_id_);
    const int64_t k = b1 - b0;
    auto [lp, len] = sequence_logps(*policy_, batch, cfg_);
    PreferenceBatch pb;
    pb.chosen_logps = lp.slice(0, 0, k);
    pb.rejected_logps = lp.slice(0, k, 2 * k);
    pb.chosen_lengths = len.slice(0, 0, k);
    pb.rejected_lengths = len.slice(0, k, 2 * k);
    if (ref_ || base_is_ref_) {
      torch::NoGradGuard no_grad;
      std::optional<model::LoraDisabled> base;
      if (base_is_ref_) base.emplace(*policy_);
      auto [rlp, rlen] = sequence_logps(ref_ ? *ref_ : *policy_, batch, cfg_);
      pb.ref_chosen_logps = rlp.slice(0, 0, k);
      pb.ref_rejected_logps = rlp.slice(0, k, 2 * k);
    }
    const auto out = cfg_.scpo ? scpo_loss(pb, torch::tensor(weights, torch::kFloat).to(lp.device()), cfg_.loss.beta,
                                           cfg_.scpo_alpha)
                               : dpo_loss(pb, cfg_.loss);
    const double share = static_cast<double>(k) / global_n;  // mean over all pairs
    const auto l = out.loss * share;
    const double lv = l.item<double>();
    finite = finite && std::isfinite(lv);
    if (b1 == n) optimizer_->expect_final_backward();  // DP: all-reduce overlaps this backward
    if (std::isfinite(lv)) l.backward();
    loss += lv;
    chosen += out.rewards_chosen * share;
    rejected += out.rewards_rejected * share;
    margins += out.rewards_margins * share;
    acc += out.rewards_accuracies * share;
  }
  const StepReport rep = optimizer_->step(finite);
  if (world_) {
    const auto g = world_->all_reduce_sum({loss, chosen, rejected, margins, acc}, "DPO metrics");
    loss = g[0], chosen = g[1], rejected = g[2], margins = g[3], acc = g[4];
  }
  metrics::Scalars m{{"loss", loss},
                     {"grad_norm", rep.grad_norm},
                     {"learning_rate", rep.learning_rate},
                     {"rewards/chosen", chosen},
                     {"rewards/rejected", rejected},
                     {"rewards/margins", margins},
                     {"rewards/accuracies", acc},
                     {"skipped_steps", static_cast<double>(optimizer_->steps_skipped())}};
  add_memory_metrics(m, policy_->device());
  if (logger_) logger_->log(step_, m);
  ++step_;
  return m;
}

}  // namespace selfrl::trainers
