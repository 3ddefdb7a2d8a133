// AdamW + schedule + clipping + non-finite guard (see selfrl/trainers/optimizer.h).
#include "selfrl/trainers/optimizer.h"

#include <cmath>

#include "selfrl/core/error.h"
#include "selfrl/core/logging.h"
#include "selfrl/dist/world.h"

namespace selfrl::trainers {

TrainingOptimizer::TrainingOptimizer(std::vector<torch::Tensor> params, const OptimizerConfig& cfg,
                                     std::shared_ptr<dist::World> world)
    : params_(std::move(params)), max_grad_norm_(cfg.max_grad_norm), world_(std::move(world)) {
  if (world_ && !world_->distributed()) world_.reset();
  schedule_ = LrSchedule{cfg.lr_scheduler_type, cfg.learning_rate, cfg.warmup_steps, std::max<int64_t>(1, cfg.total_steps)};
  torch::optim::AdamWOptions o(cfg.learning_rate);
  o.betas({cfg.adam_beta1, cfg.adam_beta2}).eps(cfg.adam_epsilon).weight_decay(cfg.weight_decay);
  SELFRL_CHECK(cfg.zero_stage == 0 || cfg.zero_stage == 1, "zero_stage must be 0 or 1, got ", cfg.zero_stage);
  if (world_ && cfg.zero_stage == 1) {
    // Contiguous shares of about equal size: parameter i goes to the rank whose slice of the
    // total element count holds its middle element.
    int64_t total = 0;
    for (const auto& p : params_) total += p.numel();
    int64_t before = 0;
    std::vector<torch::Tensor> owned;
    for (const auto& p : params_) {
      const int64_t mid = before + p.numel() / 2;
      const int owner = static_cast<int>(std::min<int64_t>(world_->size() - 1, mid * world_->size() / std::max<int64_t>(1, total)));
      owner_.push_back(owner);
      if (owner == world_->rank()) owned.push_back(p);
      before += p.numel();
    }
    adamw_ = std::make_unique<torch::optim::AdamW>(owned, o);
  } else {
    adamw_ = std::make_unique<torch::optim::AdamW>(params_, o);
  }
}

void TrainingOptimizer::gather_sharded_params() {
  // Every owner broadcasts its updated share (one flat tensor per owner).
  torch::NoGradGuard no_grad;
  for (int r = 0; r < world_->size(); ++r) {
    std::vector<torch::Tensor> parts;
    for (size_t i = 0; i < params_.size(); ++i)
      if (owner_[i] == r) parts.push_back(params_[i].detach().reshape({-1}));
    if (parts.empty()) continue;
    std::vector<torch::Tensor> flat{torch::cat(parts)};
    world_->broadcast(flat, r, "ZeRO-1 parameter all-gather");
    int64_t off = 0;
    for (size_t i = 0; i < params_.size(); ++i) {
      if (owner_[i] != r) continue;
      auto& p = params_[i];
      p.detach().copy_(flat[0].slice(0, off, off + p.numel()).view_as(p));
      off += p.numel();
    }
  }
}

void TrainingOptimizer::zero_grad() {
  for (auto& p : params_) {
    if (p.grad().defined()) p.mutable_grad().zero_();
  }
}

StepReport TrainingOptimizer::step(bool loss_finite) {
  StepReport r;
  r.learning_rate = schedule_.at(step_);
  if (world_) {
    // One collective for every gradient plus the "some rank saw a non-finite loss" flag. Ranks
    // that did not backward (or skipped) contribute zeros, so every rank takes part.
    std::vector<torch::Tensor> bufs;
    for (auto& p : params_) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      bufs.push_back(p.grad());
    }
    bufs.push_back(torch::full({1}, loss_finite ? 0.0 : 1.0, params_.empty() ? torch::TensorOptions(torch::kFloat)
                                                                           : params_[0].options()));
    world_->all_reduce_sum(bufs, "gradient all-reduce");
    loss_finite = bufs.back().item<double>() == 0.0;
  }
  // Total L2 norm over all gradients, as torch.nn.utils.clip_grad_norm_.
  double sq = 0;
  for (const auto& p : params_) {
    if (p.grad().defined()) sq += p.grad().detach().to(torch::kDouble).pow(2).sum().item<double>();
  }
  r.grad_norm = std::sqrt(sq);
  if (!loss_finite || !std::isfinite(r.grad_norm)) {
    r.skipped = true;
    ++skipped_;
    SELFRL_WARN("non-finite " << (loss_finite ? "gradient" : "loss") << " at step " << step_
                              << ": update skipped (" << skipped_ << " skipped so far)");
    zero_grad();
    ++step_;
    return r;
  }
  if (max_grad_norm_ > 0 && r.grad_norm > max_grad_norm_) {
    const double scale = max_grad_norm_ / (r.grad_norm + 1e-6);
    for (auto& p : params_)
      if (p.grad().defined()) p.mutable_grad().mul_(scale);
  }
  for (auto& group : adamw_->param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(r.learning_rate);
  adamw_->step();
  if (sharded()) gather_sharded_params();
  zero_grad();
  ++step_;
  return r;
}

}  // namespace selfrl::trainers
