// Label-free diagnostics and the collapse guard (see selfrl/trainers/label_free.h).
#include "selfrl/trainers/label_free.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>

#include "selfrl/core/error.h"
#include "selfrl/eval/evaluator.h"

namespace selfrl::trainers {

void LabelFreeSums::add(const GroupAnswers& g) {
  SELFRL_CHECK(g.certainty.empty() || g.certainty.size() == g.answers.size(),
               "label-free diagnostics: ", g.certainty.size(), " certainties for ", g.answers.size(), " samples");
  const double n = static_cast<double>(g.answers.size());
  if (n == 0) return;
  const auto majority = eval::majority_answer(g.answers);
  std::vector<std::string> distinct;
  double votes = 0;
  for (const auto& a : g.answers) {
    if (!a) {
      no_answer += 1;
      continue;
    }
    if (std::find(distinct.begin(), distinct.end(), *a) == distinct.end()) distinct.push_back(*a);
    if (majority && *a == *majority) votes += 1;
  }
  groups += 1;
  samples += n;
  majority_share += votes / n;
  diversity += static_cast<double>(distinct.size()) / n;
  if (g.has_greedy) {
    greedy_groups += 1;
    if (majority && g.greedy_answer && *g.greedy_answer == *majority) greedy_agree += 1;
  }
  if (!majority || g.certainty.empty()) return;
  for (size_t i = 0; i < g.answers.size(); ++i) {
    if (!(g.answers[i] && *g.answers[i] == *majority)) continue;
    for (size_t j = 0; j < g.answers.size(); ++j) {
      if (g.answers[j] && *g.answers[j] == *majority) continue;
      const double ci = g.certainty[i], cj = g.certainty[j];
      if (!std::isfinite(ci) || !std::isfinite(cj)) continue;
      pairs += 1;
      pairs_won += ci > cj ? 1.0 : ci == cj ? 0.5 : 0.0;
    }
  }
}

const std::vector<std::string>& LabelFreeSums::names() {
  static const std::vector<std::string> n = {"groups",    "samples",       "no_answer",    "majority_share",
                                             "diversity", "greedy_groups", "greedy_agree", "pairs",
                                             "pairs_won", "anchors",       "anchor_agree"};
  return n;
}

std::vector<double> LabelFreeSums::values() const {
  return {groups,       samples, no_answer, majority_share, diversity,   greedy_groups,
          greedy_agree, pairs,   pairs_won, anchors,        anchor_agree};
}

LabelFreeSums LabelFreeSums::from_values(const std::vector<double>& v) {
  SELFRL_CHECK(v.size() == names().size(), "LabelFreeSums: ", v.size(), " values");
  LabelFreeSums s;
  s.groups = v[0], s.samples = v[1], s.no_answer = v[2], s.majority_share = v[3], s.diversity = v[4];
  s.greedy_groups = v[5], s.greedy_agree = v[6], s.pairs = v[7], s.pairs_won = v[8];
  s.anchors = v[9], s.anchor_agree = v[10];
  return s;
}

metrics::Scalars LabelFreeSums::scalars() const {
  metrics::Scalars m;
  if (anchors > 0) m["label_free/anchor_agreement"] = anchor_agree / anchors;
  if (groups == 0) return m;
  m["label_free/majority_share"] = majority_share / groups;
  m["label_free/answer_diversity"] = diversity / groups;
  m["label_free/no_answer_rate"] = samples > 0 ? no_answer / samples : 0.0;
  if (greedy_groups > 0) m["label_free/greedy_majority_agreement"] = greedy_agree / greedy_groups;
  m["label_free/certainty_agreement_auroc"] = pairs > 0 ? pairs_won / pairs : std::nan("");
  return m;
}

// ---- the collapse guard -----------------------------------------------------------------------

CollapseAction parse_collapse_action(const std::string& name) {
  if (name == "off") return CollapseAction::kOff;
  if (name == "warn") return CollapseAction::kWarn;
  if (name == "stop") return CollapseAction::kStop;
  if (name == "rollback") return CollapseAction::kRollback;
  throw Error("collapse_guard.action: unknown action '" + name + "'").hint("use off, warn, stop or rollback");
}

std::string to_string(CollapseAction a) {
  switch (a) {
    case CollapseAction::kOff:
      return "off";
    case CollapseAction::kWarn:
      return "warn";
    case CollapseAction::kStop:
      return "stop";
    case CollapseAction::kRollback:
      return "rollback";
  }
  return "?";
}

namespace {

// The signals the guard keeps a baseline and a window of.
const char* const kSignals[] = {"self_certainty",
                                "entropy",
                                "label_free/majority_share",
                                "label_free/greedy_majority_agreement",
                                "label_free/no_answer_rate",
                                "label_free/certainty_agreement_auroc",
                                "label_free/anchor_agreement"};

bool has(const metrics::Scalars& m, const std::string& k) {
  auto it = m.find(k);
  return it != m.end() && std::isfinite(it->second);
}

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(3);
  os << v;
  return os.str();
}

}  // namespace

