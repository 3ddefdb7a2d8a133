// SFT loss must fall; DPO's margin on synthetic pairs must grow; the non-finite guard must keep
// NaN away from the weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../../unit/model/tiny_models.h"
#include "selfrl/trainers/dpo_trainer.h"
#include "selfrl/trainers/sft_trainer.h"
#include "test_util.h"

using namespace selfrl;

namespace {
// vocab 20, EOS 19.
std::shared_ptr<model::CausalLM> tiny(uint64_t seed) {
  return test::tiny_model_with("qwen2", 20,
                               {{"max_position_embeddings", 64}, {"rms_norm_eps", 1e-6}, {"eos_token_id", 19}}, seed);
}
}  // namespace

TEST(SFTTrainer, LossFallsAndOnlyCompletionTokensCount) {
  trainers::SFTConfig cfg;
  cfg.optimizer.learning_rate = 1e-2;
  cfg.optimizer.lr_scheduler_type = trainers::LrSchedulerType::kConstant;
  cfg.per_device_train_batch_size = 3;
  cfg.gradient_accumulation_steps = 2;
  cfg.num_train_epochs = 15;
  std::vector<trainers::SFTExample> data;
  for (int i = 0; i < 6; ++i) data.push_back({{1, 2 + i, 3}, {4 + i, 10 + i, 19}});
  trainers::SFTTrainer t(tiny(3), cfg);
  const auto hist = t.train(data);
  ASSERT_EQ(hist.size(), static_cast<size_t>(trainers::SFTTrainer::steps_for(data.size(), cfg)));
  EXPECT_LT(hist.back().at("loss"), 0.3 * hist.front().at("loss"));
  EXPECT_EQ(hist.front().at("num_tokens"), 18.0);  // 6 examples × 3 completion tokens, prompts excluded
}

TEST(DPOTrainer, MarginGrowsOnSyntheticPairs) {
  trainers::DPOConfig cfg;
  cfg.optimizer.learning_rate = 5e-3;
  cfg.optimizer.lr_scheduler_type = trainers::LrSchedulerType::kConstant;
  cfg.per_device_train_batch_size = 2;
  std::vector<trainers::PreferencePair> pairs;
  for (int i = 0; i < 4; ++i) pairs.push_back({{1, 2 + i}, {7, 7, 19}, {8 + i, 12, 19}});
  trainers::DPOTrainer t(tiny(4), nullptr, cfg);
  const auto first = t.step(pairs);
  EXPECT_NEAR(first.at("rewards/margins"), 0.0, 1e-6);  // policy == reference at the start
  EXPECT_NEAR(first.at("loss"), std::log(2.0), 1e-5);
  metrics::Scalars last;
  for (int s = 0; s < 20; ++s) last = t.step(pairs);
  EXPECT_GT(last.at("rewards/margins"), 0.5);
  EXPECT_EQ(last.at("rewards/accuracies"), 1.0);
  EXPECT_LT(last.at("loss"), first.at("loss"));
}

TEST(TrainingOptimizer, NonFiniteGradientSkipsTheStepAndSparesTheWeights) {
  auto w = torch::ones({3}, torch::requires_grad());
  trainers::OptimizerConfig cfg;
  cfg.learning_rate = 0.1;
  cfg.lr_scheduler_type = trainers::LrSchedulerType::kConstant;
  trainers::TrainingOptimizer opt({w}, cfg);
  (w * std::nan("")).sum().backward();
  const auto rep = opt.step();
  EXPECT_TRUE(rep.skipped);
  EXPECT_EQ(opt.steps_skipped(), 1);
  EXPECT_TRUE(torch::equal(w.detach(), torch::ones({3})));
  EXPECT_EQ(w.grad().abs().sum().item<float>(), 0.0f);  // gradients cleared for the next step
  (w * 2).sum().backward();
  EXPECT_FALSE(opt.step().skipped);
  EXPECT_FALSE(torch::equal(w.detach(), torch::ones({3})));
  EXPECT_TRUE(opt.step(/*loss_finite=*/false).skipped);
}
