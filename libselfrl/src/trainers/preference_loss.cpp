// DPO, ScPO and SFT losses (see selfrl/trainers/preference_loss.h).
#include "selfrl/trainers/preference_loss.h"

#include <torch/torch.h>

#include "selfrl/core/error.h"

namespace selfrl::trainers {
namespace {

const std::vector<std::string> kDpoLossTypes = {"sigmoid", "hinge", "ipo", "robust", "sft"};

void check_batch(const PreferenceBatch& b, bool need_ref) {
  SELFRL_CHECK(b.chosen_logps.defined() && b.rejected_logps.defined(),
               "preference loss: chosen/rejected logps missing");
  SELFRL_CHECK(b.chosen_logps.dim() == 1 && b.chosen_logps.sizes() == b.rejected_logps.sizes(),
               "preference loss: chosen_logps and rejected_logps must both be [P]");
  if (need_ref) {
    SELFRL_CHECK(b.ref_chosen_logps.defined() && b.ref_rejected_logps.defined(),
                 "preference loss: reference log-probs missing (or set reference_free)");
  }
}

torch::Tensor ref_or_zero(const torch::Tensor& ref, const torch::Tensor& like, bool reference_free) {
  return reference_free ? torch::zeros_like(like) : ref.to(like.scalar_type());
}

void fill_reward_metrics(PreferenceLossOutput& out, const torch::Tensor& chosen_lr, const torch::Tensor& rejected_lr,
                         double beta) {
  const auto rc = (beta * chosen_lr).detach();
  const auto rr = (beta * rejected_lr).detach();
  out.rewards_chosen = rc.mean().item<double>();
  out.rewards_rejected = rr.mean().item<double>();
  out.rewards_margins = (rc - rr).mean().item<double>();
  out.rewards_accuracies = (rc > rr).to(torch::kDouble).mean().item<double>();
}

}  // namespace

void validate(const DPOLossConfig& cfg) {
  SELFRL_CHECK(cfg.beta > 0, "DPO beta must be positive, got ", cfg.beta);
  SELFRL_CHECK(!cfg.loss_type.empty(), "DPO loss_type is empty");
  for (const auto& t : cfg.loss_type) {
    if (std::find(kDpoLossTypes.begin(), kDpoLossTypes.end(), t) == kDpoLossTypes.end()) {
      throw Error("unknown DPO loss_type '" + t + "'").hint("use sigmoid, hinge, ipo, robust or sft");
    }
  }
  if (!cfg.loss_weights.empty() && cfg.loss_weights.size() != cfg.loss_type.size()) {
    throw Error("loss_weights has " + std::to_string(cfg.loss_weights.size()) + " entries for " +
                std::to_string(cfg.loss_type.size()) + " loss types")
        .hint("give one weight per loss_type");
  }
  const bool robust = std::find(cfg.loss_type.begin(), cfg.loss_type.end(), "robust") != cfg.loss_type.end();
  SELFRL_CHECK(cfg.label_smoothing >= 0 && cfg.label_smoothing < (robust ? 0.5 : 1.0),
               "label_smoothing must be in [0, ", robust ? "0.5" : "1", "), got ", cfg.label_smoothing);
}

PreferenceLossOutput dpo_loss(const PreferenceBatch& b, const DPOLossConfig& cfg) {
  validate(cfg);
  check_batch(b, !cfg.reference_free);
  const auto& pc = b.chosen_logps;
  const auto& pr = b.rejected_logps;
  const auto chosen_lr = pc - ref_or_zero(b.ref_chosen_logps, pc, cfg.reference_free);
  const auto rejected_lr = pr - ref_or_zero(b.ref_rejected_logps, pr, cfg.reference_free);
  const auto delta = chosen_lr - rejected_lr;
  const double beta = cfg.beta, eps = cfg.label_smoothing;

  torch::Tensor total;
  for (size_t k = 0; k < cfg.loss_type.size(); ++k) {
    const std::string& t = cfg.loss_type[k];
    const double w = cfg.loss_weights.empty() ? 1.0 : cfg.loss_weights[k];
    torch::Tensor l;
    if (t == "sigmoid") {
      l = -(1 - eps) * torch::log_sigmoid(beta * delta) - eps * torch::log_sigmoid(-beta * delta);
    } else if (t == "hinge") {
      l = torch::relu(1 - beta * delta);
    } else if (t == "ipo") {
      SELFRL_CHECK(b.chosen_lengths.defined() && b.rejected_lengths.defined(), "ipo needs chosen/rejected lengths");
      const auto norm = chosen_lr / b.chosen_lengths.to(pc.scalar_type()).clamp_min(1) -
                        rejected_lr / b.rejected_lengths.to(pc.scalar_type()).clamp_min(1);
      l = (norm - 1 / (2 * beta)).pow(2);
    } else if (t == "robust") {
      l = (-(1 - eps) * torch::log_sigmoid(beta * delta) + eps * torch::log_sigmoid(-beta * delta)) / (1 - 2 * eps);
    } else {  // sft
      SELFRL_CHECK(b.chosen_lengths.defined(), "sft loss needs chosen_lengths");
      l = -pc / b.chosen_lengths.to(pc.scalar_type()).clamp_min(1);
    }
    total = total.defined() ? total + w * l : w * l;
  }
  PreferenceLossOutput out;
  out.per_pair_loss = total;
  out.loss = total.mean();
  fill_reward_metrics(out, chosen_lr, rejected_lr, beta);
  return out;
}

PreferenceLossOutput scpo_loss(const PreferenceBatch& b, const torch::Tensor& vote_margin_weights, double beta,
                               double alpha) {
  check_batch(b, true);
  SELFRL_CHECK(beta > 0, "ScPO beta must be positive, got ", beta);
  SELFRL_CHECK(vote_margin_weights.defined() && vote_margin_weights.sizes() == b.chosen_logps.sizes(),
               "ScPO vote_margin_weights must be [P]");
  const auto& pc = b.chosen_logps;
  const auto chosen_lr = pc - b.ref_chosen_logps.to(pc.scalar_type());
  const auto rejected_lr = b.rejected_logps - b.ref_rejected_logps.to(pc.scalar_type());
  const auto w = vote_margin_weights.to(pc.scalar_type());
  auto l = -w * torch::log_sigmoid(beta * (chosen_lr - rejected_lr));
  if (alpha != 0) {
    SELFRL_CHECK(b.chosen_lengths.defined(), "ScPO's NLL term needs chosen_lengths");
    l = l + alpha * w * (-pc / b.chosen_lengths.to(pc.scalar_type()).clamp_min(1));
  }
  PreferenceLossOutput out;
  out.per_pair_loss = l;
  out.loss = l.mean();
  fill_reward_metrics(out, chosen_lr, rejected_lr, beta);
  return out;
}

torch::Tensor sft_loss(const torch::Tensor& token_logps, const torch::Tensor& completion_mask, double num_items) {
  SELFRL_CHECK(token_logps.sizes() == completion_mask.sizes(), "sft_loss: mask ", completion_mask.sizes(),
               " does not match log-probs ", token_logps.sizes());
  const auto m = completion_mask.to(token_logps.scalar_type());
  const auto denom = num_items > 0 ? torch::scalar_tensor(num_items, token_logps.options()) : m.sum().clamp_min(1.0);
  return -(token_logps * m).sum() / denom;
}

void validate(const NFTLossConfig& cfg) {
  SELFRL_CHECK(cfg.clamp_negative > 0, "nft.clamp_negative must be > 0, got ", cfg.clamp_negative);
  SELFRL_CHECK(cfg.neg_weight >= 0, "nft.neg_weight must be >= 0, got ", cfg.neg_weight);
  SELFRL_CHECK(cfg.normalize >= 0 && cfg.normalize <= 2, "nft.normalize must be 0, 1 or 2, got ", cfg.normalize);
}

torch::Tensor nft_loss(const torch::Tensor& logps, const torch::Tensor& old_logps, const torch::Tensor& mask,
                       const torch::Tensor& correct, const torch::Tensor& r_hat, const NFTLossConfig& cfg,
                       double num_items) {
  validate(cfg);
  SELFRL_CHECK(logps.sizes() == old_logps.sizes() && logps.sizes() == mask.sizes(), "nft_loss: shapes ", logps.sizes(),
               ", ", old_logps.sizes(), ", ", mask.sizes(), " differ");
  SELFRL_CHECK(
      correct.dim() == 1 && r_hat.dim() == 1 && correct.size(0) == logps.size(0) && r_hat.size(0) == logps.size(0),
      "nft_loss: correct and r_hat must be [", logps.size(0), "]");
  const auto opts = logps.options();
  const auto m = mask.to(opts.dtype());
  const auto r = r_hat.to(opts).clamp(0.02, 0.98).unsqueeze(1);
  const auto c = correct.to(opts).unsqueeze(1);
  const auto log_ratio = (logps - old_logps.to(opts)).clamp_max(10.0);
  const auto positive = -log_ratio;  // −log R
  const auto proxy = (1.0 - r * log_ratio.exp()) / (1.0 - r);
  const auto clamped = proxy + (proxy.clamp_min(cfg.clamp_negative) - proxy).detach();  // value clamped, gradient not
  const auto negative = -cfg.neg_weight * clamped.log();
  torch::Tensor w;
  if (cfg.normalize == 0)
    w = torch::ones_like(r);
  else if (cfg.normalize == 1)
    w = 1.0 - r;
  else
    w = ((1.0 - r) / r).sqrt();
  const auto per_token = (c * positive + (1.0 - c) * negative) * w;
  const auto denom = num_items > 0 ? torch::scalar_tensor(num_items, opts) : m.sum().clamp_min(1.0);
  return (per_token * m).sum() / denom;
}

}  // namespace selfrl::trainers
