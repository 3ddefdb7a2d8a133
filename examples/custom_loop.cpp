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
  auto model = sr::model::CausalLM::from_pretrained(dir);
  auto tok = sr::tokenizer::Tokenizer::from_pretrained(dir);
  const auto eos = sr::model::eos_token_ids(dir, model->config());
  const auto prompts = sr::data::load_prompts(argv[2], tok.get(), {});

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
      rollouts = sr::generation::RolloutEngine(model, {64, eos}).generate(ids, params);
    }
    std::vector<sr::rewards::Group> groups;
    for (size_t i = 0; i < rollouts.size(); ++i) {
      sr::rewards::Group g;
      g.prompt = prompts[i].text;
      for (const auto& c : rollouts[i].completions)
        g.samples.push_back({tok->decode(sr::data::to_ids32(c.token_ids), true), c.token_ids, c.self_certainty,
                             c.finish_reason == "length"});
      groups.push_back(std::move(g));
    }
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
