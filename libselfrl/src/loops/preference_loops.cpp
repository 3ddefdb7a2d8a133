// Self-rewarding DPO and ScPO: preference pairs the policy builds from its own samples, then DPO.
#include "selfrl/loops/preference_loops.h"

#include <cmath>
#include <map>
#include <regex>

#include "selfrl/core/error.h"
#include "selfrl/core/seed.h"
#include "selfrl/loops/self_improvement_loop.h"

namespace selfrl::loops {

const std::string& default_judge_template() {
  // The additive rubric of Self-Rewarding LMs (Yuan et al. 2024, Fig. 2), in our own words.
  static const std::string t =
      "Review the user's question and the response below and score the response with the additive "
      "5-point system:\n"
      "- Add 1 point if the response is relevant and gives some information related to the question.\n"
      "- Add a 2nd point if it addresses a substantial part of the question, even if not completely.\n"
      "- Add a 3rd point if it answers the basic elements of the question in a useful way.\n"
      "- Add a 4th point if it is clearly written from an AI assistant's perspective, addresses the "
      "question directly and comprehensively, and is well organized.\n"
      "- Add a 5th point if it is impeccably tailored to the question, expert, engaging and without "
      "extraneous content.\n\n"
      "Question: {prompt}\nResponse: {response}\n\n"
      "Briefly justify your total, then conclude with \"Score: <points>\".";
  return t;
}

std::optional<double> parse_judge_score(const std::string& j) {
  static const std::regex score_re(R"([Ss][Cc][Oo][Rr][Ee]\s*:\s*(-?\d+(?:\.\d+)?))");
  static const std::regex num_re(R"(-?\d+(?:\.\d+)?)");
  std::optional<double> v;
  for (auto it = std::sregex_iterator(j.begin(), j.end(), score_re); it != std::sregex_iterator(); ++it) v = std::stod((*it)[1]);
  if (!v)
    for (auto it = std::sregex_iterator(j.begin(), j.end(), num_re); it != std::sregex_iterator(); ++it) v = std::stod((*it)[0]);
  if (!v || *v < 0 || *v > 5) return std::nullopt;
  return v;
}

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

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

class PreferenceLoop : public SelfImprovementLoop {
 public:
  explicit PreferenceLoop(bool scpo) : scpo_(scpo) {}
  std::string name() const override { return scpo_ ? "scpo" : "self_rewarding_dpo"; }

  metrics::Scalars iterate(RunContext& ctx, int64_t it) override {
    const auto& c = ctx.cfg;
    std::vector<std::vector<int64_t>> ids;
    for (const auto& p : ctx.train) ids.push_back(p.ids);
    const int64_t n = scpo_ ? c.scpo.num_samples : c.self_rewarding.num_samples;
    const auto rollouts = ctx.sample(ids, n, c.temperature, c.max_completion_length,
                                     derive_seed(c.seed, {0x5e1f, static_cast<uint64_t>(it)}), name() + " responses");
    metrics::Scalars m;
    std::vector<trainers::PreferencePair> pairs = scpo_ ? scpo_pairs(ctx, rollouts, m) : judged_pairs(ctx, rollouts, it, m);
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
      for (const auto& comp : rollouts[i].completions) answers.push_back(ctx.extractor.extract(ctx.policy.decode(comp.token_ids)));
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
    m["scpo/kept_frac"] = static_cast<double>(pairs.size()) / std::max<double>(1.0, static_cast<double>(rollouts.size()));
    return pairs;
  }

  // Self-rewarding: the policy scores each response judge_samples times; best vs worst.
  std::vector<trainers::PreferencePair> judged_pairs(RunContext& ctx, const std::vector<generation::Rollout>& rollouts,
                                                     int64_t it, metrics::Scalars& m) {
    const auto& s = ctx.cfg.self_rewarding;
    const std::string& tmpl = s.judge_template.empty() ? default_judge_template() : s.judge_template;
    std::vector<std::vector<int64_t>> judge_prompts;
    std::vector<std::pair<size_t, size_t>> owner;
    for (size_t i = 0; i < rollouts.size(); ++i)
      for (size_t j = 0; j < rollouts[i].completions.size(); ++j) {
        const std::string text =
            replace_all(replace_all(tmpl, "{prompt}", ctx.train[i].text), "{response}", ctx.policy.decode(rollouts[i].completions[j].token_ids));
        judge_prompts.push_back(ctx.fit_prompt(ctx.encode_prompt(text), s.judge_max_new_tokens));
        owner.push_back({i, j});
      }
    const auto judgements = ctx.sample(judge_prompts, s.judge_samples, s.judge_temperature, s.judge_max_new_tokens,
                                       derive_seed(ctx.cfg.seed, {0x7d6e, static_cast<uint64_t>(it)}), "judge");
    std::vector<std::vector<double>> score(rollouts.size());
    for (size_t i = 0; i < rollouts.size(); ++i) score[i].assign(rollouts[i].completions.size(), std::nan(""));
    double parsed = 0, total = 0, sum = 0, scored = 0;
    for (size_t q = 0; q < judgements.size(); ++q) {
      double acc = 0, cnt = 0;
      for (const auto& comp : judgements[q].completions) {
        total += 1;
        if (auto v = parse_judge_score(ctx.policy.decode(comp.token_ids))) acc += *v, cnt += 1, parsed += 1;
      }
      if (cnt > 0) {
        score[owner[q].first][owner[q].second] = acc / cnt;
        sum += acc / cnt;
        scored += 1;
      }
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

std::unique_ptr<SelfImprovementLoop> make_self_rewarding_loop(bool scpo) { return std::make_unique<PreferenceLoop>(scpo); }

}  // namespace selfrl::loops
