// The rewards libselfrl ships. Label-free: self_certainty (Intuitor), consensus (TTRL / LMSI
// majority vote), borda (self-certainty-weighted voting). With labels or rules: verifier
// (reference answer), format (regex), soft_overlong (DAPO), length_penalty.
// Formulas and sources: docs/algorithms.md.
#pragma once

#include <string>

#include "selfrl/rewards/answer_extractor.h"
#include "selfrl/rewards/reward.h"

namespace selfrl::rewards {

// Mean over the completion's tokens of KL(U ‖ p_t) (Zhao et al. 2025, "Learning to Reason
// without External Rewards"). Empty completions are unscorable.
RewardPtr make_self_certainty_reward();

// 1 for completions whose extracted answer equals the group's majority answer, else 0
// (TTRL, Zuo et al. 2025). Ties go to the answer seen first. Completions without an answer
// get 0 and never vote. info: {"majority": answer|null, "vote_share": votes/G, "num_answers"}.
// `min_vote_share` > 0: a group whose majority holds fewer than that share of its G samples
// is scored 0 throughout (no advantage: GRPO learns nothing from it), so only confident votes
// teach — the confidence filter of ReST-EM / LMSI pseudo-labels applied to TTRL; info then
// adds "below_min_vote_share": true. The group's vote_samples (a paraphrase's completions)
// vote too, after the G samples (ties still go to an answer the G samples gave first); only the
// G samples are scored, and vote_share stays the winner's share of them; info then adds
// "num_vote_samples": M.
RewardPtr make_consensus_reward(AnswerExtractor extractor, double min_vote_share = 0.0);

// Borda voting with self-certainty ranks (Kang et al. 2025, "Scalable Best-of-N Selection for
// LLMs via Self-Certainty"): rank samples by self-certainty (r = 1 most certain), each adds
// (N − r + 1)^power to its answer; reward 1 for completions of the winning answer.
// `min_vote_share` as for consensus, on the winner's share of the G samples. With vote_samples,
// all G + M samples are ranked and vote (N = G + M); only the G samples are scored; info:
// {"winner": answer|null}, plus "num_vote_samples": M when M > 0.
RewardPtr make_borda_reward(AnswerExtractor extractor, double power = 0.5, double min_vote_share = 0.0);

// 1 when the extracted answer equals normalize_answer(example[answer_key]), else 0. A row
// without the key throws (the pipeline marks the group unscorable and reports it).
RewardPtr make_verifier_reward(AnswerExtractor extractor, std::string answer_key = "answer");

// 1 when the completion matches `pattern` (PCRE2, searched anywhere; anchor it with ^...$).
RewardPtr make_format_reward(const std::string& pattern);

// DAPO's soft overlong punishment (Yu et al. 2025, eq. 13), L = token count:
//   0 if L ≤ max_len − cache;  (max_len − cache − L) / cache if L ≤ max_len;  −1 beyond.
RewardPtr make_soft_overlong_reward(int64_t max_completion_length, int64_t overlong_cache);

// −L / max_completion_length: a plain pressure towards shorter answers.
RewardPtr make_length_penalty_reward(int64_t max_completion_length);

// Pure helpers (also used by the tests).
double soft_overlong_punishment(int64_t length, int64_t max_completion_length, int64_t overlong_cache);
double mean_self_certainty(const std::vector<float>& per_token);

}  // namespace selfrl::rewards
