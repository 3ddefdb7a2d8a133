// One GRPO step on a fixed toy problem, shared by the tests that compare the same step across
// precisions and devices: reward = number of odd token ids in the completion, 2 prompts ×
// 4 samples of 6 tokens, β = 0.04, seed 3. Same weights and seed → same rollouts, so the
// step's grad_norm compares the updates directly.
#pragma once

#include <memory>
#include <vector>

#include "selfrl/model/causal_lm.h"
#include "selfrl/rewards/builtin_rewards.h"
#include "selfrl/trainers/grpo_trainer.h"

namespace selfrl::test {

inline trainers::GRPOStepResult grpo_toy_step(std::shared_ptr<model::CausalLM> m, bool bf16) {
  rewards::RewardPipeline pipe;
  pipe.add(rewards::make_function_reward("odd_tokens", [](const rewards::Group& g) {
    std::vector<double> out;
    for (const auto& s : g.samples) {
      double odd = 0;
      for (auto id : s.completion_ids) odd += id % 2;
      out.push_back(odd);
    }
    return out;
  }));
  trainers::GRPOConfig cfg;
  cfg.sampling.num_samples = 4;
  cfg.sampling.max_new_tokens = 6;
  cfg.loss.beta = 0.04;
  cfg.bf16 = bf16;
  cfg.seed = 3;
  trainers::GRPOTrainer trainer(std::move(m), pipe, cfg);
  const std::vector<trainers::PromptExample> prompts = {{{1, 2, 3}, "a", nullptr}, {{4, 5}, "b", nullptr}};
  return trainer.step(prompts);
}

}  // namespace selfrl::test
