// A self-improvement loop written from the parts: best-of-N self-distillation.
// Each round: sample N completions per prompt (RolloutEngine), score them without labels
// (RewardPipeline: self-certainty), fine-tune on the most certain one per prompt (SFTTrainer).
//
//   example_custom_loop MODEL_DIR PROMPTS.jsonl [rounds=2] [N=4]
#include <cstdlib>
#include <iostream>

#include <selfrl/selfrl.h>

namespace sr = selfrl;

int main(int argc, char** argv) try {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " MODEL_DIR PROMPTS.jsonl [ROUNDS] [N]\n";
    return 2;
  }
  const std::string dir = argv[1];
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 2, n = argc > 4 ? std::atoi(argv[4]) : 4;
  const auto policy = sr::model::Policy::from_pretrained(dir);  // model + tokenizer + stop ids
  const auto& model = policy.model;
  const auto prompts = sr::data::load_prompts(argv[2], policy.tokenizer.get(), {});

  sr::rewards::RewardPipeline judge;
  judge.add(sr::rewards::make_self_certainty_reward());
  sr::trainers::SFTConfig sft;
  sft.optimizer.learning_rate = 1e-3;
  sft.per_device_train_batch_size = 4;
  sr::trainers::SFTTrainer trainer(model, sft);  // one optimizer for every round

  for (int round = 1; round <= rounds; ++round) {
    std::vector<std::vector<int64_t>> ids;
    for (const auto& p : prompts) ids.push_back(p.ids);
    sr::generation::SamplingParams params;
    params.num_samples = n;
    params.max_new_tokens = 8;
    params.seed = static_cast<uint64_t>(round);
    std::vector<sr::generation::Rollout> rollouts;
    {
      torch::NoGradGuard no_grad;
      model->eval();
      rollouts = sr::generation::RolloutEngine(model, {64, policy.stop_ids()}).generate(ids, params);
    }
    std::vector<sr::rewards::Group> groups;
    for (size_t i = 0; i < rollouts.size(); ++i)
      groups.push_back(sr::rewards::make_group(prompts[i].text, prompts[i].row, rollouts[i],
                                               [&](const std::vector<int64_t>& c) { return policy.decode(c); }));
    const auto scores = judge.score(groups).rewards_per_func;  // [prompts x N, 1]
    std::vector<sr::trainers::SFTExample> best;
    double mean_best = 0;
    for (size_t i = 0; i < rollouts.size(); ++i) {
      const auto row = scores.narrow(0, static_cast<int64_t>(i) * n, n).select(1, 0).nan_to_num(-1e9);
      const int64_t k = row.argmax().item<int64_t>();
      mean_best += row[k].item<double>() / static_cast<double>(rollouts.size());
      best.push_back({rollouts[i].prompt_ids, rollouts[i].completions[static_cast<size_t>(k)].token_ids});
    }
    model->train();
    const auto m = trainer.step(best);
    std::cout << "round " << round << ": best-of-" << n << " self-certainty " << mean_best << ", SFT loss "
              << m.at("loss") << "\n";
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
