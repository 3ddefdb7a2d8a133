// The GRPO policy loss as a pure function of tensors, following TRL's GRPOTrainer._compute_loss
// (names and defaults as GRPOConfig: beta, epsilon, epsilon_high, delta, loss_type,
// importance_sampling_level). Formulas with sources: docs/algorithms.md.
//
// Per token t of completion i (mask m_it):
//   log_w  = logp − old_logp                                   (token level)
//          = Σ_t (logp − old_logp) m / Σ_t m, per sequence      (sequence level, GSPO)
//   c1 = exp(log_w),  c2 = clamp(c1, 1 − epsilon, 1 + epsilon_high),  c1 ← min(c1, delta) if delta
//   l_it = −min(c1 A_i, c2 A_i) + beta · k3_it,   k3 = exp(ref − logp) − (ref − logp) − 1
// aggregated by loss_type:
//   grpo    : mean_i( Σ_t l m / Σ_t m ) / GA
//   bnpo    : Σ l m / Σ m / GA
//   dr_grpo : Σ l m / (B · max_completion_length) / GA
//   dapo    : Σ l m / (num_items_in_batch / num_processes)   (default; num_items_in_batch =
//             completion tokens of the whole generation batch over all processes)
#pragma once

#include <optional>
#include <string>

#include <torch/types.h>

namespace selfrl::trainers {

enum class GRPOLossType { kGrpo, kBnpo, kDrGrpo, kDapo };
GRPOLossType parse_grpo_loss_type(const std::string& name);
std::string to_string(GRPOLossType t);

enum class ImportanceSamplingLevel { kToken, kSequence };
ImportanceSamplingLevel parse_importance_sampling_level(const std::string& name);

struct GRPOLossConfig {
  double beta = 0.0;
  double epsilon = 0.2;
  std::optional<double> epsilon_high;  // defaults to epsilon
  std::optional<double> delta;         // two-sided clipping (INTELLECT-2), off by default
  GRPOLossType loss_type = GRPOLossType::kDapo;
  ImportanceSamplingLevel importance_sampling_level = ImportanceSamplingLevel::kToken;
  int64_t max_completion_length = 512;  // dr_grpo's constant normalizer
};

struct GRPOLossInputs {
  torch::Tensor logps;       // [B, T] log-probs of the sampled tokens under the policy (grad flows)
  torch::Tensor old_logps;   // [B, T] under the policy that sampled; undefined → logps.detach()
  torch::Tensor ref_logps;   // [B, T] under the reference; required when beta != 0
  torch::Tensor advantages;  // [B]
  torch::Tensor mask;        // [B, T] 1 for completion tokens that count, 0 for padding
  // dapo's normalizer; <= 0 → the mask sum of this batch (one process, one micro-batch).
  double num_items_in_batch = -1;
  int64_t gradient_accumulation_steps = 1;
  int64_t num_processes = 1;
  // Data parallel: when > 0, the loss is this micro-batch's share of the *global* loss,
  // numerator / global_normalizer, with no division by gradient_accumulation_steps, so summing
  // gradients over micro-batches and ranks gives the gradient of the loss on the whole global
  // batch. The numerator is Σ_i (Σ_t l m / Σ_t m) for grpo and Σ l m otherwise; the caller
  // passes the global number of sequences (grpo), completion tokens (bnpo, dapo) or
  // sequences × max_completion_length (dr_grpo). See global_grpo_normalizer().
  double global_normalizer = -1;
};

// The global_normalizer of `type` for a global batch of `num_sequences` rows holding
// `num_tokens` counted completion tokens.
double global_grpo_normalizer(GRPOLossType type, double num_sequences, double num_tokens,
                              int64_t max_completion_length);

struct GRPOLossOutput {
  torch::Tensor loss;            // scalar
  torch::Tensor per_token_loss;  // [B, T] before masking and aggregation
  torch::Tensor per_token_kl;    // [B, T] (undefined when beta == 0)
  // Masked token means, as TRL logs them.
  double kl = 0;
  double clip_ratio_low_mean = 0;     // c1 < 1 − epsilon with A < 0
  double clip_ratio_high_mean = 0;    // c1 > 1 + epsilon_high with A > 0
  double clip_ratio_region_mean = 0;  // either
};

GRPOLossOutput grpo_loss(const GRPOLossInputs& in, const GRPOLossConfig& cfg);

}  // namespace selfrl::trainers
