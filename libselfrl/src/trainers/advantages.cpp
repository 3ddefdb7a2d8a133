// Group-relative advantages (see selfrl/trainers/advantages.h).
#include "selfrl/trainers/advantages.h"

#include <torch/torch.h>

#include "selfrl/core/error.h"

namespace selfrl::trainers {

ScaleRewards parse_scale_rewards(const std::string& name) {
  if (name == "group" || name == "true") return ScaleRewards::kGroup;
  if (name == "batch") return ScaleRewards::kBatch;
  if (name == "none" || name == "false") return ScaleRewards::kNone;
  throw Error("unknown scale_rewards '" + name + "'").hint("use group, batch or none");
}

std::string to_string(ScaleRewards s) {
  switch (s) {
    case ScaleRewards::kGroup:
      return "group";
    case ScaleRewards::kBatch:
      return "batch";
    default:
      return "none";
  }
}

namespace {
// Mean and Bessel std over the finite entries of each row of x [R, C]; std = 0 below 2 entries.
std::pair<torch::Tensor, torch::Tensor> nan_mean_std(const torch::Tensor& x) {
  const auto valid = x.isfinite();
  const auto count = valid.sum(1).to(torch::kDouble);
  const auto filled = torch::where(valid, x, torch::zeros_like(x));
  const auto mean = filled.sum(1) / count.clamp_min(1);
  const auto dev = torch::where(valid, x - mean.unsqueeze(1), torch::zeros_like(x));
  const auto var = dev.pow(2).sum(1) / (count - 1).clamp_min(1);
  const auto std = torch::where(count >= 2, var.sqrt(), torch::zeros_like(var));
  return {mean, std};
}
}  // namespace

Advantages compute_advantages(const torch::Tensor& rewards_per_func, const torch::Tensor& reward_weights,
                              int64_t num_generations, ScaleRewards scale_rewards) {
  SELFRL_CHECK(rewards_per_func.dim() == 2, "rewards_per_func must be [N, F], got ", rewards_per_func.sizes());
  const int64_t n = rewards_per_func.size(0), f = rewards_per_func.size(1);
  SELFRL_CHECK(num_generations >= 1, "num_generations must be >= 1, got ", num_generations);
  SELFRL_CHECK(n % num_generations == 0, "the number of completions (", n, ") is not a multiple of num_generations (",
               num_generations, ")");
  auto r = rewards_per_func.detach().to(torch::kCPU, torch::kDouble);
  auto w = reward_weights.defined() ? reward_weights.detach().to(torch::kCPU, torch::kDouble)
                                    : torch::ones({f}, torch::kDouble);
  SELFRL_CHECK(w.dim() == 1 && w.size(0) == f, "reward_weights has ", w.numel(), " entries for ", f,
               " reward functions");

  Advantages out;
  const auto finite = r.isfinite();
  out.unscorable = ~finite.any(1);
  out.num_unscorable = out.unscorable.sum().item<int64_t>();
  auto total = torch::where(finite, r * w.unsqueeze(0), torch::zeros_like(r)).sum(1);
  total = torch::where(out.unscorable, torch::full_like(total, std::numeric_limits<double>::quiet_NaN()), total);
  out.rewards = total;

  const auto grouped = total.view({-1, num_generations});
  auto [mean, std] = nan_mean_std(grouped);
  out.group_mean = mean.repeat_interleave(num_generations);
  out.group_std = std.repeat_interleave(num_generations);
  out.zero_std_groups = std.abs() < 1e-12;
  out.frac_reward_zero_std = out.zero_std_groups.to(torch::kDouble).mean().item<double>();

  auto adv = total - out.group_mean;
  if (scale_rewards == ScaleRewards::kGroup) {
    adv = adv / (out.group_std + kAdvantageEps);
  } else if (scale_rewards == ScaleRewards::kBatch) {
    auto [bmean, bstd] = nan_mean_std(total.view({1, -1}));
    adv = adv / (bstd + kAdvantageEps);
  }
  out.advantages = torch::where(out.unscorable, torch::zeros_like(adv), adv);
  return out;
}

}  // namespace selfrl::trainers
