// The demo's held-out evaluation: greedy accuracy, maj@k (majority vote of k samples) and the
// F1 of the model's self-knowledge ("can I solve this?" asked before trying) against its actual
// greedy success. Gold answers are used here only, never by the label-free stages.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "demo/arithmetic_task.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/tokenizer/tokenizer.h"

namespace selfrl::demo {

struct ConfusionCounts {
  int64_t tp = 0, fp = 0, fn = 0, tn = 0;
};

// Counts of "predicted yes" against "actually solved"; the vectors must have equal length.
ConfusionCounts confusion(const std::vector<bool>& predicted_yes, const std::vector<bool>& solved);
// F1 of the positive class ("yes, I can solve it"): 2·tp / (2·tp + fp + fn); 0 when that
// denominator is 0 (no positives predicted and none real).
double f1_score(const ConfusionCounts& c);
double self_knowledge_f1(const std::vector<bool>& predicted_yes, const std::vector<bool>& solved);

// The majority answer of `answers` ("" = no answer, never votes; ties go to the answer seen
// first) and its vote share (votes / answers.size()). nullopt when nobody answered.
struct Vote {
  std::string answer;
  double share = 0;
};
std::optional<Vote> majority_vote(const std::vector<std::string>& answers);

// Prompt and completion encoding of the demo (BOS + prompt; completion + EOS for training).
struct DemoCodec {
  std::shared_ptr<const tokenizer::Tokenizer> tok;
  std::vector<int64_t> prompt_ids(const std::string& text) const;
  std::vector<int64_t> completion_ids(const std::string& text) const;  // with EOS
  std::string decode(const std::vector<int64_t>& ids) const;           // specials skipped
  int64_t eos_id() const;
};

struct EvalOptions {
  int64_t k = 8;             // samples for maj@k
  double temperature = 0.7;  // of those samples (TTRL votes at 0.6-1.0)
  int64_t max_new_tokens = 8;
  int64_t batch_size = 256;  // rows decoded together
  uint64_t seed = 0;
  // sample_votes only: pool the votes of the question and of its commuted form (b+a), so that
  // an item's vote has 2k samples from two different prompts with the same answer.
  bool pool_commuted = false;
  // sample_votes only: Lee et al.'s length filter. The task's format fixes the answer's length
  // (width + 1 digits, as the zero-padded operands in the prompt show), so a sample with another
  // number of digits casts no vote; it still counts in the share's denominator.
  bool length_filter = false;
};

struct EvalResult {
  int64_t n = 0;
  double accuracy = 0;   // greedy
  double maj_at_k = 0;   // majority of k samples
  double pass_at_k = 0;  // any of k samples
  double mean_vote_share = 0;
  double self_knowledge_f1 = 0;  // CAN prediction vs greedy success
  double yes_rate = 0;           // fraction of CAN predictions that are "yes"
  std::map<int, double> accuracy_by_difficulty;
  std::vector<bool> greedy_correct, predicted_yes;
};

// Greedy answers, k samples and the CAN question for every item.
EvalResult evaluate(const std::shared_ptr<model::CausalLM>& model, const DemoCodec& codec,
                    const std::vector<ArithmeticItem>& items, const EvalOptions& opts);

// Samples k answers per item and returns each item's majority vote (nullopt: no answer).
std::vector<std::optional<Vote>> sample_votes(const std::shared_ptr<model::CausalLM>& model, const DemoCodec& codec,
                                              const std::vector<ArithmeticItem>& items, const EvalOptions& opts);

// Greedy answer of every item ("" when none).
std::vector<std::string> greedy_answers(const std::shared_ptr<model::CausalLM>& model, const DemoCodec& codec,
                                        const std::vector<ArithmeticItem>& items, const EvalOptions& opts);

}  // namespace selfrl::demo
