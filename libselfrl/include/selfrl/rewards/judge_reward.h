// LLM-as-judge reward (Self-Rewarding Language Models, Yuan et al. 2024): a language model —
// by default the policy itself — reads the prompt and one completion in a judge prompt (the
// additive 5-point rubric), writes num_judgements judgements at judge temperature, and the
// completion's score is the mean of the parsable judgements. A completion with no parsable
// judgement is unscorable (NaN). The judge is a generation callable, so it can be the current
// policy through the rollout engine, a frozen judge model or a fake in tests. The self-rewarding
// DPO loop judges through judge_groups() as well (one implementation of prompt, parse, mean).
// Cost: G × num_judgements extra generations per prompt. Formulas: docs/algorithms.md.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "selfrl/rewards/reward.h"

namespace selfrl::rewards {

// The judge prompt; {prompt} and {response} are replaced.
const std::string& default_judge_template();

// The score a judgement gives: the number after the last "Score:" (case-insensitive), else the
// last number in the text; nullopt when there is none or it lies outside [0, 5].
std::optional<double> parse_judge_score(const std::string& judgement);

// `tmpl` with every {prompt} and {response} replaced (replacements are not re-scanned).
std::string fill_judge_template(const std::string& tmpl, const std::string& prompt, const std::string& response);

// One batched request to the judge: judge_prompts.size() prompt texts, each to be answered
// num_judgements times. The callable encodes, samples and decodes; it returns
// [prompt][judgement] texts (a short inner vector counts the missing judgements as unparsable).
struct JudgeRequest {
  std::vector<std::string> prompts;
  int64_t num_judgements = 1;
  double temperature = 0.7;
  int64_t max_new_tokens = 48;
  uint64_t seed = 0;
};
using JudgeFn = std::function<std::vector<std::vector<std::string>>(const JudgeRequest&)>;

struct JudgeOptions {
  std::string judge_template;  // "" → default_judge_template()
  int64_t num_judgements = 3;  // judgements averaged per completion
  double temperature = 0.7;
  int64_t max_new_tokens = 48;
  bool normalize = true;        // score / 5 ∈ [0, 1] (false: points in [0, 5])
  uint64_t seed = 0;            // request seeds are derived from it and the group's text
  size_t max_info_chars = 160;  // judgements in `info` keep their last this many bytes
};

// Judges every completion of every group in ONE call of `judge`. Per group: scores (NaN = no
// parsable judgement) and info = {"judgements": [[text...] per sample] (tails, see
// max_info_chars), "judge_scores": [[points|null...] per sample], "parse_rate": parsed / asked,
// "parsed", "asked"}; metrics = {"parse_rate"} (logged as rewards/<name>/parse_rate).
std::vector<GroupScores> judge_groups(const JudgeFn& judge, const std::vector<Group>& groups, const JudgeOptions& opts,
                                      uint64_t seed);

// The reward, named `name` ("judge" in recipes): judge_groups on each group, with the request
// seed derived from opts.seed and a hash of the group's prompt and completions (so a resumed
// run judges as an uninterrupted one).
RewardPtr make_judge_reward(JudgeFn judge, JudgeOptions opts = {}, std::string name = "judge");

}  // namespace selfrl::rewards
