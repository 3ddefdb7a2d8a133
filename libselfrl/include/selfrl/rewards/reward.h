// The Reward interface: a reward scores a whole group (the G completions of one prompt), so
// group-level signals (consensus, Borda) and per-sample verifiers share one interface.
// A score of NaN means "could not score this sample"; RewardPipeline turns a thrown
// exception into NaN for the whole group. Unscorable samples get advantage 0 downstream.
#pragma once

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "selfrl/generation/rollout.h"

namespace selfrl::rewards {

// What a reward may look at for one completion.
struct Sample {
  std::string completion;  // decoded text
  std::vector<int64_t> completion_ids;
  std::vector<float> token_self_certainty;  // KL(U || p_t) per token, from the rollout engine
  bool truncated = false;                   // hit max_completion_length without a stop
};

struct Group {
  std::string prompt;
  nlohmann::json example;  // the dataset row (e.g. its "answer" for verifiers); may be null
  std::vector<Sample> samples;
  // Samples that vote but are not scored or trained on: the completions of a second prompt
  // that asks the same question (trainers::PromptExample::vote_prompt_ids, e.g. a paraphrase).
  // The vote rewards (consensus, borda) count them when they pick the winning answer; rewards
  // that score samples one by one ignore them. Empty unless the prompt has a vote prompt.
  std::vector<Sample> vote_samples;
  int64_t step = -1;  // the GRPO trainer's step being scored (1-based); -1 outside a GRPO step
};

// The group a reward sees for one rollout: `decode` turns each completion's ids into its text
// (model::Policy::decode); self-certainty and truncation come from the rollout.
Group make_group(std::string prompt, nlohmann::json example, const generation::Rollout& rollout,
                 const std::function<std::string(const std::vector<int64_t>&)>& decode);

struct GroupScores {
  std::vector<double> scores;  // one per sample; NaN = unscorable
  nlohmann::json info;         // per-group details for dumps (majority answer, vote share, ...)
  // Per-group diagnostics named in Reward::metric_names(); the trainer logs each as
  // rewards/<reward>/<key>, averaged over the step's groups (e.g. the judge's parse_rate).
  std::map<std::string, double> metrics;
};

class Reward {
 public:
  virtual ~Reward() = default;
  virtual std::string name() const = 0;
  virtual GroupScores score(const Group& group) = 0;
  // The keys of GroupScores::metrics this reward reports (fixed, so that every rank of a
  // distributed run reduces the same list).
  virtual std::vector<std::string> metric_names() const { return {}; }
};

using RewardPtr = std::shared_ptr<Reward>;

constexpr double kUnscorable = std::numeric_limits<double>::quiet_NaN();

// A user C++ callable as a reward.
RewardPtr make_function_reward(std::string name, std::function<std::vector<double>(const Group&)> fn);

}  // namespace selfrl::rewards
