// B-STaR: balance-score-driven retuning of temperature and reward threshold each iteration.
#include "selfrl/loops/bstar.h"
#include "selfrl/loops/loop_registry.h"

#include <cmath>
#include <iomanip>
#include <set>
#include <sstream>

#include "selfrl/core/error.h"
#include "selfrl/core/logging.h"
#include "selfrl/core/seed.h"
#include "selfrl/loops/self_improvement_loop.h"

namespace selfrl::loops {

double balance_score(int64_t n_sel, int64_t n_correct, int64_t target) {
  SELFRL_CHECK(target >= 1, "balance score: target_correct must be >= 1");
  SELFRL_CHECK(n_correct <= n_sel, "balance score: more correct (", n_correct, ") than selected (", n_sel, ")");
  if (n_sel == 0) return 0.0;
  const double nc = static_cast<double>(n_correct);
  return std::min(nc / static_cast<double>(target), 1.0) * nc / static_cast<double>(n_sel);
}

BStarStats bstar_stats(const std::vector<BStarQuery>& queries, double threshold, int64_t target) {
  BStarStats s;
  double sel_total = 0, sel_correct = 0;
  for (const auto& q : queries) {
    std::set<std::string> distinct_sel, distinct_all;
    int64_t n_sel = 0, best = -1;
    bool any = false;
    for (size_t i = 0; i < q.scores.size(); ++i) {
      if (q.correct[i]) any = true, distinct_all.insert(q.texts[i]);
      if (std::isfinite(q.scores[i]) && (best < 0 || q.scores[i] > q.scores[static_cast<size_t>(best)]))
        best = static_cast<int64_t>(i);
      if (std::isfinite(q.scores[i]) && q.scores[i] >= threshold) {
        ++n_sel;
        sel_total += 1;
        if (q.correct[i]) sel_correct += 1, distinct_sel.insert(q.texts[i]);
      }
    }
    s.balance_score += balance_score(n_sel, static_cast<int64_t>(distinct_sel.size()), target);
    s.pass_at_k += any;
    s.distinct_correct += static_cast<double>(distinct_all.size());
    s.reward_at_k += best >= 0 && q.correct[static_cast<size_t>(best)];
    s.selected += static_cast<double>(n_sel);
  }
  const double n = std::max<double>(1.0, static_cast<double>(queries.size()));
  s.balance_score /= n;
  s.pass_at_k /= n;
  s.distinct_correct /= n;
  s.reward_at_k /= n;
  s.selected /= n;
  s.selection_precision = sel_total > 0 ? sel_correct / sel_total : 0.0;
  return s;
}

BStarChoice bstar_choose(const std::vector<std::vector<BStarStats>>& grid) {
  BStarChoice best;
  bool first = true;
  for (size_t t = 0; t < grid.size(); ++t)
    for (size_t r = 0; r < grid[t].size(); ++r)
      if (first || grid[t][r].balance_score > best.stats.balance_score) {
        best = {t, r, grid[t][r]};
        first = false;
      }
  return best;
}

namespace {

std::string fmt(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

class BStarLoop : public SelfImprovementLoop {
 public:
  std::string name() const override { return "bstar"; }
  metrics::Scalars iterate(RunContext& ctx, int64_t it) override {
    const auto& c = ctx.cfg;
    const auto& b = c.bstar;
    for (const auto& p : ctx.train)
      if (!p.answer) throw Error("B-STaR needs an answer for every training query").at(p.where);
    auto selection = ctx.make_rewards(b.selection_funcs, b.selection_weights);
    auto queries_for = [&](const std::vector<size_t>& idx, double temperature, uint64_t seed,
                           std::vector<generation::Rollout>* keep) {
      std::vector<std::vector<int64_t>> ids;
      for (size_t i : idx) ids.push_back(ctx.train[i].ids);
      auto rollouts =
          ctx.sample(ids, b.num_samples, temperature, c.sampling.max_new_tokens, seed, "bstar T=" + fmt(temperature));
      std::vector<rewards::Group> groups;
      for (size_t j = 0; j < idx.size(); ++j) groups.push_back(to_group(ctx.train[idx[j]], rollouts[j], ctx.policy));
      const auto scores = weighted_group_scores(selection, groups);
      std::vector<BStarQuery> qs;
      for (size_t j = 0; j < idx.size(); ++j) {
        BStarQuery q;
        const std::string ref = rewards::normalize_answer(*ctx.train[idx[j]].answer);
        for (size_t s = 0; s < groups[j].samples.size(); ++s) {
          const auto a = ctx.extractor.extract(groups[j].samples[s].completion);
          q.scores.push_back(scores[j][s]);
          q.correct.push_back(a && *a == ref);
          q.texts.push_back(groups[j].samples[s].completion);
        }
        qs.push_back(std::move(q));
      }
      if (keep) *keep = std::move(rollouts);
      return qs;
    };

    // 1. grid search on the probe queries.
    auto order = shuffled_indices(ctx.train.size(), derive_seed(c.seed, {0xb5, static_cast<uint64_t>(it)}));
    order.resize(std::min<size_t>(order.size(), static_cast<size_t>(b.probe_prompts)));
    std::vector<std::vector<BStarStats>> grid;
    metrics::Scalars m;
    for (size_t t = 0; t < b.temperatures.size(); ++t) {
      const auto qs =
          queries_for(order, b.temperatures[t], derive_seed(c.seed, {0xb6, static_cast<uint64_t>(it), t}), nullptr);
      grid.emplace_back();
      for (size_t r = 0; r < b.reward_thresholds.size(); ++r) {
        grid.back().push_back(bstar_stats(qs, b.reward_thresholds[r], b.target_correct));
        m["bstar/grid/T" + fmt(b.temperatures[t]) + "_thr" + fmt(b.reward_thresholds[r])] =
            grid.back().back().balance_score;
      }
    }
    const auto choice = bstar_choose(grid);
    const double temperature = b.temperatures[choice.temperature_index];
    const double threshold = b.reward_thresholds[choice.threshold_index];
    m["bstar/temperature"] = temperature;
    m["bstar/reward_threshold"] = threshold;
    m["bstar/balance_score"] = choice.stats.balance_score;
    m["bstar/pass_at_k"] = choice.stats.pass_at_k;
    m["bstar/distinct_correct"] = choice.stats.distinct_correct;
    m["bstar/reward_at_k"] = choice.stats.reward_at_k;
    m["bstar/selection_precision"] = choice.stats.selection_precision;

    // 2. Grow with the chosen configuration; keep selected ∩ correct, distinct, capped.
    std::vector<size_t> all(ctx.train.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    std::vector<generation::Rollout> rollouts;
    const auto qs = queries_for(all, temperature, derive_seed(c.seed, {0xb7, static_cast<uint64_t>(it)}), &rollouts);
    std::vector<trainers::SFTExample> kept;
    for (size_t i = 0; i < qs.size(); ++i) {
      std::set<std::string> seen;
      int64_t n = 0;
      for (size_t s = 0; s < qs[i].scores.size() && n < b.max_per_prompt; ++s) {
        if (!(qs[i].correct[s] && std::isfinite(qs[i].scores[s]) && qs[i].scores[s] >= threshold)) continue;
        if (!seen.insert(qs[i].texts[s]).second) continue;
        kept.push_back({ctx.train[i].ids, rollouts[i].completions[s].token_ids});
        ++n;
      }
    }
    auto model = b.from_base ? ctx.load_base() : ctx.policy.model;
    for (const auto& [k, v] : ctx.sft(model, kept)) m[k] = v;
    ctx.policy.model = model;
    m["kept"] = static_cast<double>(kept.size());
    SELFRL_INFO("bstar iteration " << it << ": chose temperature " << temperature << ", reward threshold " << threshold
                                   << " (balance score " << choice.stats.balance_score << ")");
    return m;
  }
};

}  // namespace

std::unique_ptr<SelfImprovementLoop> make_bstar_loop() { return std::make_unique<BStarLoop>(); }

namespace {
const RegisterLoop kBStar({"bstar", "B-STaR: balanced exploration and exploitation",
                           [](const TrainConfig&) { return make_bstar_loop(); }});
}  // namespace

}  // namespace selfrl::loops
