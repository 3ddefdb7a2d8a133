// Group-relative advantages for GRPO (DeepSeekMath; TRL GRPOTrainer._generate_and_score_completions).
//
// rewards_per_func is [N, F]: N = num_prompts × num_generations completions (a prompt's G
// completions contiguous), F reward functions; NaN marks a function that could not score a
// sample. reward_i = Σ_f w_f r_if over the finite entries; a row whose every entry is NaN is
// *unscorable*: it is left out of its group's statistics and gets advantage 0.
//   A_i = r_i − mean_group(r)                         scale_rewards = none
//   A_i = (r_i − mean_group(r)) / (std_group(r) + eps)  scale_rewards = group (default)
//   A_i = (r_i − mean_group(r)) / (std_batch(r) + eps)  scale_rewards = batch
// std is Bessel-corrected (n − 1), eps = 1e-4, as TRL.
#pragma once

#include <string>

#include <torch/types.h>

namespace selfrl::trainers {

enum class ScaleRewards { kGroup, kBatch, kNone };
ScaleRewards parse_scale_rewards(const std::string& name);  // "group" | "batch" | "none"
std::string to_string(ScaleRewards s);

constexpr double kAdvantageEps = 1e-4;

struct Advantages {
  torch::Tensor rewards;            // [N] weighted sum (NaN for unscorable rows)
  torch::Tensor advantages;         // [N] (0 for unscorable rows)
  torch::Tensor group_mean;         // [N] mean of the row's group, repeated per row
  torch::Tensor group_std;          // [N] Bessel std of the row's group (0 when < 2 scorable)
  torch::Tensor unscorable;         // [N] bool
  torch::Tensor zero_std_groups;    // [num_groups] bool: every scorable reward of the group equal
  double frac_reward_zero_std = 0;  // fraction of groups whose reward std is 0 (TRL's metric)
  int64_t num_unscorable = 0;
};

// `reward_weights` is [F] (undefined → all 1). Computed in float64.
Advantages compute_advantages(const torch::Tensor& rewards_per_func, const torch::Tensor& reward_weights,
                              int64_t num_generations, ScaleRewards scale_rewards);

}  // namespace selfrl::trainers