CollapseGuard::CollapseGuard(CollapseGuardConfig config) : cfg_(config) {
  SELFRL_CHECK(cfg_.warmup_steps >= 1, "collapse_guard.warmup_steps must be >= 1, got ", cfg_.warmup_steps);
  SELFRL_CHECK(cfg_.window >= 1, "collapse_guard.window must be >= 1, got ", cfg_.window);
  SELFRL_CHECK(cfg_.patience >= 1, "collapse_guard.patience must be >= 1, got ", cfg_.patience);
}

CollapseVerdict CollapseGuard::observe(metrics::Scalars& m) {
  CollapseVerdict v;
  const int64_t step = steps_++;
  if (cfg_.action == CollapseAction::kOff) return v;
  metrics::Scalars signals;
  for (const char* k : kSignals)
    if (has(m, k)) signals[k] = m.at(k);
  window_.push_back(signals);
  if (static_cast<int64_t>(window_.size()) > cfg_.window) window_.erase(window_.begin());
  m["collapse_guard/flagged"] = 0;
  m["collapse_guard/streak"] = 0;
  if (step < cfg_.warmup_steps) {
    for (const auto& [k, x] : signals) base_sum_[k] += x, base_count_[k] += 1;
    return v;
  }
  auto base = [&](const std::string& k) -> std::optional<double> {
    auto it = base_count_.find(k);
    if (it == base_count_.end() || it->second == 0) return std::nullopt;
    return base_sum_.at(k) / it->second;
  };
  auto now = [&](const std::string& k) -> std::optional<double> {  // the window's mean
    double sum = 0, n = 0;
    for (const auto& w : window_)
      if (auto it = w.find(k); it != w.end()) sum += it->second, n += 1;
    if (n == 0) return std::nullopt;
    return sum / n;
  };
  const std::string kMajority = "label_free/majority_share", kNoAnswer = "label_free/no_answer_rate";
  std::vector<std::string> reasons;
  // 1. Diffusion.
  if (cfg_.entropy_rise > 0 && (cfg_.agreement_drop > 0 || cfg_.answered_agreement_drop > 0)) {
    const auto e0 = base("entropy"), e = now("entropy"), a0 = base(kMajority), a = now(kMajority);
    if (e0 && e && *e0 > 0 && *e >= cfg_.entropy_rise * *e0 && a0 && a) {
      const std::string rose = "entropy rose to " + fmt(*e / *e0) + "x its baseline " + fmt(*e0) + " while ";
      // The majority's share of the answered samples, from window means (no no_answer_rate: all answered).
      const auto answered = [&](double share, std::optional<double> no_answer) -> std::optional<double> {
        const double answering = 1.0 - no_answer.value_or(0.0);
        if (answering <= 0) return std::nullopt;
        return share / answering;
      };
      const auto s0 = answered(*a0, base(kNoAnswer)), s = answered(*a, now(kNoAnswer));
      if (cfg_.agreement_drop > 0 && *a0 - *a >= cfg_.agreement_drop)
        reasons.push_back(rose + kMajority + " fell from " + fmt(*a0) + " to " + fmt(*a));
      else if (cfg_.answered_agreement_drop > 0 && s0 && s && *s0 - *s >= cfg_.answered_agreement_drop)
        reasons.push_back(rose + "the majority's share of the answered samples fell from " + fmt(*s0) + " to " +
                          fmt(*s) + " (" + kMajority + " / (1 - " + kNoAnswer + "))");
    }
  }
  // 2. Confident disagreement.
  if (cfg_.certainty_rise > 0 && cfg_.agreement_drop > 0) {
    const auto c0 = base("self_certainty"), c = now("self_certainty");
    if (c0 && c && *c - *c0 >= cfg_.certainty_rise) {
      for (const std::string& k : {kMajority, std::string("label_free/greedy_majority_agreement")}) {
        const auto a0 = base(k), a = now(k);
        if (a0 && a && *a0 - *a >= cfg_.agreement_drop) {
          reasons.push_back("self_certainty rose " + fmt(*c - *c0) + " over its baseline " + fmt(*c0) + " while " + k +
                            " fell from " + fmt(*a0) + " to " + fmt(*a));
          break;
        }
      }
    }
  }
  // 3. Answers the extractor cannot find.
  if (cfg_.no_answer_rise > 0) {
    const auto b = base("label_free/no_answer_rate"), x = now("label_free/no_answer_rate");
    if (b && x && *x - *b >= cfg_.no_answer_rise)
      reasons.push_back("label_free/no_answer_rate rose from " + fmt(*b) + " to " + fmt(*x));
  }
  // 4. Entropy collapse.
  if (cfg_.min_entropy_ratio > 0) {
    const auto b = base("entropy"), x = now("entropy");
    if (b && x && *b > 0 && *x < cfg_.min_entropy_ratio * *b)
      reasons.push_back("entropy fell to " + fmt(*x) + " (baseline " + fmt(*b) + ", limit " +
                        fmt(cfg_.min_entropy_ratio) + " x baseline)");
  }
  // 5. Certainty no longer prefers the majority's samples.
  if (cfg_.min_certainty_agreement_auroc > 0) {
    const auto x = now("label_free/certainty_agreement_auroc");
    if (x && *x < cfg_.min_certainty_agreement_auroc)
      reasons.push_back("label_free/certainty_agreement_auroc is " + fmt(*x) + " (< " +
                        fmt(cfg_.min_certainty_agreement_auroc) + ")");
  }
  // 6. Anchors lost.
  if (cfg_.min_anchor_agreement > 0) {
    const auto x = now("label_free/anchor_agreement");
    if (x && *x < cfg_.min_anchor_agreement)
      reasons.push_back("label_free/anchor_agreement is " + fmt(*x) + " (< " + fmt(cfg_.min_anchor_agreement) +
                        "): the policy no longer gives the answers its first steps were unanimous about");
  }
  v.flagged = !reasons.empty();
  if (v.flagged) {
    if (streak_ == 0 && !fired_) first_bad_ = step;
    ++streak_;
    for (size_t i = 0; i < reasons.size(); ++i) v.reason += (i ? "; " : "") + reasons[i];
  } else {
    streak_ = 0;
    if (!fired_) first_bad_ = -1;
  }
  if (v.flagged && streak_ >= cfg_.patience && !fired_) {
    fired_ = true;
    v.fired = true;
  }
  m["collapse_guard/flagged"] = v.flagged ? 1 : 0;
  m["collapse_guard/streak"] = static_cast<double>(streak_);
  return v;
}

nlohmann::json CollapseGuard::state() const {
  return {{"steps", steps_},       {"streak", streak_},         {"first_bad", first_bad_}, {"fired", fired_},
          {"base_sum", base_sum_}, {"base_count", base_count_}, {"window", window_}};
}

void CollapseGuard::restore(const nlohmann::json& j) {
  steps_ = j.at("steps").get<int64_t>();
  streak_ = j.at("streak").get<int64_t>();
  first_bad_ = j.at("first_bad").get<int64_t>();
  fired_ = j.at("fired").get<bool>();
  base_sum_ = j.at("base_sum").get<metrics::Scalars>();
  base_count_ = j.at("base_count").get<metrics::Scalars>();
  window_ = j.at("window").get<std::vector<metrics::Scalars>>();
}

}  // namespace selfrl::trainers
