// Loss properties checked by hand: on-policy GRPO gradients, clip metrics, DPO metrics, errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "selfrl/trainers/advantages.h"
#include "selfrl/trainers/grpo_loss.h"
#include "selfrl/trainers/preference_loss.h"
#include "test_util.h"

using namespace selfrl::trainers;

TEST(GrpoLoss, OnPolicyLossIsMinusMeanAdvantageAndGradientIsMinusAdvantage) {
  // With old = logps (μ = 1), ratio = 1: dapo loss = −Σ A_i m_it / Σ m; d/dlogp_it = −A_i m_it / Σ m.
  auto logps = torch::tensor({{-1.0, -2.0, -0.5}, {-0.1, -3.0, -1.0}}, torch::kDouble).requires_grad_(true);
  GRPOLossInputs in;
  in.logps = logps;
  in.mask = torch::tensor({{1.0, 1.0, 0.0}, {1.0, 1.0, 1.0}}, torch::kDouble);
  in.advantages = torch::tensor({2.0, -1.0}, torch::kDouble);
  const auto out = grpo_loss(in, GRPOLossConfig{});
  EXPECT_NEAR(out.loss.item<double>(), -(2.0 * 2 - 1.0 * 3) / 5.0, 1e-12);
  out.loss.backward();
  const auto expected = torch::tensor({{-0.4, -0.4, 0.0}, {0.2, 0.2, 0.2}}, torch::kDouble);
  EXPECT_TRUE(torch::allclose(logps.grad(), expected, 0, 1e-12)) << logps.grad();
  EXPECT_EQ(out.clip_ratio_region_mean, 0.0);
}

TEST(GrpoLoss, ClipMetricsCountTheRightTokens) {
  // Ratios e^{+0.5} (above 1.28) and e^{−0.5} (below 0.8); only A > 0 high / A < 0 low count.
  GRPOLossInputs in;
  in.logps = torch::tensor({{0.5, -0.5}, {0.5, -0.5}}, torch::kDouble);
  in.old_logps = torch::zeros({2, 2}, torch::kDouble);
  in.mask = torch::ones({2, 2}, torch::kDouble);
  in.advantages = torch::tensor({1.0, -1.0}, torch::kDouble);
  GRPOLossConfig cfg;
  cfg.epsilon_high = 0.28;
  const auto out = grpo_loss(in, cfg);
  EXPECT_DOUBLE_EQ(out.clip_ratio_high_mean, 0.25);  // token (0, 0)
  EXPECT_DOUBLE_EQ(out.clip_ratio_low_mean, 0.25);   // token (1, 1)
  EXPECT_DOUBLE_EQ(out.clip_ratio_region_mean, 0.5);
}

TEST(GrpoLoss, KlIsZeroAtTheReferenceAndNeedsIt) {
  GRPOLossInputs in;
  in.logps = torch::tensor({{-1.0, -2.0}}, torch::kDouble);
  in.ref_logps = in.logps.clone();
  in.mask = torch::ones({1, 2}, torch::kDouble);
  in.advantages = torch::zeros({1}, torch::kDouble);
  GRPOLossConfig cfg;
  cfg.beta = 0.1;
  EXPECT_NEAR(grpo_loss(in, cfg).kl, 0.0, 1e-15);
  in.ref_logps = torch::Tensor();
  EXPECT_SELFRL_ERROR(grpo_loss(in, cfg), "needs ref_logps");
  EXPECT_SELFRL_ERROR(parse_grpo_loss_type("ppo"), "unknown GRPO loss_type 'ppo'", "grpo, bnpo, dr_grpo, dapo");
}

TEST(Advantages, HandComputedGroups) {
  // Group [1, 0, 0, 1]: mean 0.5, Bessel std = sqrt(1/3).
  const auto r = torch::tensor({1.0, 0.0, 0.0, 1.0}, torch::kDouble).unsqueeze(1);
  const auto a = compute_advantages(r, {}, 4, ScaleRewards::kGroup);
  const double s = std::sqrt(1.0 / 3.0);
  EXPECT_NEAR(a.advantages[0].item<double>(), 0.5 / (s + 1e-4), 1e-12);
  EXPECT_NEAR(a.advantages[1].item<double>(), -0.5 / (s + 1e-4), 1e-12);
  EXPECT_EQ(a.frac_reward_zero_std, 0.0);
  const auto same = compute_advantages(torch::ones({4, 1}, torch::kDouble), {}, 2, ScaleRewards::kGroup);
  EXPECT_EQ(same.frac_reward_zero_std, 1.0);
  EXPECT_EQ(same.advantages.abs().sum().item<double>(), 0.0);
  EXPECT_SELFRL_ERROR(compute_advantages(torch::ones({5, 1}), {}, 2, ScaleRewards::kGroup),
                      "not a multiple of num_generations");
}

TEST(DpoLoss, MetricsAndValidation) {
  PreferenceBatch b;
  b.chosen_logps = torch::tensor({-1.0, -5.0}, torch::kDouble);
  b.rejected_logps = torch::tensor({-3.0, -4.0}, torch::kDouble);
  b.ref_chosen_logps = torch::tensor({-2.0, -5.0}, torch::kDouble);
  b.ref_rejected_logps = torch::tensor({-2.0, -5.0}, torch::kDouble);
  DPOLossConfig cfg;
  const auto out = dpo_loss(b, cfg);
  // Δ = [2, -1] → loss = mean(−log σ(0.2), −log σ(−0.1)).
  const double expected = 0.5 * (std::log1p(std::exp(-0.2)) + std::log1p(std::exp(0.1)));
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-12);
  EXPECT_NEAR(out.rewards_chosen, 0.1 * (1.0 + 0.0) / 2, 1e-12);
  EXPECT_NEAR(out.rewards_accuracies, 0.5, 1e-12);
  cfg.loss_type = {"simpo"};
  EXPECT_SELFRL_ERROR(dpo_loss(b, cfg), "unknown DPO loss_type 'simpo'");
  cfg.loss_type = {"sigmoid", "sft"};
  cfg.loss_weights = {1.0};
  EXPECT_SELFRL_ERROR(dpo_loss(b, cfg), "loss_weights has 1 entries for 2 loss types");
  DPOLossConfig free;
  free.reference_free = true;
  b.ref_chosen_logps = torch::Tensor();
  EXPECT_NO_THROW(dpo_loss(b, free));
}
