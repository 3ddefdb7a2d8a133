// Rollout records: what the rollout engine returns for each prompt and each of its samples,
// the data a GRPO step consumes (completion ids, sampled-token logprobs, per-token stats).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace selfrl::generation {

// Why a completion ended: a stop (EOS, stop token or stop sequence) or max_new_tokens.
enum class FinishReason { kStop, kLength };
// "stop" | "length" (vLLM's / OpenAI's finish_reason strings, used in dumps and JSON output).
const char* to_string(FinishReason reason);
inline std::ostream& operator<<(std::ostream& os, FinishReason r) { return os << to_string(r); }

struct Completion {
  std::vector<int64_t> token_ids;
  // log p(token) under the temperature-scaled distribution before top-k / top-p / min-p
  // filtering — the policy TRL's GRPOTrainer scores (logits / temperature). For greedy
  // decoding (temperature 0) the raw distribution is used.
  std::vector<float> logprobs;
  std::vector<float> raw_logprobs;    // log p(token) under the raw (temperature 1) distribution
  std::vector<float> entropy;         // −Σ p log p of the temperature-scaled distribution
  std::vector<float> self_certainty;  // KL(U ‖ p) = −log V − mean_j log p_j, same distribution
  FinishReason finish_reason = FinishReason::kLength;
  int64_t sample_index = 0;  // 0 .. G−1 within its prompt
};

struct Rollout {
  int64_t prompt_index = 0;  // position in the request list
  std::vector<int64_t> prompt_ids;
  std::vector<Completion> completions;  // G of them, in sample order
};

// Rollouts as one flat array of doubles and back, to move them between ranks in one collective
// (token ids < 2^53 and float32 statistics are exact in a double). Every field round-trips,
// NaN included. unpack_rollouts throws Error when `data` is not a whole packed list.
std::vector<double> pack_rollouts(const std::vector<Rollout>& rollouts);
std::vector<Rollout> unpack_rollouts(const double* data, size_t size);

}  // namespace selfrl::generation
