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

// NFT, negative-aware fine-tuning ("Bridging Supervised Learning and Reinforcement Learning in
// Math Reasoning", Chen et al. 2025; the authors' NVlabs/NFT code). A sample of a prompt whose
// group has accuracy r̂ (its share of correct samples, 0 < r̂ < 1; clamped to [0.02, 0.98]), per
// completion token t with R_t = exp(min(logπθ_t − logπold_t, 10)):
//   correct  ℓ_t = −log R_t                                          (SFT, as a likelihood ratio)
//   wrong    ℓ_t = −neg_weight · log max((1 − r̂ R_t) / (1 − r̂), clamp_negative)
// The wrong term is the likelihood of the implicit negative policy (πold − r̂ πθ)/(1 − r̂); its
// max() clamps the value only (the gradient is the unclamped one, as the authors' code). Each
// token is weighted by w(r̂): normalize 0 → 1, 1 → 1 − r̂ (default), 2 → √((1 − r̂)/r̂).
//   loss = Σ_t w ℓ_t m_t / num_items   (num_items ≤ 0: Σ m)
// Strictly on-policy (R = 1) its gradient is that of −(r − r̂)·w·logπθ: with normalize 1 the
// Dr. GRPO advantage, with 2 GRPO's for binary rewards.
struct NFTLossConfig {
  double neg_weight = 1.0;      // 0: RFT (positives only); the authors' default 1
  double clamp_negative = 1.0;  // > 0
  int64_t normalize = 1;        // 0, 1, 2 as above
};
void validate(const NFTLossConfig& cfg);
// logps, old_logps, mask: [B, C]; correct, r_hat: [B] (1/0 and the sample's group accuracy).
torch::Tensor nft_loss(const torch::Tensor& logps, const torch::Tensor& old_logps, const torch::Tensor& mask,
                       const torch::Tensor& correct, const torch::Tensor& r_hat, const NFTLossConfig& cfg,
                       double num_items = -1);

}  // namespace selfrl::trainers
