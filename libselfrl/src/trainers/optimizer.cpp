// AdamW + schedule + clipping + non-finite guard (see selfrl/trainers/optimizer.h).
#include "selfrl/trainers/optimizer.h"

#include <cmath>

#include "selfrl/core/error.h"
#include "selfrl/core/logging.h"
#include "selfrl/dist/world.h"

namespace selfrl::trainers {

// Buckets of parameter indices in reverse order (gradients of the last layers are final first).
// While armed, a parameter's hook writes its final gradient (accumulated + incoming) into its
// bucket's flat buffer; a bucket whose gradients are all in is started, and buckets are started
// strictly in order so that every rank issues the same sequence of collectives.
struct TrainingOptimizer::Overlap {
  std::vector<std::vector<size_t>> buckets;
  std::vector<size_t> bucket_of, offset_of;
  std::vector<torch::Tensor> flat;
  std::vector<int64_t> missing;  // gradients still to arrive, per bucket
  std::vector<bool> arrived;     // per parameter
  size_t next = 0;               // next bucket to start
  bool armed = false;
};

TrainingOptimizer::TrainingOptimizer(std::vector<torch::Tensor> params, const OptimizerConfig& cfg,
                                     std::shared_ptr<dist::World> world)
    : params_(std::move(params)), max_grad_norm_(cfg.max_grad_norm), world_(std::move(world)) {
  if (world_ && !world_->distributed()) world_.reset();
  schedule_ =
      LrSchedule{cfg.lr_scheduler_type, cfg.learning_rate, cfg.warmup_steps, std::max<int64_t>(1, cfg.total_steps)};
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
      const int owner =
          static_cast<int>(std::min<int64_t>(world_->size() - 1, mid * world_->size() / std::max<int64_t>(1, total)));
      owner_.push_back(owner);
      if (owner == world_->rank()) owned.push_back(p);
      before += p.numel();
    }
    adamw_ = std::make_unique<torch::optim::AdamW>(owned, o);
  } else {
    adamw_ = std::make_unique<torch::optim::AdamW>(params_, o);
  }
  if (world_) {
    overlap_ = std::make_shared<Overlap>();
    auto& ov = *overlap_;
    ov.bucket_of.resize(params_.size());
    ov.offset_of.resize(params_.size());
    size_t bytes = 0;
    for (size_t k = params_.size(); k-- > 0;) {
      const auto& p = params_[k];
      const size_t nb = static_cast<size_t>(p.numel()) * p.element_size();
      const bool same_kind = !ov.buckets.empty() &&
                             params_[ov.buckets.back()[0]].options().dtype() == p.options().dtype() &&
                             params_[ov.buckets.back()[0]].device() == p.device();
      if (ov.buckets.empty() || !same_kind || bytes + nb > world_->bucket_bytes()) {
        ov.buckets.emplace_back();
        bytes = 0;
      }
      ov.bucket_of[k] = ov.buckets.size() - 1;
      ov.offset_of[k] = 0;
      for (size_t j : ov.buckets.back()) ov.offset_of[k] += static_cast<size_t>(params_[j].numel());
      ov.buckets.back().push_back(k);
      bytes += nb;
    }
    std::weak_ptr<Overlap> weak = overlap_;
    auto world = world_;
    for (size_t k = 0; k < params_.size(); ++k) {
      auto param = params_[k];
      params_[k].register_hook([weak, world, k, param](const torch::Tensor& incoming) {
        auto ov = weak.lock();
        if (!ov || !ov->armed || ov->arrived[k]) return;
        torch::NoGradGuard no_grad;
        const size_t b = ov->bucket_of[k];
        auto slot = ov->flat[b].slice(0, static_cast<int64_t>(ov->offset_of[k]),
                                      static_cast<int64_t>(ov->offset_of[k]) + param.numel());
        if (param.grad().defined()) {
          slot.copy_((param.grad() + incoming).reshape({-1}));
        } else {
          slot.copy_(incoming.reshape({-1}));
        }
        ov->arrived[k] = true;
        if (--ov->missing[b] == 0) {
          while (ov->next < ov->buckets.size() && ov->missing[ov->next] == 0) {
            world->start_all_reduce(ov->flat[ov->next],
                                    "gradient all-reduce (bucket " + std::to_string(ov->next) + ")");
            ++ov->next;
          }
        }
      });
    }
  }
}

