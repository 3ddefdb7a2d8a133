// Preference-based self-improvement: self-rewarding DPO (Yuan et al. 2024, "Self-Rewarding
// Language Models") — the policy judges its own responses with an additive 5-point rubric,
// the best and worst scored responses of a prompt form a DPO pair — and ScPO (Prasad et al.
// 2024, "Self-Consistency Preference Optimization") — the most and least voted answers among k
// samples form a pair weighted by the vote margin (V(y+) − V(y−)) / k.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "selfrl/rewards/judge_reward.h"

namespace selfrl::loops {

// The judge (prompt template, score parser) lives in selfrl/rewards/judge_reward.h, shared with
// the `judge` reward of GRPO runs; these names stay for callers of the loops.
using rewards::default_judge_template;
using rewards::parse_judge_score;

struct ScpoChoice {
  size_t chosen = 0, rejected = 0;  // sample indices
  int64_t chosen_votes = 0, rejected_votes = 0;
  double weight = 0;      // (V+ − V−) / k
  double vote_share = 0;  // V+ / k
};

// answers[i]: sample i's extracted answer (nullopt: none, counted as 0 votes). chosen: the
// first sample of the most voted answer; rejected: the first sample of the least voted answer
// (a sample without an answer has 0 votes and is the least voted). nullopt when no answer
// exists, V+ / k < min_vote_share, or V+ == V−.
std::optional<ScpoChoice> scpo_choose(const std::vector<std::optional<std::string>>& answers, double min_vote_share);

}  // namespace selfrl::loops
