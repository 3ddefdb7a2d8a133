// `selfrl guard`: the collapse guard replayed on a logged GRPO run (loops/guard_replay.h): where it
// fired and why, with the recipe's collapse_guard settings or others given as key=value.
#include <cstdio>
#include <filesystem>

#include "command.h"
#include "selfrl/core/error.h"
#include "selfrl/io/jsonl.h"
#include "selfrl/loops/guard_replay.h"

namespace selfrl::cli {
namespace {

constexpr const char* kUsage =
    "usage: selfrl guard RUN [key=value ...] [--json]\n\n"
    "Replays the collapse guard of GRPO runs on RUN (a run directory holding metrics.jsonl, or the\n"
    "file): the steps are the lines with entropy. Settings are the recipe's collapse_guard keys\n"
    "(warmup_steps, window, patience, entropy_rise, agreement_drop, answered_agreement_drop,\n"
    "no_answer_rise, min_anchor_agreement, ...; docs/algorithms.md), the recipe defaults otherwise.\n"
    "Prints the step it fires at (1-based over the steps) and the rule with its numbers, or that it\n"
    "does not fire; --json prints {steps, fired_at_step, first_flagged_step, reason, flagged_steps}.\n"
    "Exit status 0 either way.\n";

int run_guard(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  bool json = false;
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (a == "--json")
      json = true;
    else if (a.rfind("--", 0) == 0)
      throw Error("selfrl guard: unknown option '" + a + "'").hint("options: --json, --help");
    else
      positional.push_back(a);
  }
  if (positional.empty()) throw Error("selfrl guard: no run given").hint("selfrl guard RUN [key=value ...]");
  namespace fs = std::filesystem;
  const std::string path =
      fs::is_directory(positional[0]) ? (fs::path(positional[0]) / "metrics.jsonl").string() : positional[0];
  if (!fs::exists(path))
    throw Error("no such file").at(path).hint("give a run directory holding metrics.jsonl, or the file itself");
  const auto config = loops::collapse_guard_settings({positional.begin() + 1, positional.end()});
  const auto rows = io::read_jsonl(path);  // its errors name the file and line
  loops::GuardReplay r;
  try {
    r = loops::replay_collapse_guard(rows, config);
  } catch (Error& e) {
    throw e.at(path);
  }
  if (json) {
    std::printf("%s\n", loops::to_json(r).dump().c_str());
  } else if (r.fired_at_step) {
    std::printf("%s: the guard fires at step %lld of %lld (first flagged step %lld): %s\n", path.c_str(),
                static_cast<long long>(*r.fired_at_step), static_cast<long long>(r.steps),
                static_cast<long long>(*r.first_flagged_step), r.reason.c_str());
  } else {
    std::printf("%s: the guard does not fire over %lld steps (%zu flagged)\n", path.c_str(),
                static_cast<long long>(r.steps), r.flagged_steps.size());
  }
  return 0;
}

CommandRegistrar reg({"guard", "replay the collapse guard on a GRPO run's metrics.jsonl", run_guard});

}  // namespace
}  // namespace selfrl::cli
