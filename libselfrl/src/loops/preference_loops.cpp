// Self-rewarding DPO and ScPO: preference pairs the policy builds from its own samples, then DPO.
#include "selfrl/loops/preference_loops.h"
#include "selfrl/loops/loop_registry.h"

#include <cctype>
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

const std::string& default_meta_judge_template() {
  static const std::string t =
      "Review two judgements of the same response.\n"
      "Question: {prompt}\n"
      "Response: {response}\n"
      "Judgement A: {judgement_a}\n"
      "Judgement B: {judgement_b}\n"
      "Which judgement applies the 5-point rubric more accurately? Answer \"Winner: A\" or \"Winner: B\".\n";
  return t;
}

std::string fill_meta_judge_template(const std::string& tmpl, const std::string& prompt, const std::string& response,
                                     const std::string& a, const std::string& b) {
  const std::vector<std::pair<std::string, const std::string*>> keys = {
      {"{prompt}", &prompt}, {"{response}", &response}, {"{judgement_a}", &a}, {"{judgement_b}", &b}};
  std::string out;
  for (size_t i = 0; i < tmpl.size();) {
    bool hit = false;
    for (const auto& [k, v] : keys) {
      if (tmpl.compare(i, k.size(), k) == 0) {
        out += *v;  // replacements are not re-scanned
        i += k.size();
        hit = true;
        break;
      }
    }
    if (!hit) out += tmpl[i++];
  }
  return out;
}

