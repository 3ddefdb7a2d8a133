// SamplingParams: how the rollout engine turns logits into tokens, and when it stops.
//
// Names follow TRL's GRPOConfig / vLLM's SamplingParams (num_generations → num_samples,
// temperature, top_p, top_k, min_p, max_new_tokens). Filters apply in transformers' warper
// order: temperature, then top-k, then top-p, then min-p.
#pragma once

#include <cstdint>
#include <vector>

namespace selfrl::generation {

struct SamplingParams {
  int64_t num_samples = 1;  // G completions per prompt (TRL num_generations)
  int64_t max_new_tokens = 256;
  double temperature = 1.0;  // 0 = greedy (argmax of the raw logits)
  int64_t top_k = 0;         // 0 = off
  double top_p = 1.0;        // 1 = off
  double min_p = 0.0;        // 0 = off
  uint64_t seed = 0;         // run seed; request r uses derive_seed(seed, {r}) unless given
  // Stop conditions besides the model's EOS ids. The stop token / sequence is kept in the
  // completion (so that training teaches the model to stop), as transformers keeps EOS.
  std::vector<int64_t> stop_token_ids;
  std::vector<std::vector<int64_t>> stop_sequences;
  bool ignore_eos = false;  // do not stop at the model's EOS ids

  bool greedy() const { return temperature == 0.0; }
  // Throws selfrl::Error naming the field for out-of-range values.
  void validate() const;
};

}  // namespace selfrl::generation
