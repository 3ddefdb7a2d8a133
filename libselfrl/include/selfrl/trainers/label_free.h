// Label-free diagnostics of a GRPO step and the collapse guard that watches them.
//
// Label-free rewards (TTRL's majority vote, Intuitor's self-certainty) can be maximised by
// degenerate policies: one confident answer for everything, answers the extractor cannot parse,
// certainty that no longer goes with the answers the samples agree on ("Collapse of
// self-trained language models"; docs/demo.md measures it on the demo). Nothing here reads a
// label: every statistic compares a group's own samples with each other, with their own
// self-certainty, and with the policy's greedy answer.
//
// Per group of G samples, with a = the extracted answers and m = the majority answer (most
// votes; ties: the one seen first; no answer never votes):
//   majority_share            votes(m) / G
//   answer_diversity          (distinct answers) / G
//   no_answer_rate            samples without an answer / G
//   greedy_majority_agreement 1 when the greedy completion's answer equals m (both present)
//   certainty_agreement_auroc over pairs (i, j) of one group with a_i = m and a_j ≠ m:
//                             P(certainty_i > certainty_j) + ½ P(equal); 0.5 = unrelated
// A step reports the mean over groups (no_answer_rate: over samples; the AUROC: over all such
// pairs of the step; NaN without any). Metric names: label_free/<statistic>.
//
// Anchors (GRPOConfig::anchor_prompts): prompts of the first steps whose G samples all gave the
// same answer, kept with that answer. Every later step decodes them greedily:
//   anchor_agreement          (anchors whose greedy answer is still the kept one) / anchors
// A policy that sharpens keeps the answers its base was unanimous about; one that collapses
// confidently (entropy falling, reward rising, answers changing everywhere) loses them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "selfrl/core/error.h"
#include "selfrl/metrics/metrics.h"

