// Preference losses as pure functions: DPO (TRL DPOTrainer loss types) and ScPO
// ("Self-Consistency Preference Optimization", Prasad et al. 2024). Sources and formulas:
// docs/algorithms.md.
//
// Inputs are per pair: summed completion log-probs under the policy (grad flows) and the
// reference. With Δ = (logπ(y+) − logπref(y+)) − (logπ(y−) − logπref(y−)), β = beta,
// ε = label_smoothing:
//   sigmoid : −(1−ε) logσ(βΔ) − ε logσ(−βΔ)   (ε = 0: DPO; ε > 0: cDPO, TRL ≤ 0.28 / OpenRLHF)
//   hinge   : relu(1 − βΔ)
//   ipo     : (Δ̄ − 1/(2β))², Δ̄ with each log-ratio divided by its completion's token count
//   robust  : [−(1−ε) logσ(βΔ) + ε logσ(−βΔ)] / (1 − 2ε)
//   sft     : mean NLL per token of the chosen completion
// loss = Σ_k loss_weights[k] · mean_pairs(loss_k).
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>

namespace selfrl::trainers {

struct DPOLossConfig {
  double beta = 0.1;
  double label_smoothing = 0.0;
  std::vector<std::string> loss_type = {"sigmoid"};
  std::vector<double> loss_weights;  // empty → 1 for each loss_type
  bool reference_free = false;       // reference log-probs taken as 0
};

struct PreferenceBatch {
  torch::Tensor chosen_logps;        // [P] Σ_t log π(y+_t)
  torch::Tensor rejected_logps;      // [P]
  torch::Tensor ref_chosen_logps;    // [P] (ignored when reference_free)
  torch::Tensor ref_rejected_logps;  // [P]
  torch::Tensor chosen_lengths;      // [P] token counts (ipo, sft)
  torch::Tensor rejected_lengths;    // [P]
};

struct PreferenceLossOutput {
  torch::Tensor loss;           // scalar
  torch::Tensor per_pair_loss;  // [P], weighted sum over loss types
  // TRL's metrics: β × log-ratios.
  double rewards_chosen = 0, rewards_rejected = 0, rewards_margins = 0, rewards_accuracies = 0;
};

// Validates loss types and weights (throws Error naming the bad one).
void validate(const DPOLossConfig& cfg);
PreferenceLossOutput dpo_loss(const PreferenceBatch& batch, const DPOLossConfig& cfg);

// ScPO: pairs weighted by the vote margin w = (votes(y+) − votes(y−)) / k:
//   l = w · [−logσ(βΔ)] + alpha · w · NLL(y+) / |y+|
PreferenceLossOutput scpo_loss(const PreferenceBatch& batch, const torch::Tensor& vote_margin_weights, double beta,
                               double alpha);

// SFT: −Σ logp·m / Σ m over completion tokens only (prompt tokens have m = 0).
// `num_items` > 0 replaces Σ m (the global token count, so that micro-batching does not
// change the loss).
torch::Tensor sft_loss(const torch::Tensor& token_logps, const torch::Tensor& completion_mask, double num_items = -1);

}  // namespace selfrl::trainers
