// The data-parallel loss normalization: for every loss_type, the shares of the global loss
// computed on any split of the batch (ranks × micro-batches) with global_normalizer add up to
// the single-batch loss, and so do their gradients.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "selfrl/trainers/grpo_loss.h"

namespace selfrl::trainers {
namespace {

TEST(GlobalNormalization, AnySplitGivesTheWholeBatchLossAndGradient) {
  torch::manual_seed(3);
  const int64_t B = 6, T = 5;
  const auto base = torch::randn({B, T}, torch::kDouble) * 0.3 - 1.0;
  const auto old = base + torch::randn({B, T}, torch::kDouble) * 0.1;
  const auto ref = base + torch::randn({B, T}, torch::kDouble) * 0.1;
  const auto adv = torch::randn({B}, torch::kDouble);
  auto mask = torch::ones({B, T}, torch::kDouble);
  mask[0].slice(0, 3).zero_();  // uneven lengths
  mask[2].slice(0, 1).zero_();
  mask[5].slice(0, 4).zero_();
  for (auto type : {GRPOLossType::kGrpo, GRPOLossType::kBnpo, GRPOLossType::kDrGrpo, GRPOLossType::kDapo}) {
    GRPOLossConfig cfg;
    cfg.loss_type = type;
    cfg.beta = 0.04;
    cfg.max_completion_length = T;
    // Reference: one process, one micro-batch.
    auto whole = base.clone().requires_grad_(true);
    GRPOLossInputs in{whole, old, ref, adv, mask};
    const auto l_ref = grpo_loss(in, cfg).loss;
    l_ref.backward();
    // Split as 3 "ranks" of uneven sizes, each with its own micro-batches.
    auto parts = base.clone().requires_grad_(true);
    const double norm = global_grpo_normalizer(type, B, mask.sum().item<double>(), T);
    double total = 0;
    for (auto [b0, b1] : std::vector<std::pair<int64_t, int64_t>>{{0, 1}, {1, 4}, {4, 6}}) {
      GRPOLossInputs p{parts.slice(0, b0, b1), old.slice(0, b0, b1), ref.slice(0, b0, b1), adv.slice(0, b0, b1),
                       mask.slice(0, b0, b1)};
      p.global_normalizer = norm;
      const auto l = grpo_loss(p, cfg).loss;
      l.backward();
      total += l.item<double>();
    }
    EXPECT_NEAR(total, l_ref.item<double>(), 1e-12) << to_string(type);
    EXPECT_TRUE(torch::allclose(parts.grad(), whole.grad(), 1e-10, 1e-12)) << to_string(type);
  }
}

}  // namespace
}  // namespace selfrl::trainers
