// NFT's loss (trainers::nft_loss) against values worked out by hand, and its on-policy identity:
// at R = 1 the gradient is that of −(r − r̂)·w·logπ (normalize 1: w = 1 − r̂, the Dr. GRPO
// advantage r − r̂; normalize 2: GRPO's (r − r̂)/√(r̂(1 − r̂)) for binary rewards).
#include <gtest/gtest.h>

#include <cmath>

#include "selfrl/trainers/preference_loss.h"
#include "test_util.h"

namespace selfrl::trainers {
namespace {

torch::Tensor t2(std::vector<double> v) { return torch::tensor(v, torch::kDouble).view({2, 2}); }

TEST(NftLoss, ValueAndGradientByHand) {
  // Row 0: right, r̂ = 0.25; tokens with π/πold = 0.5/0.25 = 2 and 0.4/0.4 = 1.
  // Row 1: wrong, r̂ = 0.25; token 0 with R = 0.3/0.6 = 0.5, token 1 masked out.
  auto logps = t2({std::log(0.5), std::log(0.4), std::log(0.3), std::log(0.9)}).requires_grad_(true);
  const auto old = t2({std::log(0.25), std::log(0.4), std::log(0.6), std::log(0.1)});
  const auto mask = t2({1, 1, 1, 0});
  const auto correct = torch::tensor({1.0, 0.0}, torch::kDouble), r_hat = torch::tensor({0.25, 0.25}, torch::kDouble);
  NFTLossConfig cfg;  // neg_weight 1, clamp_negative 1, normalize 1: w = 1 − r̂ = 0.75
  const auto loss = nft_loss(logps, old, mask, correct, r_hat, cfg);
  // right: −log 2 and −log 1 = 0; wrong: proxy = (1 − 0.25·0.5)/0.75 = 7/6 ≥ 1, so −log(7/6).
  // Σ w ℓ m / Σ m = 0.75 (−log 2 − log(7/6)) / 3.
  EXPECT_NEAR(loss.item<double>(), 0.75 * (-std::log(2.0) - std::log(7.0 / 6.0)) / 3.0, 1e-12);
  loss.backward();
  const auto g = logps.grad();
  // d/dlogp: right −w/3; wrong −(1/proxy)·(−r̂R/(1 − r̂))·w/3 = (6/7)(1/6)(0.75/3) = 0.25/7.
  EXPECT_NEAR(g[0][0].item<double>(), -0.25, 1e-12);
  EXPECT_NEAR(g[0][1].item<double>(), -0.25, 1e-12);
  EXPECT_NEAR(g[1][0].item<double>(), 0.25 / 7.0, 1e-12);
  EXPECT_EQ(g[1][1].item<double>(), 0.0);  // masked
}

TEST(NftLoss, TheClampBoundsTheValueNotTheGradient) {
  // A wrong token whose probability doubled (R = 2, r̂ = 0.25): proxy = (1 − 0.5)/0.75 = 2/3 < 1,
  // so the value is −log 1 = 0, while the gradient is that of −log(proxy) at the clamp:
  // −(1/1)·(−r̂R/(1 − r̂)) = 2/3, times w = 0.75 and / 1 token.
  auto logps = torch::tensor({std::log(0.4)}, torch::kDouble).view({1, 1}).requires_grad_(true);
  const auto old = torch::tensor({std::log(0.2)}, torch::kDouble).view({1, 1});
  const auto loss = nft_loss(logps, old, torch::ones({1, 1}, torch::kDouble), torch::tensor({0.0}, torch::kDouble),
                             torch::tensor({0.25}, torch::kDouble), NFTLossConfig{});
  EXPECT_NEAR(loss.item<double>(), 0.0, 1e-15);
  loss.backward();
  EXPECT_NEAR(logps.grad()[0][0].item<double>(), 0.75 * 2.0 / 3.0, 1e-12);
  // With clamp_negative 0.5 the value is −log(2/3) and the gradient (1/(2/3))·(2/3)·0.75 = 0.75.
  auto lp2 = logps.detach().clone().requires_grad_(true);
  NFTLossConfig half;
  half.clamp_negative = 0.5;
  const auto l2 = nft_loss(lp2, old, torch::ones({1, 1}, torch::kDouble), torch::tensor({0.0}, torch::kDouble),
                           torch::tensor({0.25}, torch::kDouble), half);
  EXPECT_NEAR(l2.item<double>(), 0.75 * -std::log(2.0 / 3.0), 1e-12);
  l2.backward();
  EXPECT_NEAR(lp2.grad()[0][0].item<double>(), 0.75, 1e-12);
}

TEST(NftLoss, OnPolicyGradientIsTheGroupRelativeAdvantage) {
  // Four samples of one prompt, one right (r̂ = 0.25), three tokens each, π = πold.
  const auto lp = torch::log(torch::rand({4, 3}, torch::kDouble) * 0.8 + 0.1);
  const auto mask = torch::ones({4, 3}, torch::kDouble);
  const auto correct = torch::tensor({1.0, 0.0, 0.0, 0.0}, torch::kDouble);
  const auto r_hat = torch::full({4}, 0.25, torch::kDouble);
  for (int64_t normalize : {1, 2}) {
    auto logps = lp.clone().requires_grad_(true);
    NFTLossConfig cfg;
    cfg.normalize = normalize;
    nft_loss(logps, lp, mask, correct, r_hat, cfg).backward();
    const double scale = normalize == 1 ? 1.0 : 1.0 / std::sqrt(0.25 * 0.75);
    for (int64_t i = 0; i < 4; ++i) {
      const double advantage = (correct[i].item<double>() - 0.25) * scale;  // r − r̂ (normalize 2: / std)
      for (int64_t t = 0; t < 3; ++t)
        EXPECT_NEAR(logps.grad()[i][t].item<double>(), -advantage / 12.0, 1e-12) << normalize << " " << i;
    }
  }
}

TEST(NftLoss, NegWeightZeroIsRejectionSamplingFineTuning) {
  auto logps = torch::log(torch::tensor({0.5, 0.2}, torch::kDouble)).view({2, 1}).requires_grad_(true);
  const auto old = torch::log(torch::tensor({0.25, 0.1}, torch::kDouble)).view({2, 1});
  NFTLossConfig rft;
  rft.neg_weight = 0;
  rft.normalize = 0;
  const auto loss = nft_loss(logps, old, torch::ones({2, 1}, torch::kDouble), torch::tensor({1.0, 0.0}, torch::kDouble),
                             torch::tensor({0.5, 0.5}, torch::kDouble), rft);
  EXPECT_NEAR(loss.item<double>(), -std::log(2.0) / 2.0, 1e-12);  // only the right sample counts
  loss.backward();
  EXPECT_EQ(logps.grad()[1][0].item<double>(), 0.0);
}

TEST(NftLoss, BadSettingsAreClearErrors) {
  NFTLossConfig c;
  c.clamp_negative = 0;
  EXPECT_SELFRL_ERROR(validate(c), "clamp_negative must be > 0");
  c = {};
  c.normalize = 3;
  EXPECT_SELFRL_ERROR(validate(c), "normalize must be 0, 1 or 2");
  const auto x = torch::zeros({2, 2});
  EXPECT_SELFRL_ERROR(nft_loss(x, x, x, torch::zeros({3}), torch::zeros({2}), NFTLossConfig{}),
                      "correct and r_hat must be [2]");
}

}  // namespace
}  // namespace selfrl::trainers
