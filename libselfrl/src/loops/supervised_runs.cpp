// `trainer: sft` and `trainer: dpo`: one pass of the shared trainers over a fixed dataset,
// as a one-iteration run (so evaluation, metrics and saving work as for the loops).
#include "selfrl/core/error.h"
#include "selfrl/loops/loop_registry.h"
#include "selfrl/core/seed.h"
#include "selfrl/loops/self_improvement_loop.h"

namespace selfrl::loops {
namespace {

std::vector<int64_t> completion_ids(const RunContext& ctx, const data::Prompt& p, const std::string& field) {
  if (!p.row.contains(field) || !p.row[field].is_string())
    throw Error("row has no string field \"" + field + "\"")
        .at(p.where)
        .hint("set data.completion_field / data.chosen_field / data.rejected_field to the field that holds it");
  auto ids = data::to_ids64(ctx.policy.tokenizer->encode(p.row[field].get<std::string>(), false));
  if (!ctx.policy.eos_token_ids.empty()) ids.push_back(ctx.policy.eos_token_ids.front());
  return ids;
}

class SftRun : public SelfImprovementLoop {
 public:
  std::string name() const override { return "sft"; }
  int64_t num_iterations(const RunContext&) const override { return 1; }
  // save_steps checkpoints inside the pass (RunContext::sft): continue it at the saved step.
  void restore(RunContext& ctx, const nlohmann::json& j) override {
    if (j.contains("phase_step"))
      ctx.resume_phase({ctx.resume_dir, j["phase_step"].get<int64_t>(), j["phase_start"].get<int64_t>()});
  }
  metrics::Scalars iterate(RunContext& ctx, int64_t) override {
    std::vector<trainers::SFTExample> data;
    for (const auto& p : ctx.train) data.push_back({p.ids, completion_ids(ctx, p, ctx.cfg.completion_field)});
    return ctx.sft(ctx.policy.model, data);
  }
};

class DpoRun : public SelfImprovementLoop {
 public:
  std::string name() const override { return "dpo"; }
  int64_t num_iterations(const RunContext&) const override { return 1; }
  // save_steps checkpoints inside the pass (RunContext::dpo): continue it at the saved step.
  void restore(RunContext& ctx, const nlohmann::json& j) override {
    if (j.contains("phase_step"))
      ctx.resume_phase({ctx.resume_dir, j["phase_step"].get<int64_t>(), j["phase_start"].get<int64_t>()});
  }
  metrics::Scalars iterate(RunContext& ctx, int64_t) override {
    std::vector<trainers::PreferencePair> pairs;
    for (const auto& p : ctx.train)
      pairs.push_back(
          {p.ids, completion_ids(ctx, p, ctx.cfg.chosen_field), completion_ids(ctx, p, ctx.cfg.rejected_field), 1.0});
    return ctx.dpo(ctx.policy.model, pairs, false, 0.0);
  }
};

}  // namespace

std::unique_ptr<SelfImprovementLoop> make_sft_run() { return std::make_unique<SftRun>(); }
std::unique_ptr<SelfImprovementLoop> make_dpo_run() { return std::make_unique<DpoRun>(); }

namespace {
const RegisterLoop kSft({"sft", "supervised fine-tuning on prompt/completion rows",
                         [](const TrainConfig&) { return make_sft_run(); }, "", true});
const RegisterLoop kDpo({"dpo", "DPO on prompt/chosen/rejected rows", [](const TrainConfig&) { return make_dpo_run(); },
                         "", true});
}  // namespace

}  // namespace selfrl::loops
