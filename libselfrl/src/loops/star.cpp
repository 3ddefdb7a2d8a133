// STaR ("Self-Taught Reasoner", Zelikman et al. 2022): sample a rationale and answer for every
// problem; keep those whose answer is correct; for the failures, rationalize — sample again with
// the correct answer given as a hint and keep the rationale when it reaches the answer, training
// on it *without* the hint; fine-tune the base model on everything kept; iterate with the
// fine-tuned model as the sampler.
#include <cmath>
#include <set>

#include "selfrl/core/error.h"
#include "selfrl/loops/loop_registry.h"
#include "selfrl/core/seed.h"
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
// ones per problem. M-step (Improve): fine-tune the base model on them. Iterate.
class RestEmLoop : public SelfImprovementLoop {
 public:
  std::string name() const override { return "rest_em"; }
  metrics::Scalars iterate(RunContext& ctx, int64_t it) override {
    const auto& c = ctx.cfg;
    std::vector<std::vector<int64_t>> ids;
    for (const auto& p : ctx.train) ids.push_back(p.ids);
    const auto rollouts = ctx.sample(ids, c.rest_em.num_samples, c.sampling.temperature, c.sampling.max_new_tokens,
                                     derive_seed(c.seed, {0x4e5, static_cast<uint64_t>(it)}), "rest_em grow");
    std::vector<rewards::Group> groups;
    for (size_t i = 0; i < rollouts.size(); ++i) groups.push_back(to_group(ctx.train[i], rollouts[i], ctx.policy));
    auto pipeline = ctx.make_rewards(c.reward_funcs, c.reward_weights);
    const auto scores = weighted_group_scores(pipeline, groups);
    std::vector<trainers::SFTExample> kept;
    double reward_sum = 0, reward_n = 0, solved = 0, capped = 0;
    for (size_t i = 0; i < rollouts.size(); ++i) {
      std::set<std::vector<int64_t>> seen;
      int64_t n_kept = 0;
      for (size_t j = 0; j < rollouts[i].completions.size(); ++j) {
        const double s = scores[i][j];
        if (std::isfinite(s)) reward_sum += s, reward_n += 1;
        if (!(s >= c.rest_em.reward_threshold)) continue;
        const auto& tok = rollouts[i].completions[j].token_ids;
        if (!seen.insert(tok).second) continue;
        if (n_kept >= c.rest_em.max_per_prompt) {
          ++capped;
          continue;
        }
        kept.push_back({ctx.train[i].ids, tok});
        ++n_kept;
      }
      solved += n_kept > 0;
    }
    auto model = c.rest_em.from_base ? ctx.load_base() : ctx.policy.model;
    metrics::Scalars m = ctx.sft(model, kept);
    ctx.policy.model = model;
    m["rest_em/mean_reward"] = reward_n > 0 ? reward_sum / reward_n : 0.0;
    m["rest_em/solved_frac"] = solved / static_cast<double>(std::max<size_t>(1, rollouts.size()));
    m["rest_em/capped"] = capped;
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
