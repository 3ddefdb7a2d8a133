// Self-rewarding DPO and ScPO: preference pairs the policy builds from its own samples, then DPO.
#include "selfrl/loops/preference_loops.h"
#include "selfrl/loops/loop_registry.h"

#include <cmath>
#include <map>

#include "selfrl/core/error.h"
#include "selfrl/core/seed.h"
#include "selfrl/loops/self_improvement_loop.h"

namespace selfrl::loops {

std::optional<ScpoChoice> scpo_choose(const std::vector<std::optional<std::string>>& answers, double min_vote_share) {
  std::map<std::string, int64_t> votes;
  for (const auto& a : answers)
    if (a) ++votes[*a];
  if (votes.empty()) return std::nullopt;
  auto v = [&](size_t i) { return answers[i] ? votes[*answers[i]] : int64_t{0}; };
  ScpoChoice c;
  bool have = false;
  for (size_t i = 0; i < answers.size(); ++i) {
    if (!have || v(i) > v(c.chosen)) c.chosen = i;
    if (!have || v(i) < v(c.rejected)) c.rejected = i;
    have = true;
  }
  c.chosen_votes = v(c.chosen);
  c.rejected_votes = v(c.rejected);
  const double k = static_cast<double>(answers.size());
  c.vote_share = static_cast<double>(c.chosen_votes) / k;
  c.weight = static_cast<double>(c.chosen_votes - c.rejected_votes) / k;
  if (c.chosen_votes == c.rejected_votes || c.vote_share < min_vote_share) return std::nullopt;
  return c;
}

namespace {

class PreferenceLoop : public SelfImprovementLoop {
 public:
  explicit PreferenceLoop(bool scpo) : scpo_(scpo) {}
  std::string name() const override { return scpo_ ? "scpo" : "self_rewarding_dpo"; }

  metrics::Scalars iterate(RunContext& ctx, int64_t it) override {
    const auto& c = ctx.cfg;
    std::vector<std::vector<int64_t>> ids;
    for (const auto& p : ctx.train) ids.push_back(p.ids);
    const int64_t n = scpo_ ? c.scpo.num_samples : c.self_rewarding.num_samples;
    const auto rollouts = ctx.sample(ids, n, c.sampling.temperature, c.sampling.max_new_tokens,
                                     derive_seed(c.seed, {0x5e1f, static_cast<uint64_t>(it)}), name() + " responses");
    metrics::Scalars m;
    std::vector<trainers::PreferencePair> pairs =
        scpo_ ? scpo_pairs(ctx, rollouts, m) : judged_pairs(ctx, rollouts, it, m);
    for (const auto& [k, v] : ctx.dpo(ctx.policy.model, pairs, scpo_, c.scpo.alpha)) m[k] = v;
    m["pairs"] = static_cast<double>(pairs.size());
    return m;
  }

 private:
  // ScPO: consensus over extracted answers — no labels are read.
  std::vector<trainers::PreferencePair> scpo_pairs(RunContext& ctx, const std::vector<generation::Rollout>& rollouts,
                                                   metrics::Scalars& m) {
    std::vector<trainers::PreferencePair> pairs;
    double margin = 0, share = 0;
    for (size_t i = 0; i < rollouts.size(); ++i) {
      std::vector<std::optional<std::string>> answers;
      for (const auto& comp : rollouts[i].completions)
        answers.push_back(ctx.extractor.extract(ctx.policy.decode(comp.token_ids)));
      const auto ch = scpo_choose(answers, ctx.cfg.scpo.min_vote_share);
      if (!ch) continue;
      pairs.push_back({ctx.train[i].ids, rollouts[i].completions[ch->chosen].token_ids,
                       rollouts[i].completions[ch->rejected].token_ids, ch->weight});
      margin += ch->weight;
      share += ch->vote_share;
    }
    const double np = std::max<double>(1.0, static_cast<double>(pairs.size()));
    m["scpo/mean_vote_margin"] = margin / np;
    m["scpo/mean_vote_share"] = share / np;
    m["scpo/kept_frac"] =
        static_cast<double>(pairs.size()) / std::max<double>(1.0, static_cast<double>(rollouts.size()));
    return pairs;
  }

