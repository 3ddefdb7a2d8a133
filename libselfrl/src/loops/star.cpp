// STaR ("Self-Taught Reasoner", Zelikman et al. 2022): sample a rationale and answer for every
// problem; keep those whose answer is correct; for the failures, rationalize — sample again with
// the correct answer given as a hint and keep the rationale when it reaches the answer, training
// on it *without* the hint; fine-tune the base model on everything kept; iterate with the
// fine-tuned model as the sampler.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "selfrl/core/error.h"
#include "selfrl/loops/loop_registry.h"
#include "selfrl/core/seed.h"
#include "selfrl/loops/head_tail.h"
#include "selfrl/loops/self_improvement_loop.h"

namespace selfrl::loops {
namespace {

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

class StarLoop : public SelfImprovementLoop {
 public:
  std::string name() const override { return "star"; }
  metrics::Scalars iterate(RunContext& ctx, int64_t it) override {
    const auto& c = ctx.cfg;
    for (const auto& p : ctx.train)
      if (!p.answer)
        throw Error("STaR needs an answer for every training problem")
            .at(p.where)
            .hint("add \"answer\" or use an unlabelled loop (scpo, grpo with consensus)");
    std::vector<std::vector<int64_t>> ids;
    for (const auto& p : ctx.train) ids.push_back(p.ids);
    const auto rollouts = ctx.sample(ids, c.star.num_samples, c.sampling.temperature, c.sampling.max_new_tokens,
                                     derive_seed(c.seed, {0x57a, static_cast<uint64_t>(it)}), "star rationales");
    std::vector<trainers::SFTExample> kept;
    std::vector<size_t> failed;
    for (size_t i = 0; i < ctx.train.size(); ++i) {
      const std::string ref = rewards::normalize_answer(*ctx.train[i].answer);
      bool ok = false;
      for (const auto& comp : rollouts[i].completions) {
        const auto a = ctx.extractor.extract(ctx.policy.decode(comp.token_ids));
        if (a && *a == ref) {
          kept.push_back({ctx.train[i].ids, comp.token_ids});
          ok = true;
          break;  // one rationale per problem, as the paper
        }
      }
      if (!ok) failed.push_back(i);
    }
    const size_t correct = kept.size();
    size_t rationalized = 0;
    if (c.star.rationalize && !failed.empty()) {
      std::vector<std::vector<int64_t>> hinted;
      for (size_t i : failed) {
        const auto& p = ctx.train[i];
        hinted.push_back(
            ctx.fit_prompt(ctx.encode_prompt(replace_all(replace_all(c.star.hint_template, "{prompt}", p.text),
                                                         "{answer}", *p.answer)),
                           c.sampling.max_new_tokens));
      }
      const auto again = ctx.sample(hinted, 1, c.sampling.temperature, c.sampling.max_new_tokens,
                                    derive_seed(c.seed, {0x7a7, static_cast<uint64_t>(it)}), "star rationalize");
      for (size_t j = 0; j < failed.size(); ++j) {
        const auto& p = ctx.train[failed[j]];
        const auto& comp = again[j].completions.at(0);
        const auto a = ctx.extractor.extract(ctx.policy.decode(comp.token_ids));
        if (a && *a == rewards::normalize_answer(*p.answer)) {
          kept.push_back({p.ids, comp.token_ids});  // trained without the hint
          ++rationalized;
        }
      }
    }
    auto model = c.star.from_base ? ctx.load_base() : ctx.policy.model;
    metrics::Scalars m = ctx.sft(model, kept);
    ctx.policy.model = model;
    const double n = static_cast<double>(ctx.train.size());
    m["star/correct_rate"] = static_cast<double>(correct) / n;
    m["star/rationalized"] = static_cast<double>(rationalized);
    m["star/rationalized_rate"] =
        failed.empty() ? 0.0 : static_cast<double>(rationalized) / static_cast<double>(failed.size());
    m["kept"] = static_cast<double>(kept.size());
    return m;
  }
};

// ReST-EM ("Beyond Human Data", Singh et al. 2023). E-step (Grow): N samples per problem,
// scored by a binary reward; keep those with reward ≥ threshold, at most max_per_prompt distinct
// ones per problem. M-step (Improve): fine-tune the base model on them. Iterate. Head-tail
// re-balancing (selfrl/loops/head_tail.h) re-samples the tail queries and pads the kept set.
class RestEmLoop : public SelfImprovementLoop {
 public:
  std::string name() const override { return "rest_em"; }
  metrics::Scalars iterate(RunContext& ctx, int64_t it) override {
    const auto& c = ctx.cfg;
    const auto& r = c.rest_em;
    std::vector<std::vector<int64_t>> ids;
    for (const auto& p : ctx.train) ids.push_back(p.ids);
    auto pipeline = ctx.make_rewards(c.reward_funcs, c.reward_weights);
    // Per query: the samples that passed (duplicates counted) and the distinct ones, in order.
    std::vector<int64_t> passed(ctx.train.size(), 0);
    std::vector<std::vector<std::vector<int64_t>>> distinct(ctx.train.size());
    double reward_sum = 0, reward_n = 0;
    metrics::Scalars diagnostics;  // of the Grow samples
    auto grow = [&](const std::vector<size_t>& queries, int64_t n, uint64_t seed, const std::string& label,
                    bool count_reward) {
      std::vector<std::vector<int64_t>> q_ids;
      for (size_t q : queries) q_ids.push_back(ids[q]);
      const auto rollouts = ctx.sample(q_ids, n, c.sampling.temperature, c.sampling.max_new_tokens, seed, label);
      if (count_reward) diagnostics = label_free_metrics(ctx, rollouts);
      std::vector<rewards::Group> groups;
      for (size_t j = 0; j < rollouts.size(); ++j)
        groups.push_back(to_group(ctx.train[queries[j]], rollouts[j], ctx.policy));
      const auto scores = weighted_group_scores(pipeline, groups);
      for (size_t j = 0; j < rollouts.size(); ++j) {
        const size_t q = queries[j];
        for (size_t k = 0; k < rollouts[j].completions.size(); ++k) {
          const double sc = scores[j][k];
          if (count_reward && std::isfinite(sc)) reward_sum += sc, reward_n += 1;
          if (!(sc >= r.reward_threshold)) continue;
          ++passed[q];
          const auto& tok = rollouts[j].completions[k].token_ids;
          if (std::find(distinct[q].begin(), distinct[q].end(), tok) == distinct[q].end()) distinct[q].push_back(tok);
        }
      }
    };
    std::vector<size_t> all(ctx.train.size());
    std::iota(all.begin(), all.end(), size_t{0});
    grow(all, r.num_samples, derive_seed(c.seed, {0x4e5, static_cast<uint64_t>(it)}), "rest_em grow", true);
    // Tail re-sampling: queries the Grow step rarely solved get more samples.
    std::vector<size_t> tail;
    for (size_t q = 0; q < all.size(); ++q)
      if (r.tail_samples > 0 && is_tail_query(passed[q], r.num_samples, r.tail_threshold)) tail.push_back(q);
    double rescued = 0;
    if (!tail.empty()) {
      std::vector<bool> was_solved(all.size());
      for (size_t q : tail) was_solved[q] = !distinct[q].empty();
      grow(tail, r.tail_samples, derive_seed(c.seed, {0x7a1, static_cast<uint64_t>(it)}), "rest_em tail", false);
      for (size_t q : tail) rescued += !was_solved[q] && !distinct[q].empty();
    }
    std::vector<trainers::SFTExample> kept;
    double solved = 0, capped = 0, padded = 0;
    for (size_t q = 0; q < all.size(); ++q) {
      const auto take = take_solutions(distinct[q].size(), r.max_per_prompt, r.balance);
      for (size_t i : take) kept.push_back({ctx.train[q].ids, distinct[q][i]});
      const size_t unique = std::min(distinct[q].size(), static_cast<size_t>(r.max_per_prompt));
      capped += static_cast<double>(distinct[q].size() - unique);
      padded += static_cast<double>(take.size() - std::min(take.size(), unique));
      solved += !distinct[q].empty();
    }
    auto model = r.from_base ? ctx.load_base() : ctx.policy.model;
    metrics::Scalars m = ctx.sft(model, kept);
    ctx.policy.model = model;
    m["rest_em/mean_reward"] = reward_n > 0 ? reward_sum / reward_n : 0.0;
    m["rest_em/solved_frac"] = solved / static_cast<double>(std::max<size_t>(1, all.size()));
    m["rest_em/capped"] = capped;
    if (r.tail_samples > 0) {
      m["rest_em/tail_queries"] = static_cast<double>(tail.size());
      m["rest_em/tail_rescued"] = rescued;
    }
    if (r.balance == Balance::kPad) m["rest_em/padded"] = padded;
    for (const auto& [k, v] : diagnostics) m[k] = v;
    m["kept"] = static_cast<double>(kept.size());
    return m;
  }
};

}  // namespace

std::unique_ptr<SelfImprovementLoop> make_star_loop() { return std::make_unique<StarLoop>(); }
std::unique_ptr<SelfImprovementLoop> make_rest_em_loop() { return std::make_unique<RestEmLoop>(); }

namespace {
const RegisterLoop kStar({"star", "STaR: rationales that reach the answer, SFT",
                          [](const TrainConfig&) { return make_star_loop(); }});
const RegisterLoop kRestEm({"rest_em", "ReST-EM: reward-filtered samples, SFT",
                            [](const TrainConfig&) { return make_rest_em_loop(); }});
}  // namespace

}  // namespace selfrl::loops
