// GRPO policy loss (see selfrl/trainers/grpo_loss.h and docs/algorithms.md).
#include "selfrl/trainers/grpo_loss.h"

#include <torch/torch.h>

#include "selfrl/core/error.h"

namespace selfrl::trainers {

GRPOLossType parse_grpo_loss_type(const std::string& name) {
  if (name == "grpo") return GRPOLossType::kGrpo;
  if (name == "bnpo") return GRPOLossType::kBnpo;
  if (name == "dr_grpo") return GRPOLossType::kDrGrpo;
  if (name == "dapo") return GRPOLossType::kDapo;
  throw Error("unknown GRPO loss_type '" + name + "'").hint("use one of grpo, bnpo, dr_grpo, dapo");
}

std::string to_string(GRPOLossType t) {
  switch (t) {
    case GRPOLossType::kGrpo:
      return "grpo";
    case GRPOLossType::kBnpo:
      return "bnpo";
    case GRPOLossType::kDrGrpo:
      return "dr_grpo";
    default:
      return "dapo";
  }
}

ImportanceSamplingLevel parse_importance_sampling_level(const std::string& name) {
  if (name == "token") return ImportanceSamplingLevel::kToken;
  if (name == "sequence") return ImportanceSamplingLevel::kSequence;
  throw Error("unknown importance_sampling_level '" + name + "'").hint("use token or sequence");
}

double global_grpo_normalizer(GRPOLossType type, double num_sequences, double num_tokens,
                              int64_t max_completion_length) {
  switch (type) {
    case GRPOLossType::kGrpo:
      return std::max(1.0, num_sequences);
    case GRPOLossType::kDrGrpo:
      return std::max(1.0, num_sequences) * static_cast<double>(max_completion_length);
    default:
      return std::max(1.0, num_tokens);
  }
}

GRPOLossOutput grpo_loss(const GRPOLossInputs& in, const GRPOLossConfig& cfg) {
  SELFRL_CHECK(in.logps.defined() && in.logps.dim() == 2, "grpo_loss: logps must be [B, T]");
  SELFRL_CHECK(in.mask.defined() && in.mask.sizes() == in.logps.sizes(), "grpo_loss: mask must match logps ",
               in.logps.sizes());
  SELFRL_CHECK(in.advantages.defined() && in.advantages.dim() == 1 && in.advantages.size(0) == in.logps.size(0),
               "grpo_loss: advantages must be [B]");
  SELFRL_CHECK(cfg.beta == 0 || in.ref_logps.defined(), "grpo_loss: beta = ", cfg.beta, " needs ref_logps");
  SELFRL_CHECK(in.gradient_accumulation_steps >= 1 && in.num_processes >= 1,
               "grpo_loss: gradient_accumulation_steps and num_processes must be >= 1");
  const auto& logps = in.logps;
  const auto mask = in.mask.to(logps.scalar_type());
  const auto old = in.old_logps.defined() ? in.old_logps : logps.detach();
  const auto adv = in.advantages.to(logps.scalar_type()).unsqueeze(1);  // [B, 1]
  const double eps_low = cfg.epsilon;
  const double eps_high = cfg.epsilon_high.value_or(cfg.epsilon);

  const auto log_ratio = logps - old;
  torch::Tensor log_w;
  if (cfg.importance_sampling_level == ImportanceSamplingLevel::kToken) {
    log_w = log_ratio;
  } else {
    log_w = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)).unsqueeze(-1);  // [B, 1]
  }
  auto coef_1 = torch::exp(log_w);
  const auto coef_2 = torch::clamp(coef_1, 1 - eps_low, 1 + eps_high);
  if (cfg.delta) coef_1 = torch::clamp_max(coef_1, *cfg.delta);
  auto per_token_loss = -torch::min(coef_1 * adv, coef_2 * adv);

  GRPOLossOutput out;
  const auto token_count = mask.sum().clamp_min(1.0);
  auto masked_mean = [&](const torch::Tensor& x) {
    return ((x.to(mask.scalar_type()).expand_as(mask) * mask).sum() / token_count).item<double>();
  };
  if (cfg.beta != 0) {
    const auto d = in.ref_logps - logps;
    out.per_token_kl = torch::exp(d) - d - 1;
    per_token_loss = per_token_loss + cfg.beta * out.per_token_kl;
    out.kl = masked_mean(out.per_token_kl.detach());
  }

  const double ga = static_cast<double>(in.gradient_accumulation_steps);
  torch::Tensor loss;
  if (in.global_normalizer > 0) {
    const auto numerator = cfg.loss_type == GRPOLossType::kGrpo
                               ? ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)).sum()
                               : (per_token_loss * mask).sum();
    loss = numerator / in.global_normalizer;
  } else
    switch (cfg.loss_type) {
      case GRPOLossType::kGrpo:
        loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)).mean() / ga;
        break;
      case GRPOLossType::kBnpo:
        loss = (per_token_loss * mask).sum() / token_count / ga;
        break;
      case GRPOLossType::kDrGrpo:
        loss = (per_token_loss * mask).sum() / (static_cast<double>(logps.size(0)) * cfg.max_completion_length) / ga;
        break;
      case GRPOLossType::kDapo: {
        const double items = in.num_items_in_batch > 0 ? in.num_items_in_batch : token_count.item<double>();
        loss = (per_token_loss * mask).sum() / (items / static_cast<double>(in.num_processes));
        break;
      }
    }
  out.loss = loss;
  out.per_token_loss = per_token_loss;

  const auto c1 = coef_1.detach();
  const auto a = adv.detach();
  const auto low = (c1 < 1 - eps_low) & (a < 0);
  const auto high = (c1 > 1 + eps_high) & (a > 0);
  out.clip_ratio_low_mean = masked_mean(low);
  out.clip_ratio_high_mean = masked_mean(high);
  out.clip_ratio_region_mean = masked_mean(low | high);
  return out;
}

}  // namespace selfrl::trainers
