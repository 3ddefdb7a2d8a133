// The collapse guard on a logged run: `selfrl guard RUN`, selfrl.replay_collapse_guard in Python.
// Check what the guard said (or would have said with other settings) about a GRPO run you have,
// or choose a recipe's collapse_guard section on runs of your own task, with the guard the
// trainers use (selfrl/trainers/label_free.h).
//
//   auto config = loops::collapse_guard_settings({"patience=2", "answered_agreement_drop=0.05"});
//   auto r = loops::replay_collapse_guard(io::read_jsonl("runs/x/metrics.jsonl"), config);
//   if (r.fired_at_step) ... *r.fired_at_step, r.reason
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "selfrl/trainers/label_free.h"

namespace selfrl::loops {

// The guard a recipe's collapse_guard section describes, from "KEY=VALUE" settings (the
// "collapse_guard." prefix optional; values in YAML / JSON). The recipe reader reads them, so
// keys, defaults, ranges and errors ("did you mean") are those of `selfrl train`.
trainers::CollapseGuardConfig collapse_guard_settings(const std::vector<std::string>& settings);

struct GuardReplay {
  int64_t steps = 0;                          // rows fed to the guard
  std::optional<int64_t> fired_at_step;       // 1-based in those rows, as the demo's notes.collapse_guard
  std::optional<int64_t> first_flagged_step;  // the first step of the streak that fired
  std::string reason;                         // the rule and its numbers at the step it fired
  std::vector<int64_t> flagged_steps;         // every flagged step
};

// Feeds the guard the rows that are GRPO steps: those with "entropy" and a kind other than
// "eval" and "iteration" (every numeric field is passed; the guard reads its own). Throws Error
// when no row is a step.
GuardReplay replay_collapse_guard(const std::vector<nlohmann::json>& rows, const trainers::CollapseGuardConfig& config);

nlohmann::json to_json(const GuardReplay& r);  // {"steps", "fired_at_step" (null: never), ...}

}  // namespace selfrl::loops
