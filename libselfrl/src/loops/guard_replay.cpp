#include "selfrl/loops/guard_replay.h"

#include "selfrl/core/error.h"
#include "selfrl/loops/train_config.h"
#include "selfrl/recipe/recipe.h"

namespace selfrl::loops {

trainers::CollapseGuardConfig collapse_guard_settings(const std::vector<std::string>& settings) {
  std::vector<std::string> overrides;
  for (const auto& s : settings) {
    if (s.find('=') == std::string::npos)
      throw Error("collapse guard setting '" + s + "' is not KEY=VALUE").hint("e.g. patience=2");
    overrides.push_back(s.rfind("collapse_guard.", 0) == 0 ? s : "collapse_guard." + s);
  }
  // The smallest GRPO recipe the reader accepts; of what it reads, only the guard's section is used.
  auto r = recipe::Recipe::parse(
      "trainer: grpo\nmodel: /\noutput_dir: /selfrl-unused\ndata: {train: /}\nreward_funcs: [self_certainty]\n",
      "collapse_guard", overrides);
  return read_train_config(r).collapse_guard;
}

GuardReplay replay_collapse_guard(const std::vector<nlohmann::json>& rows,
                                  const trainers::CollapseGuardConfig& config) {
  trainers::CollapseGuard guard(config);
  GuardReplay out;
  for (const auto& row : rows) {
    if (!row.is_object() || !row.contains("entropy")) continue;
    const std::string kind = row.value("kind", "");
    if (kind == "eval" || kind == "iteration") continue;
    metrics::Scalars m;
    for (const auto& [k, v] : row.items())
      if (v.is_number()) m[k] = v.get<double>();
    const int64_t step = ++out.steps;
    const auto v = guard.observe(m);
    if (v.flagged) out.flagged_steps.push_back(step);
    if (v.fired) {
      out.fired_at_step = step;
      out.first_flagged_step = guard.first_bad_step() + 1;
      out.reason = v.reason;
    }
  }
  if (out.steps == 0)
    throw Error("no GRPO step among " + std::to_string(rows.size()) + " rows: none has 'entropy'")
        .hint("give the metrics.jsonl of a GRPO / SEC run (selfrl train, the demo's GRPO stages)");
  return out;
}

nlohmann::json to_json(const GuardReplay& r) {
  nlohmann::json j{{"steps", r.steps}, {"reason", r.reason}, {"flagged_steps", r.flagged_steps}};
  j["fired_at_step"] = r.fired_at_step ? nlohmann::json(*r.fired_at_step) : nlohmann::json(nullptr);
  j["first_flagged_step"] = r.first_flagged_step ? nlohmann::json(*r.first_flagged_step) : nlohmann::json(nullptr);
  return j;
}

}  // namespace selfrl::loops
