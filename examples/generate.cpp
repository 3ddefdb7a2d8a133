// Load a Hugging Face model directory and generate: greedy, then sampled.
//
//   example_generate MODEL_DIR "prompt text" [max_new_tokens=32]
#include <cstdlib>
#include <iostream>

#include <selfrl/selfrl.h>

int main(int argc, char** argv) try {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " MODEL_DIR PROMPT [MAX_NEW_TOKENS]\n";
    return 2;
  }
  const std::string dir = argv[1];
  // Weights (CPU, float32), tokenizer and stop ids of an HF model directory.
  const auto policy = selfrl::model::Policy::from_pretrained(dir);
  selfrl::generation::RolloutEngineOptions opts;
  opts.eos_token_ids = policy.stop_ids();
  selfrl::generation::RolloutEngine engine(policy.model, opts);

  const auto prompt = selfrl::data::to_ids64(policy.tokenizer->encode(argv[2]));
  selfrl::generation::SamplingParams params;
  params.max_new_tokens = argc > 3 ? std::atoi(argv[3]) : 32;

  torch::NoGradGuard no_grad;
  params.temperature = 0;  // greedy
  const auto greedy = engine.generate({prompt}, params)[0].completions[0];
  std::cout << "greedy: " << policy.decode(greedy.token_ids) << "  [" << greedy.finish_reason << ", "
            << greedy.token_ids.size() << " tokens]\n";

  params.temperature = 1.0;
  params.num_samples = 3;
  params.seed = 7;
  const auto sampled = engine.generate({prompt}, params);  // keep it: completions live in it
  for (const auto& c : sampled[0].completions) {
    const double certainty = selfrl::rewards::mean_self_certainty(c.self_certainty);
    std::cout << "sample " << c.sample_index << ": " << policy.decode(c.token_ids) << "  [self-certainty " << certainty
              << "]\n";
  }
  return 0;
} catch (const std::exception& e) {  // selfrl::Error says what, where and what to do
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
