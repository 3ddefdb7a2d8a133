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
  auto model = selfrl::model::CausalLM::from_pretrained(dir);  // CPU, float32
  auto tok = selfrl::tokenizer::Tokenizer::from_pretrained(dir);

  selfrl::generation::RolloutEngineOptions opts;
  opts.eos_token_ids = selfrl::model::eos_token_ids(dir, model->config());
  selfrl::generation::RolloutEngine engine(model, opts);

  const auto prompt = selfrl::data::to_ids64(tok->encode(argv[2]));
  selfrl::generation::SamplingParams params;
  params.max_new_tokens = argc > 3 ? std::atoi(argv[3]) : 32;

  torch::NoGradGuard no_grad;
  params.temperature = 0;  // greedy
  const auto greedy = engine.generate({prompt}, params)[0].completions[0];
  std::cout << "greedy: " << tok->decode(selfrl::data::to_ids32(greedy.token_ids), true) << "  ["
            << greedy.finish_reason << ", " << greedy.token_ids.size() << " tokens]\n";

  params.temperature = 1.0;
  params.num_samples = 3;
  params.seed = 7;
  const auto sampled = engine.generate({prompt}, params);  // keep it: completions live in it
  for (const auto& c : sampled[0].completions) {
    const double certainty = selfrl::rewards::mean_self_certainty(c.self_certainty);
    std::cout << "sample " << c.sample_index << ": " << tok->decode(selfrl::data::to_ids32(c.token_ids), true)
              << "  [self-certainty " << certainty << "]\n";
  }
  return 0;
} catch (const std::exception& e) {  // selfrl::Error says what, where and what to do
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