std::optional<int> parse_meta_verdict(const std::string& text) {
  std::string lower(text);
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const size_t at = lower.rfind("winner:");
  if (at == std::string::npos) return std::nullopt;
  for (size_t i = at + 7; i < lower.size(); ++i) {
    if (lower[i] == ' ' || lower[i] == '\t' || lower[i] == '*' || lower[i] == '"') continue;
    if (lower[i] == 'a') return 0;
    if (lower[i] == 'b') return 1;
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<std::pair<size_t, size_t>> meta_judge_choice(size_t n, const std::vector<MetaVerdict>& verdicts) {
  std::vector<int64_t> wins(n, 0);
  bool any = false;
  for (const auto& v : verdicts) {
    SELFRL_CHECK(v.a < n && v.b < n, "meta_judge_choice: judgement index out of range");
    if (!v.winner) continue;
    any = true;
    ++wins[*v.winner == 0 ? v.a : v.b];
  }
  if (!any || n < 2) return std::nullopt;
  size_t best = 0, worst = n - 1;
  for (size_t i = 0; i < n; ++i) {
    if (wins[i] > wins[best]) best = i;
    if (wins[i] < wins[worst] || (wins[i] == wins[worst] && i > worst)) worst = i;
  }
  if (wins[best] == wins[worst]) return std::nullopt;
  return std::make_pair(best, worst);
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
    o.normalize = false;                                     // points in [0, 5]: min_score_gap is in points
    if (s.meta_judge) o.max_info_chars = std::string::npos;  // the meta-judge reads whole judgements
    std::vector<rewards::Group> groups(rollouts.size());
    for (size_t i = 0; i < rollouts.size(); ++i) {
      groups[i].prompt = ctx.train[i].text;
      for (const auto& comp : rollouts[i].completions)
        groups[i].samples.push_back({ctx.policy.decode(comp.token_ids), {}, {}, false});
    }
    const auto judged = rewards::judge_groups(ctx.judge_fn(true), groups, o,
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
    if (s.meta_judge) {
      auto judge_pairs = meta_pairs(ctx, groups, judged, it, m);
      m["self_rewarding/actor_pairs"] = static_cast<double>(pairs.size());
      pairs.insert(pairs.end(), judge_pairs.begin(), judge_pairs.end());
    }
    return pairs;
  }

  // Meta-Rewarding: for the first meta_judge_responses responses of each prompt that have two
  // or more judgements, every pair of judgements goes to the policy as meta-judge in both
  // orders; the judgement with the most wins is chosen over the one with the fewest, as a DPO
  // pair on the judge prompt.
  std::vector<trainers::PreferencePair> meta_pairs(RunContext& ctx, const std::vector<rewards::Group>& groups,
                                                   const std::vector<rewards::GroupScores>& judged, int64_t it,
                                                   metrics::Scalars& m) {
    const auto& s = ctx.cfg.self_rewarding;
    const std::string& jt = s.judge_template.empty() ? default_judge_template() : s.judge_template;
    struct Item {
      size_t prompt = 0, sample = 0;
      std::vector<std::string> judgements;
      std::vector<MetaVerdict> verdicts;
    };
    std::vector<Item> items;
    rewards::JudgeRequest req;
    req.num_judgements = 1;
    req.temperature = s.judge_temperature;
    req.max_new_tokens = s.meta_judge_max_new_tokens;
    req.seed = derive_seed(ctx.cfg.seed, {0x3e7a, static_cast<uint64_t>(it)});
    std::vector<std::pair<size_t, size_t>> request_of;  // request → (item, verdict)
    for (size_t i = 0; i < groups.size(); ++i) {
      const auto& texts = judged[i].info.at("judgements");
      int64_t taken = 0;
      for (size_t j = 0; j < texts.size() && taken < s.meta_judge_responses; ++j) {
        Item item{i, j, texts[j].get<std::vector<std::string>>(), {}};
        if (item.judgements.size() < 2) continue;
        ++taken;
        for (size_t a = 0; a < item.judgements.size(); ++a) {
          for (size_t b = 0; b < item.judgements.size(); ++b) {
            if (a == b) continue;
            request_of.push_back({items.size(), item.verdicts.size()});
            item.verdicts.push_back({a, b, std::nullopt});
            req.prompts.push_back(fill_meta_judge_template(default_meta_judge_template(), groups[i].prompt,
                                                           groups[i].samples[j].completion, item.judgements[a],
                                                           item.judgements[b]));
          }
        }
        items.push_back(std::move(item));
      }
    }
    std::vector<trainers::PreferencePair> out;
    double parsed = 0;
    if (!req.prompts.empty()) {
      const auto answers = ctx.judge_fn(true)(req);
      for (size_t r = 0; r < request_of.size() && r < answers.size(); ++r) {
        if (answers[r].empty()) continue;
        auto& v = items[request_of[r].first].verdicts[request_of[r].second];
        v.winner = parse_meta_verdict(answers[r][0]);
        parsed += v.winner.has_value();
      }
    }
    for (const auto& item : items) {
      if (!ctx.policy.tokenizer) break;  // judgements are text: without a tokenizer there are no ids
      const auto choice = meta_judge_choice(item.judgements.size(), item.verdicts);
      if (!choice || item.judgements[choice->first] == item.judgements[choice->second]) continue;
      const std::string judge_prompt = rewards::fill_judge_template(
          jt, groups[item.prompt].prompt, groups[item.prompt].samples[item.sample].completion);
      const auto prompt_ids = ctx.fit_prompt(ctx.encode_prompt(judge_prompt), s.judge_max_new_tokens);
      auto ids = [&](const std::string& text) {
        const auto v = ctx.policy.tokenizer->encode(text, false);
        std::vector<int64_t> out_ids(v.begin(), v.end());
        const auto stop = ctx.policy.stop_ids();
        if (!stop.empty()) out_ids.push_back(stop.front());  // a judgement ends where the judge stopped
        return out_ids;
      };
      out.push_back({prompt_ids, ids(item.judgements[choice->first]), ids(item.judgements[choice->second]), 1.0});
    }
    m["self_rewarding/meta_parse_rate"] = req.prompts.empty() ? 0.0 : parsed / static_cast<double>(req.prompts.size());
    m["self_rewarding/judge_pairs"] = static_cast<double>(out.size());
    return out;
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