  // Self-rewarding: the policy scores each response judge_samples times (judge_groups, the
  // same code as the `judge` reward, in one batched call for all prompts); best vs worst.
  std::vector<trainers::PreferencePair> judged_pairs(RunContext& ctx, const std::vector<generation::Rollout>& rollouts,
                                                     int64_t it, metrics::Scalars& m) {
    const auto& s = ctx.cfg.self_rewarding;
    rewards::JudgeOptions o;
    o.judge_template = s.judge_template;
    o.num_judgements = s.judge_samples;
    o.temperature = s.judge_temperature;
    o.max_new_tokens = s.judge_max_new_tokens;
    o.normalize = false;  // points in [0, 5]: min_score_gap is in points
    std::vector<rewards::Group> groups(rollouts.size());
    for (size_t i = 0; i < rollouts.size(); ++i) {
      groups[i].prompt = ctx.train[i].text;
      for (const auto& comp : rollouts[i].completions)
        groups[i].samples.push_back({ctx.policy.decode(comp.token_ids), {}, {}, false});
    }
    const auto judged = rewards::judge_groups(ctx.judge_fn(), groups, o,
                                              derive_seed(ctx.cfg.seed, {0x7d6e, static_cast<uint64_t>(it)}));
    std::vector<std::vector<double>> score(rollouts.size());
    double parsed = 0, total = 0, sum = 0, scored = 0;
    for (size_t i = 0; i < rollouts.size(); ++i) {
      score[i] = judged[i].scores;
      parsed += judged[i].info.at("parsed").get<double>();
      total += judged[i].info.at("asked").get<double>();
      for (double v : score[i])
        if (std::isfinite(v)) sum += v, scored += 1;
    }
    std::vector<trainers::PreferencePair> pairs;
    for (size_t i = 0; i < rollouts.size(); ++i) {
      int64_t best = -1, worst = -1;
      for (size_t j = 0; j < score[i].size(); ++j) {
        if (!std::isfinite(score[i][j])) continue;
        if (best < 0 || score[i][j] > score[i][static_cast<size_t>(best)]) best = static_cast<int64_t>(j);
        if (worst < 0 || score[i][j] < score[i][static_cast<size_t>(worst)]) worst = static_cast<int64_t>(j);
      }
      if (best < 0 || score[i][static_cast<size_t>(best)] - score[i][static_cast<size_t>(worst)] <= s.min_score_gap ||
          score[i][static_cast<size_t>(best)] == score[i][static_cast<size_t>(worst)])
        continue;
      pairs.push_back({ctx.train[i].ids, rollouts[i].completions[static_cast<size_t>(best)].token_ids,
                       rollouts[i].completions[static_cast<size_t>(worst)].token_ids, 1.0});
    }
    m["self_rewarding/judge_parse_rate"] = total > 0 ? parsed / total : 0.0;
    m["self_rewarding/mean_score"] = scored > 0 ? sum / scored : std::nan("");
    return pairs;
  }

  bool scpo_;
};

}  // namespace

std::unique_ptr<SelfImprovementLoop> make_self_rewarding_loop(bool scpo) {
  return std::make_unique<PreferenceLoop>(scpo);
}

namespace {
const RegisterLoop kSelfRewarding({"self_rewarding_dpo", "self-rewarding LMs: the policy judges, DPO",
                                   [](const TrainConfig&) { return make_self_rewarding_loop(false); }});
const RegisterLoop kScpo({"scpo", "self-consistency preference optimization",
                          [](const TrainConfig&) { return make_self_rewarding_loop(true); }});
}  // namespace

}  // namespace selfrl::loops