void TrainingOptimizer::expect_final_backward() {
  if (!overlap_) return;
  auto& ov = *overlap_;
  ov.flat.clear();
  ov.missing.clear();
  for (const auto& b : ov.buckets) {
    int64_t n = 0;
    for (size_t k : b) n += params_[k].numel();
    ov.flat.push_back(torch::zeros({n}, params_[b[0]].options()));
    ov.missing.push_back(static_cast<int64_t>(b.size()));
  }
  ov.arrived.assign(params_.size(), false);
  ov.next = 0;
  ov.armed = true;
}

void TrainingOptimizer::reduce_gradients(bool& loss_finite) {
  auto& ov = *overlap_;
  torch::NoGradGuard no_grad;
  if (!ov.armed) expect_final_backward();  // nothing overlapped: reduce every bucket now
  ov.armed = false;
  overlapped_ = {static_cast<int64_t>(ov.next), static_cast<int64_t>(ov.buckets.size())};
  // Gradients whose hook did not fire (unused parameters, a rank that skipped backward) are
  // final as they are; then the remaining buckets start, in order.
  for (size_t k = 0; k < params_.size(); ++k) {
    if (ov.arrived[k]) continue;
    const size_t b = ov.bucket_of[k];
    auto slot = ov.flat[b].slice(0, static_cast<int64_t>(ov.offset_of[k]),
                                 static_cast<int64_t>(ov.offset_of[k]) + params_[k].numel());
    if (params_[k].grad().defined()) slot.copy_(params_[k].grad().reshape({-1}));
  }
  for (; ov.next < ov.buckets.size(); ++ov.next) {
    world_->start_all_reduce(ov.flat[ov.next], "gradient all-reduce (bucket " + std::to_string(ov.next) + ")");
  }
  world_->wait_all();
  for (size_t k = 0; k < params_.size(); ++k) {
    auto& p = params_[k];
    const auto v =
        ov.flat[ov.bucket_of[k]]
            .slice(0, static_cast<int64_t>(ov.offset_of[k]), static_cast<int64_t>(ov.offset_of[k]) + p.numel())
            .view_as(p);
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    p.mutable_grad().copy_(v);
  }
  ov.flat.clear();
  // Some rank saw a non-finite loss: every rank skips.
  loss_finite = world_->all_reduce_sum(loss_finite ? 0.0 : 1.0, "non-finite loss flag") == 0.0;
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
  if (world_) reduce_gradients(loss_finite);
  // Total L2 norm over all gradients, as torch.nn.utils.clip_grad_norm_.
  double sq = 0;
  for (const auto& p : params_) {
    if (p.grad().defined()) sq += p.grad().detach().to(torch::kDouble).pow(2).sum().item<double>();
  }
  r.grad_norm = std::sqrt(sq);
  if (!loss_finite || !std::isfinite(r.grad_norm)) {
    r.skipped = true;
    ++skipped_;
    SELFRL_WARN("non-finite " << (loss_finite ? "gradient" : "loss") << " at step " << step_ << ": update skipped ("
                              << skipped_ << " skipped so far)");
    zero_grad();
    ++step_;
    return r;
  }
  if (max_grad_norm_ > 0 && r.grad_norm > max_grad_norm_) {
    const double scale = max_grad_norm_ / (r.grad_norm + 1e-6);
    for (auto& p : params_)
      if (p.grad().defined()) p.mutable_grad().mul_(scale);
  }
  for (auto& group : adamw_->param_groups())
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(r.learning_rate);
  adamw_->step();
  if (sharded()) gather_sharded_params();
  zero_grad();
  ++step_;
  return r;
}

}  // namespace selfrl::trainers
