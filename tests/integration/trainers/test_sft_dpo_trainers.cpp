// SFT loss must fall; DPO's margin on synthetic pairs must grow; the non-finite guard must keep
// NaN away from the weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "selfrl/trainers/dpo_trainer.h"
#include "selfrl/trainers/sft_trainer.h"
#include "test_util.h"

using namespace selfrl;

namespace {
std::shared_ptr<model::CausalLM> tiny(uint64_t seed) {
  const auto cfg = io::ModelConfig::from_json(nlohmann::json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 20,
    "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64,
    "tie_word_embeddings": false, "eos_token_id": 19})"));
  return model::CausalLM::from_config(cfg, seed);
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
