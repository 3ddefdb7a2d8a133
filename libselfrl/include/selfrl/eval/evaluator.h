// Evaluation against reference answers: greedy accuracy, and with k samples per prompt maj@k
// (majority vote of k sampled answers) and pass@k (Chen et al. 2021, "Evaluating Large Language
// Models Trained on Code", unbiased estimator 1 − C(n−c, k) / C(n, k) from n ≥ k samples of
// which c are correct). `selfrl eval`, every loop's per-iteration evaluation and the demo call
// evaluate().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "selfrl/data/prompt_dataset.h"
#include "selfrl/metrics/metrics.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/rewards/answer_extractor.h"

namespace selfrl::eval {

using Decoder = std::function<std::string(const std::vector<int64_t>&)>;

struct EvalOptions {
  int64_t samples = 1;       // k: > 1 adds maj@k and pass@k
  int64_t n = 0;             // samples drawn for pass@k (0 → k); maj@k uses the first k
  double temperature = 1.0;  // for the k samples (the greedy pass always uses argmax)
  double top_p = 1.0;
  int64_t max_new_tokens = 64;
  int64_t batch_size = 64;           // rows decoded together
  bool continuous_batching = false;  // RolloutEngineOptions::continuous_batching
  bool share_prompt_cache = true;    // RolloutEngineOptions::share_prompt_cache
  int64_t kv_block_size = 256;       // RolloutEngineOptions::kv_block_size
  uint64_t seed = 0;
  bool keep_per_example = true;
  std::string label = "eval";  // progress-bar label
};

struct ExampleResult {
  std::string where;
  std::string reference;  // normalized answer
  std::optional<std::string> greedy_answer;
  std::string greedy_completion;
  bool greedy_correct = false;
  std::vector<std::optional<std::string>> sample_answers;
  int64_t num_correct = 0;              // c among the n samples
  std::optional<std::string> majority;  // of the first k samples
  bool majority_correct = false;
};

struct EvalResult {
  int64_t num_examples = 0;
  int64_t k = 1, n = 1;
  double accuracy = 0;   // greedy
  double maj_at_k = 0;   // NaN when k == 1
  double pass_at_k = 0;  // NaN when k == 1
  double answered = 0;   // fraction of greedy completions with an extractable answer
  double mean_completion_tokens = 0;
  std::vector<ExampleResult> examples;
  nlohmann::json to_json() const;
  // {"<prefix>accuracy", "<prefix>maj@k", "<prefix>pass@k", ...} for metrics.jsonl.
  metrics::Scalars to_scalars(const std::string& prefix = "eval/") const;
};

// Unbiased pass@k: 1 − C(n−c, k)/C(n, k), computed as 1 − Π_{i=n−c+1}^{n} (1 − k/i).
double pass_at_k(int64_t n, int64_t c, int64_t k);

// The most frequent answer (ties: the one seen first); nullopt when no sample has an answer.
std::optional<std::string> majority_answer(const std::vector<std::optional<std::string>>& answers);

// Extractor spec as the CLI and recipes spell it: last_number | boxed | exact | regex:PATTERN.
rewards::AnswerExtractor parse_extractor(const std::string& spec);

// Every prompt must have an `answer`. `eos_token_ids` stop generation.
EvalResult evaluate(const std::shared_ptr<model::CausalLM>& model, const Decoder& decode,
                    const std::vector<data::Prompt>& prompts, const rewards::AnswerExtractor& extractor,
                    const EvalOptions& options, const std::vector<int64_t>& eos_token_ids);

// The scoring half of evaluate(), pure: fills the aggregate fields of `result` from its examples
// (examples need reference, greedy_answer and sample_answers).
void score(EvalResult& result, int64_t k, int64_t n);

}  // namespace selfrl::eval
