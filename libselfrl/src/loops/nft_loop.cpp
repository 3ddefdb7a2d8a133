// NFT as a loop (`loop: nft`): negative-aware fine-tuning on the policy's own samples ("Bridging
// Supervised Learning and Reinforcement Learning in Math Reasoning", Chen et al. 2025). Each
// iteration: sample nft.num_samples answers per problem with the current policy, score them
// (a sample is right when its weighted reward ≥ nft.reward_threshold: verifier with labels,
// consensus without), and fine-tune the current policy on every sample of the problems that have
// both right and wrong ones — right samples by likelihood, wrong ones through the implicit
// negative policy (trainers::nft_loss). Unlike ReST-EM, the failures are trained on too.
#include <cmath>

#include "selfrl/core/seed.h"
#include "selfrl/loops/loop_registry.h"
#include "selfrl/loops/self_improvement_loop.h"
#include "selfrl/trainers/sft_trainer.h"

namespace selfrl::loops {
namespace {

class NftLoop : public SelfImprovementLoop {
 public:
  std::string name() const override { return "nft"; }
  metrics::Scalars iterate(RunContext& ctx, int64_t it) override {
    const auto& c = ctx.cfg;
    const auto& n = c.nft;
    std::vector<std::vector<int64_t>> ids;
    for (const auto& p : ctx.train) ids.push_back(p.ids);
    const auto rollouts = ctx.sample(ids, n.num_samples, c.sampling.temperature, c.sampling.max_new_tokens,
                                     derive_seed(c.seed, {0x4f7, static_cast<uint64_t>(it)}), "nft samples");
    std::vector<rewards::Group> groups;
    for (size_t i = 0; i < rollouts.size(); ++i) groups.push_back(to_group(ctx.train[i], rollouts[i], ctx.policy));
    auto pipeline = ctx.make_rewards(c.reward_funcs, c.reward_weights);
    const auto scores = weighted_group_scores(pipeline, groups);
    std::vector<trainers::SFTExample> data;
    double all_right = 0, all_wrong = 0, right = 0, samples = 0;
    for (size_t i = 0; i < rollouts.size(); ++i) {
      const auto& comps = rollouts[i].completions;
      std::vector<bool> ok;
      for (size_t j = 0; j < comps.size(); ++j) ok.push_back(scores[i][j] >= n.reward_threshold);  // NaN: wrong
      const double k = static_cast<double>(std::count(ok.begin(), ok.end(), true));
      right += k, samples += static_cast<double>(comps.size());
      const double r_hat = k / static_cast<double>(comps.size());
      if (k == 0) ++all_wrong;
      if (k == static_cast<double>(comps.size())) ++all_right;
      if (k == 0 || k == static_cast<double>(comps.size())) continue;  // no signal: r̂ ∈ {0, 1}
      for (size_t j = 0; j < comps.size(); ++j) {
        if (comps[j].token_ids.empty()) continue;  // nothing to train on
        trainers::SFTExample e;
        e.prompt_ids = ctx.train[i].ids;
        e.completion_ids = comps[j].token_ids;
        e.correct = ok[j];
        e.r_hat = r_hat;
        data.push_back(std::move(e));
      }
    }
    // The old policy of the ratios: the sampler, scored as the trainer scores (same forward).
    const auto old =
        trainers::SFTTrainer::completion_logprobs(*ctx.policy.model, data, c.per_device_train_batch_size, c.bf16);
    for (size_t i = 0; i < data.size(); ++i) data[i].old_logprobs = old[i];
    metrics::Scalars m = ctx.sft(ctx.policy.model, data, n.loss);
    const double problems = static_cast<double>(std::max<size_t>(1, rollouts.size()));
    m["nft/accuracy"] = samples > 0 ? right / samples : 0.0;  // share of right samples (by the reward)
    m["nft/all_right_frac"] = all_right / problems;
    m["nft/all_wrong_frac"] = all_wrong / problems;
    m["kept"] = static_cast<double>(data.size());
    for (const auto& [k, v] : label_free_metrics(ctx, rollouts)) m[k] = v;
    return m;
  }
};

const RegisterLoop kNft({"nft", "NFT: likelihood on right samples and the implicit negative policy on wrong ones",
                         [](const TrainConfig&) { return std::make_unique<NftLoop>(); }});

}  // namespace
}  // namespace selfrl::loops
