// The reward registry: every reward a recipe can name in `reward_funcs:` (or
// `bstar.selection_funcs:`), by name, with its factory and one line of documentation. The
// built-ins register themselves next to their code (builtin_rewards.cpp, judge_reward.cpp); a
// program that links libselfrl registers its own the same way, before it reads a recipe:
//
//   selfrl::rewards::register_reward("brevity", [](const selfrl::rewards::RewardArgs&) {
//     return selfrl::rewards::make_function_reward("brevity", [](const selfrl::rewards::Group& g) {
//       std::vector<double> s;
//       for (const auto& x : g.samples) s.push_back(-double(x.completion.size()));
//       return s;
//     });
//   }, "minus the completion's length in bytes");
//
// The recipe validator, `selfrl train --list-keys`, docs/recipes.md and the "unknown reward"
// error (with its did-you-mean) all read this list. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "selfrl/core/error.h"
#include "selfrl/rewards/answer_extractor.h"
#include "selfrl/rewards/judge_reward.h"
#include "selfrl/rewards/reward.h"

namespace selfrl::rewards {

// What a factory may use: the run's settings, as the recipe gave them.
struct RewardArgs {
  AnswerExtractor extractor;            // answer_extractor
  std::string answer_field = "answer";  // data.answer_field
  int64_t max_completion_length = 64;
  double borda_power = 0.5;
  double consensus_min_vote_share = 0.0;  // consensus, borda: see make_consensus_reward
  std::string format_pattern;
  JudgeOptions judge;  // judge.*, with the run's seed
  // The judge as a generation callable (the policy or judge.model); built on first call.
  std::function<JudgeFn()> judge_fn;
};

using RewardFactory = std::function<RewardPtr(const RewardArgs&)>;

struct RewardInfo {
  std::string name;
  std::string doc;
  RewardFactory factory;
  bool builtin = false;
};

// Registers (or replaces) `name`. Names are what recipes write: [A-Za-z_][A-Za-z0-9_.-]*.
void register_reward(const std::string& name, RewardFactory factory, const std::string& doc = "", bool builtin = false);
// Removes a user registration (built-ins stay); returns whether it existed.
bool unregister_reward(const std::string& name);
// Every registered reward, built-ins first, then in registration order.
std::vector<RewardInfo> registered_rewards();
std::vector<std::string> registered_reward_names();
bool is_registered_reward(const std::string& name);
// Builds `name` with `args`. Unknown → Error listing the known names, with a did-you-mean.
RewardPtr make_reward(const std::string& name, const RewardArgs& args);
// The "unknown reward" error for `name` (the validator adds where it was written).
Error unknown_reward_error(const std::string& name);

// Registers a built-in at load time: `static RegisterReward r("name", factory, "doc");`
struct RegisterReward {
  RegisterReward(const std::string& name, RewardFactory factory, const std::string& doc) {
    register_reward(name, std::move(factory), doc, true);
  }
};

}  // namespace selfrl::rewards
