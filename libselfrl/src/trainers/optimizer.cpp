// AdamW + schedule + clipping + non-finite guard (see selfrl/trainers/optimizer.h).
#include "selfrl/trainers/optimizer.h"

#include <cmath>

#include "selfrl/core/logging.h"

namespace selfrl::trainers {

TrainingOptimizer::TrainingOptimizer(std::vector<torch::Tensor> params, const OptimizerConfig& cfg)
    : params_(std::move(params)), max_grad_norm_(cfg.max_grad_norm) {
  schedule_ = LrSchedule{cfg.lr_scheduler_type, cfg.learning_rate, cfg.warmup_steps, std::max<int64_t>(1, cfg.total_steps)};
  torch::optim::AdamWOptions o(cfg.learning_rate);
  o.betas({cfg.adam_beta1, cfg.adam_beta2}).eps(cfg.adam_epsilon).weight_decay(cfg.weight_decay);
  adamw_ = std::make_unique<torch::optim::AdamW>(params_, o);
}

void TrainingOptimizer::zero_grad() {
  for (auto& p : params_) {
    if (p.grad().defined()) p.mutable_grad().zero_();
  }
}

StepReport TrainingOptimizer::step(bool loss_finite) {
  StepReport r;
  r.learning_rate = schedule_.at(step_);
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
  zero_grad();
  ++step_;
  return r;
}

}  // namespace selfrl::trainers