namespace selfrl::trainers {

// One group as the diagnostics see it.
struct GroupAnswers {
  std::vector<std::optional<std::string>> answers;  // extracted answer per sample
  std::vector<double> certainty;                    // mean self-certainty per sample (same order)
  bool has_greedy = false;                          // greedy_answer was decoded
  std::optional<std::string> greedy_answer;
};

// Sums over groups (and over ranks: every field adds), turned into metrics by scalars().
struct LabelFreeSums {
  double groups = 0, samples = 0, no_answer = 0, majority_share = 0, diversity = 0;
  double greedy_groups = 0, greedy_agree = 0;
  double pairs = 0, pairs_won = 0;       // certainty_agreement_auroc = pairs_won / pairs
  double anchors = 0, anchor_agree = 0;  // anchor_agreement = anchor_agree / anchors
  void add(const GroupAnswers& g);
  // The field names, in a fixed order, and the values in that order (for reductions).
  static const std::vector<std::string>& names();
  std::vector<double> values() const;
  static LabelFreeSums from_values(const std::vector<double>& v);
  // label_free/majority_share, .../answer_diversity, .../no_answer_rate,
  // .../greedy_majority_agreement (only with greedy groups), .../certainty_agreement_auroc,
  // .../anchor_agreement (only with anchors).
  metrics::Scalars scalars() const;
};

// ---- the collapse guard -----------------------------------------------------------------------

enum class CollapseAction { kOff, kWarn, kStop, kRollback };
CollapseAction parse_collapse_action(const std::string& name);  // off | warn | stop | rollback
std::string to_string(CollapseAction a);

// When a step counts as "collapsing" (recipe section collapse_guard:, docs/algorithms.md). The
// first `warmup_steps` steps set each signal's baseline (their mean); after them, every step
// compares the mean of the last `window` steps with it (single steps are too noisy: a batch of
// new prompts moves every statistic). A step is flagged when any enabled rule holds, and the
// guard fires after `patience` flagged steps in a row. A rule whose threshold is 0 is off.
//
// The defaults come from the demo (docs/demo.md, collapse guard): Intuitor runs that lost 5–84
// points of accuracy all showed rule 1 within 10–14 steps; TTRL runs that gained did not. Over
// every GRPO stage the demo has recorded (202 metric logs: TTRL, Intuitor with self-certainty and
// Borda, learning rates 5e-6 to 3e-4, 40–120 steps, 1 and 2 BLAS threads) rule 1 with both
// agreement measures fires on 31 of the 35 that lost more than 10 points and on none that lost
// less than 3; with majority_share alone, on 24.
struct CollapseGuardConfig {
  CollapseAction action = CollapseAction::kWarn;
  int64_t warmup_steps = 5;
  int64_t window = 5;
  int64_t patience = 3;
  // 1. Diffusion: entropy at least `entropy_rise` x its baseline while the group majority
  //    loses at least `agreement_drop` of its share — the policy spreads out and agrees less
  //    with itself, what the collapsing Intuitor runs did — or, at the same entropy, the
  //    majority's share of the samples that gave an answer (window means: majority_share /
  //    (1 − no_answer_rate)) loses at least `answered_agreement_drop`. The second measure is
  //    for baselines taken while many samples gave no answer: as the policy learns to answer,
  //    majority_share rises with the answered samples and hides a later loss of agreement
  //    among them (the slow collapses of docs/demo.md, "The collapse guard on the 80-step runs").
  double entropy_rise = 1.3;
  double agreement_drop = 0.03;
  double answered_agreement_drop = 0.06;
  // 2. Confident disagreement: self_certainty at least `certainty_rise` (nats) above its
  //    baseline while majority_share or greedy_majority_agreement drops by `agreement_drop`.
  double certainty_rise = 0.0;
  // 3. Answers the extractor cannot find rise by at least this much (absolute rate).
  double no_answer_rise = 0.2;
  // 4. Entropy collapse: entropy below this fraction of its baseline. Off by default:
  //    sharpening is what TTRL is meant to do.
  double min_entropy_ratio = 0.0;
  // 5. Certainty no longer prefers the samples that agree with the majority:
  //    certainty_agreement_auroc (window mean) below this value.
  double min_certainty_agreement_auroc = 0.0;
  // 6. Anchors lost: anchor_agreement (window mean) below this value — the policy no longer
  //    gives the answers its first steps were unanimous about. Catches the confident collapse
  //    that rule 1 misses (entropy falls instead of rising). Needs anchors (GRPOConfig).
  double min_anchor_agreement = 0.0;
};

struct CollapseVerdict {
  bool flagged = false;  // this step matches a rule
  bool fired = false;    // `patience` flagged steps in a row: act now
  std::string reason;    // which rule, with the numbers (empty when not flagged)
};

class CollapseGuard {
 public:
  explicit CollapseGuard(CollapseGuardConfig config = {});
  // Feeds one step's metrics (the GRPO trainer's names: self_certainty, entropy,
  // label_free/*). Adds collapse_guard/flagged and collapse_guard/streak to `m`.
  CollapseVerdict observe(metrics::Scalars& m);
  const CollapseGuardConfig& config() const { return cfg_; }
  bool fired() const { return fired_; }
  // The index (0-based, in observe() calls) of the first flagged step of the current streak
  // (after firing: of the streak that fired), or −1.
  int64_t first_bad_step() const { return first_bad_; }
  // Checkpoint state: baseline sums, the window, streak, step counter.
  nlohmann::json state() const;
  void restore(const nlohmann::json& j);

 private:
  CollapseGuardConfig cfg_;
  int64_t steps_ = 0, streak_ = 0, first_bad_ = -1;
  bool fired_ = false;
  metrics::Scalars base_sum_, base_count_;
  std::vector<metrics::Scalars> window_;  // the signals of the last `window` steps
};

// Thrown when the guard ends a run (action stop or rollback); `selfrl train` exits with status 3.
class CollapseStopped : public Error {
 public:
  CollapseStopped(std::string message, std::string checkpoint_dir)
      : Error(std::move(message)), checkpoint_dir_(std::move(checkpoint_dir)) {}
  // stop: the checkpoint written at the step the guard fired; rollback: the one restored.
  const std::string& checkpoint_dir() const { return checkpoint_dir_; }

 private:
  std::string checkpoint_dir_;
};

}  // namespace selfrl::trainers
