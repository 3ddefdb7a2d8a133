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

// Meta-Rewarding (Wu et al. 2024, "Meta-Rewarding Language Models"): the policy also judges its
// own judgements, and DPO trains the judge on the judgement pairs it prefers, so that the judge
// improves with the actor. For one response, its judgements a ≠ b are shown to the policy as a
// meta-judge in both orders (A = a, B = b and A = b, B = a, against position bias); each
// verdict "Winner: A|B" is a win for that judgement.

// The meta-judge prompt; {prompt}, {response}, {judgement_a}, {judgement_b} are replaced.
const std::string& default_meta_judge_template();
std::string fill_meta_judge_template(const std::string& tmpl, const std::string& prompt, const std::string& response,
                                     const std::string& a, const std::string& b);
// "A" → 0, "B" → 1 from the last "Winner:" (case-insensitive) followed by A or B; else nullopt.
std::optional<int> parse_meta_verdict(const std::string& text);

struct MetaVerdict {
  size_t a = 0, b = 0;        // judgement indices shown as A and B
  std::optional<int> winner;  // 0: A, 1: B, nullopt: unparsable
};
// Over n judgements: wins per judgement; chosen = the most wins (ties: the lowest index),
// rejected = the fewest (ties: the highest index). nullopt when no verdict parsed or every
// judgement has the same number of wins.
std::optional<std::pair<size_t, size_t>> meta_judge_choice(size_t n, const std::vector<MetaVerdict>& verdicts);

}  // namespace selfrl::loops
