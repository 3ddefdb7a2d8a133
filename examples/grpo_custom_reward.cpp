// A training binary: GRPO with a C++ reward (a lambda) next to the built-in self-certainty
// reward, on a JSONL file of prompts. Prints each step's reward and saves the model.
//
//   example_grpo_custom_reward MODEL_DIR PROMPTS.jsonl OUT_DIR [steps=4]
#include <cstdlib>
#include <iostream>

#include <selfrl/selfrl.h>

namespace sr = selfrl;

int main(int argc, char** argv) try {
  if (argc < 4) {
    std::cerr << "usage: " << argv[0] << " MODEL_DIR PROMPTS.jsonl OUT_DIR [STEPS]\n";
    return 2;
  }
  const std::string dir = argv[1], data = argv[2], out = argv[3];
  const int steps = argc > 4 ? std::atoi(argv[4]) : 4;
  // The model, its tokenizer (the text rewards see) and its stop ids.
  const auto policy = sr::model::Policy::from_pretrained(dir);

  // Rewards score a group: the G completions of one prompt. This one prefers short answers.
  auto brevity = sr::rewards::make_function_reward("brevity", [](const sr::rewards::Group& g) {
    std::vector<double> scores;
    for (const auto& s : g.samples) scores.push_back(-static_cast<double>(s.completion_ids.size()) / 16.0);
    return scores;
  });
  sr::rewards::RewardPipeline rewards;
  rewards.add(brevity, 1.0);
  rewards.add(sr::rewards::make_self_certainty_reward(), 0.1);

  sr::trainers::GRPOConfig cfg;  // TRL's GRPOConfig names and defaults
  cfg.sampling.num_samples = 4;
  cfg.sampling.max_new_tokens = 8;
  cfg.optimizer.learning_rate = 1e-3;
  cfg.optimizer.total_steps = steps;
  cfg.output_dir = out;  // metrics.jsonl
  sr::trainers::GRPOTrainer trainer(policy, std::move(rewards), cfg);

  sr::data::PromptOptions po;
  po.max_prompt_length = policy.model->config().max_position_embeddings - cfg.sampling.max_new_tokens;
  const auto prompts = sr::data::load_prompts(data, policy.tokenizer.get(), po);  // errors name file:line
  for (int s = 0; s < steps; ++s) {
    std::vector<sr::trainers::PromptExample> batch;
    for (size_t i = 0; i < 2; ++i) {
      const auto& p = prompts[(2 * s + i) % prompts.size()];
      batch.push_back({p.ids, p.text, p.row});
    }
    const auto m = trainer.step(batch).metrics;
    std::cout << "step " << s + 1 << " reward " << m.at("reward") << " brevity " << m.at("rewards/brevity/mean")
              << " self_certainty " << m.at("rewards/self_certainty/mean") << " loss " << m.at("loss") << "\n";
  }
  policy.model->save_pretrained(out + "/final");
  std::cout << "saved " << out << "/final\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
