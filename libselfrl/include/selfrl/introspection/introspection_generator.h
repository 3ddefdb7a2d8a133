// IntrospectionGenerator (KnowRL, "KnowRL: Teaching Language Models to Know What They Know"):
// the model grows its own self-knowledge training set from a few labelled seed tasks.
//
//   seed tasks (feasible / infeasible) ─► the model writes new tasks per category (few-shot)
//     ─► dedupe (against seeds and each other) ─► k feasibility judgements per task
//     ─► consensus: majority label + agreement (vote share) ─► keep agreement ≥ min_agreement
//     ─► RL set: {prompt: judge prompt, label} for GRPO with the consensus reward
//
// Metrics: intrinsic self-consistency (mean agreement of the model's own judgements) and, on
// a labelled set, extrinsic accuracy and F1.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace selfrl::introspection {

inline const char* kFeasible = "feasible";
inline const char* kInfeasible = "infeasible";

struct SeedTask {
  std::string task;
  std::string label;  // "feasible" | "infeasible"
  std::string where;  // file:line
};

// Rows {"prompt": task, <label_field>: "feasible"|"infeasible"}; errors name file:line. Both
// categories must be present.
std::vector<SeedTask> load_seed_tasks(const std::string& path, const std::string& label_field = "label");

// The prompt under which the model judges a task (and answers with one word).
std::string judge_prompt(const std::string& task);
// The prompt under which the model writes a new task of `label`'s category from `examples`.
std::string writer_prompt(const std::string& label, const std::vector<std::string>& examples);
// "infeasible" / "feasible" from a judgement (the first of the two words that appears).
std::optional<std::string> parse_feasibility(const std::string& text);
// Dedupe key: lower case, alphanumerics only, single spaces.
std::string normalize_task(const std::string& task);

struct Consensus {
  std::optional<std::string> label;  // majority label (ties: nullopt)
  double agreement = 0;              // votes for the label / number of judgements
  int64_t feasible = 0, infeasible = 0;
};
Consensus consensus(const std::vector<std::optional<std::string>>& judgements);

struct BinaryScores {
  double accuracy = 0, f1_feasible = 0, f1_infeasible = 0, macro_f1 = 0;
  int64_t n = 0;
};
// predicted[i] may be nullopt (no answer: counts as wrong for both classes).
BinaryScores binary_scores(const std::vector<std::optional<std::string>>& predicted,
                           const std::vector<std::string>& gold);

struct GeneratedTask {
  std::string task;
  std::string category;  // the category the writer was asked for
  Consensus consensus;
};

struct IntrospectionConfig {
  int64_t tasks_per_category = 8;
  int64_t shots = 3;
  int64_t num_judgements = 5;
  double min_agreement = 0.6;
  double temperature = 1.0;
  double judge_temperature = 1.0;
  int64_t max_task_tokens = 48;
  int64_t max_judge_tokens = 8;
  uint64_t seed = 0;
};

struct IntrospectionResult {
  std::vector<GeneratedTask> kept;  // labelled by consensus, agreement ≥ min_agreement
  int64_t written = 0, empty = 0, duplicates = 0, judged = 0, no_consensus = 0;
  double self_consistency = 0;  // mean agreement over the judged tasks
};

// (prompts, n, temperature, max_new_tokens, seed) → n texts per prompt.
using TextSampler = std::function<std::vector<std::vector<std::string>>(const std::vector<std::string>&, int64_t,
                                                                        double, int64_t, uint64_t)>;

class IntrospectionGenerator {
 public:
  IntrospectionGenerator(TextSampler sampler, IntrospectionConfig config);
  // One round of writing, deduplicating and judging. `avoid` holds tasks already produced
  // (normalized keys are compared) and grows with the new ones.
  IntrospectionResult generate(const std::vector<SeedTask>& seeds, std::vector<std::string>& avoid, uint64_t round);

 private:
  TextSampler sample_;
  IntrospectionConfig cfg_;
};

}  // namespace selfrl::introspection
