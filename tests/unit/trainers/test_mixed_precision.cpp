// bf16 mixed precision on CPU autocast: the guard restores the autocast state (exceptions
// included), SFT / GRPO losses and gradients under autocast stay close to float32, gradients,
// parameters and optimizer state stay float32, and a short bf16 SFT run still learns.
// Tolerances come from measurements on these tiny models (see docs/model.md).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "../model/tiny_models.h"
#include "selfrl/core/autocast.h"
#include "selfrl/rewards/builtin_rewards.h"
#include "selfrl/trainers/grpo_loss.h"
#include "selfrl/trainers/grpo_trainer.h"
#include "selfrl/trainers/preference_loss.h"
#include "selfrl/trainers/sequence_batch.h"
#include "selfrl/trainers/sft_trainer.h"
#include "grad_compare.h"
#include "grpo_toy_step.h"
#include "test_util.h"

using namespace selfrl;
using selfrl::test::grads_of;
using selfrl::test::relative_grad_diff;

namespace {

constexpr auto kCpu = c10::DeviceType::CPU;

trainers::SequenceBatch random_batch(int64_t rows, int64_t vocab, uint64_t seed) {
  auto gen = torch::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<std::vector<int64_t>> prompts, completions;
  for (int64_t i = 0; i < rows; ++i) {
    auto p = torch::randint(1, vocab, {3 + i % 4}, gen, torch::kLong);
    auto c = torch::randint(1, vocab, {5 + i % 3}, gen, torch::kLong);
    prompts.emplace_back(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + p.numel());
    completions.emplace_back(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
  }
  return trainers::pack_sequences(prompts, completions, 0);
}

void expect_float32_finite_grads(model::CausalLM& m) {
  for (auto& p : m.named_parameters()) {
    EXPECT_EQ(p.value().scalar_type(), torch::kFloat) << p.key();
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_EQ(p.value().grad().scalar_type(), torch::kFloat) << p.key();
    EXPECT_TRUE(p.value().grad().isfinite().all().item<bool>()) << p.key();
  }
}

}  // namespace

TEST(MixedPrecision, GuardSetsAndRestoresTheAutocastState) {
  ASSERT_FALSE(autocast_enabled(kCpu));
  const auto dtype_before = autocast_dtype(kCpu);
  {
    AutocastGuard g(kCpu, true);
    EXPECT_TRUE(autocast_enabled(kCpu));
    EXPECT_EQ(autocast_dtype(kCpu), torch::kBFloat16);
    auto a = torch::randn({4, 4}), b = torch::randn({4, 4});
    EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kBFloat16);  // CPU autocast is on
    {
      AutocastGuard off(kCpu, false);  // nested: off, then back on
      EXPECT_FALSE(autocast_enabled(kCpu));
      EXPECT_EQ(torch::matmul(a, b).scalar_type(), torch::kFloat);
    }
    EXPECT_TRUE(autocast_enabled(kCpu));
  }
  EXPECT_FALSE(autocast_enabled(kCpu));
  EXPECT_EQ(autocast_dtype(kCpu), dtype_before);
  try {
    AutocastGuard g(kCpu, true);
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {}
  EXPECT_FALSE(autocast_enabled(kCpu));
  EXPECT_SELFRL_ERROR(AutocastGuard(kCpu, true, torch::kHalf), "CPU autocast supports bfloat16 only");
  EXPECT_FALSE(autocast_enabled(kCpu));
}

TEST(MixedPrecision, SftLossAndGradientsUnderAutocastStayCloseToFloat32) {
  auto m = test::tiny_model("qwen3", 5);  // q/k norms too
  const auto batch = random_batch(6, 61, 1);
  const auto mask = batch.completion_mask;
  const double n = mask.sum().item<double>();
  double loss[2];
  std::vector<torch::Tensor> grads[2];
  for (int bf16 = 0; bf16 < 2; ++bf16) {
    m->zero_grad();
    const auto stats = trainers::completion_token_stats(*m, batch, 1.0, false, 7, bf16 == 1);
    EXPECT_EQ(stats.logprobs.scalar_type(), torch::kFloat);
    EXPECT_FALSE(autocast_enabled(kCpu));
    const auto l = trainers::sft_loss(stats.logprobs, mask, n);
    EXPECT_EQ(l.scalar_type(), torch::kFloat);
    l.backward();
    loss[bf16] = l.item<double>();
    expect_float32_finite_grads(*m);
    grads[bf16] = grads_of(*m);
  }
  const double rel = std::abs(loss[1] - loss[0]) / loss[0];
  const double grad_rel = relative_grad_diff(grads[1], grads[0]);
  std::printf("SFT loss fp32 %.6f bf16 %.6f rel diff %.2e, grad rel diff %.2e\n", loss[0], loss[1], rel, grad_rel);
  // bf16 keeps 8 significant bits (unit roundoff 2^-9 ≈ 2e-3 per operation); measured here: loss
  // 4.0e-4 relative, gradients 1.3e-2 relative (L2 over all parameters).
  EXPECT_LT(rel, 5e-3);
  EXPECT_GT(rel, 0.0);  // autocast did change the arithmetic
  EXPECT_LT(grad_rel, 6e-2);
}

TEST(MixedPrecision, GradientCheckpointingReplaysAutocastInBackward) {
  auto m = test::tiny_model("llama", 6);
  const auto batch = random_batch(4, 61, 2);
  std::vector<torch::Tensor> grads[2];
  for (int ckpt = 0; ckpt < 2; ++ckpt) {
    m->zero_grad();
    m->train();
    const auto stats = trainers::completion_token_stats(*m, batch, 1.0, ckpt == 1, 1024, true);
    trainers::sft_loss(stats.logprobs, batch.completion_mask, -1).backward();
    grads[ckpt] = grads_of(*m);
  }
  // Same bf16 arithmetic in the recomputation: equal up to summation order.
  const double rel = relative_grad_diff(grads[1], grads[0]);
  std::printf("bf16 grads with vs without checkpointing: rel diff %.2e\n", rel);
  EXPECT_LT(rel, 1e-3);
}

TEST(MixedPrecision, GrpoLossAndGradientsUnderAutocastStayCloseToFloat32) {
  auto policy = test::tiny_model("llama", 7);
  auto ref = test::tiny_model("llama", 8);
  const auto batch = random_batch(8, 61, 3);
  torch::Tensor old_logps;
  {
    torch::NoGradGuard ng;
    old_logps = trainers::completion_token_stats(*policy, batch, 1.0).logprobs +
                0.05 * torch::randn({8, batch.completion_ids.size(1)});
  }
  const auto adv = torch::linspace(-1.5, 1.5, 8);
  double loss[2];
  std::vector<torch::Tensor> grads[2];
  for (int bf16 = 0; bf16 < 2; ++bf16) {
    policy->zero_grad();
    torch::Tensor ref_logps;
    {
      torch::NoGradGuard ng;
      ref_logps = trainers::completion_token_stats(*ref, batch, 1.0, false, 1024, bf16 == 1).logprobs;
    }
    trainers::GRPOLossInputs in;
    in.logps = trainers::completion_token_stats(*policy, batch, 1.0, false, 1024, bf16 == 1).logprobs;
    in.old_logps = old_logps;
    in.ref_logps = ref_logps;
    in.advantages = adv;
    in.mask = batch.completion_mask;
    in.num_items_in_batch = batch.completion_mask.sum().item<double>();
    trainers::GRPOLossConfig cfg;
    cfg.beta = 0.04;
    const auto out = trainers::grpo_loss(in, cfg);
    EXPECT_EQ(out.loss.scalar_type(), torch::kFloat);
    out.loss.backward();
    loss[bf16] = out.loss.item<double>();
    expect_float32_finite_grads(*policy);
    grads[bf16] = grads_of(*policy);
  }
  const double diff = std::abs(loss[1] - loss[0]);
  const double grad_rel = relative_grad_diff(grads[1], grads[0]);
  std::printf("GRPO loss fp32 %.6f bf16 %.6f abs diff %.2e, grad rel diff %.2e\n", loss[0], loss[1], diff, grad_rel);
  // Measured: loss 5.9e-4 absolute (the loss is a small difference of terms, so absolute), gradients
  // 2.6e-2 relative.
  EXPECT_LT(diff, 5e-3);
  EXPECT_GT(diff, 0.0);
  EXPECT_LT(grad_rel, 6e-2);
}

TEST(MixedPrecision, GrpoTrainerStepKeepsFloat32StateAndMatchesFloat32) {
  // The same weights and seeds: the rollouts (not autocast) are identical, so the first step's
  // gradient norm compares the bf16 and float32 update directly.
  double grad_norm[2], reward_mean[2];
  for (int bf16 = 0; bf16 < 2; ++bf16) {
    auto m = test::tiny_model("llama", 9);
    const auto res = test::grpo_toy_step(m, bf16 == 1);
    EXPECT_FALSE(autocast_enabled(kCpu));
    grad_norm[bf16] = res.metrics.at("grad_norm");
    reward_mean[bf16] = res.metrics.at("reward");
    for (auto& p : m->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat);
    EXPECT_TRUE(std::isfinite(res.metrics.at("loss")));
  }
  std::printf("GRPO step grad_norm fp32 %.6f bf16 %.6f\n", grad_norm[0], grad_norm[1]);
  EXPECT_EQ(reward_mean[0], reward_mean[1]);  // same rollouts
  EXPECT_GT(grad_norm[0], 0.0);
  EXPECT_NE(grad_norm[1], grad_norm[0]);  // measured: 3e-5 relative apart
  EXPECT_NEAR(grad_norm[1], grad_norm[0], 1e-2 * grad_norm[0]);
}

TEST(MixedPrecision, Bf16SftRunLearnsAndRestoresAutocastWhenAStepThrows) {
  auto m = test::tiny_model("llama", 10);
  trainers::SFTConfig cfg;
  cfg.bf16 = true;
  cfg.per_device_train_batch_size = 4;
  cfg.optimizer.learning_rate = 1e-2;
  cfg.optimizer.lr_scheduler_type = trainers::LrSchedulerType::kConstant;
  trainers::SFTTrainer trainer(m, cfg);
  std::vector<trainers::SFTExample> data = {{{1, 2}, {7, 8, 9}}, {{3}, {10, 11}}, {{4, 5}, {12, 13, 14}}, {{6}, {15}}};
  std::vector<double> losses;
  for (int s = 0; s < 30; ++s) losses.push_back(trainer.step(data).at("loss"));
  std::printf("bf16 SFT loss %.4f -> %.4f\n", losses.front(), losses.back());
  EXPECT_LT(losses.back(), 0.3 * losses.front());
  for (auto& p : m->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat);
  ASSERT_FALSE(trainer.optimizer().adamw().state().empty());
  for (auto& kv : trainer.optimizer().adamw().state()) {
    auto& st = static_cast<torch::optim::AdamWParamState&>(*kv.second);
    EXPECT_EQ(st.exp_avg().scalar_type(), torch::kFloat);
    EXPECT_EQ(st.exp_avg_sq().scalar_type(), torch::kFloat);
  }
  // A token outside the vocabulary makes the forward throw inside the autocast scope.
  EXPECT_ANY_THROW(trainer.step({{{1, 2}, {7, 999}}}));
  EXPECT_FALSE(autocast_enabled(kCpu));
}
