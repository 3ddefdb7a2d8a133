// `loop: knowrl`: each iteration the IntrospectionGenerator grows a consensus-labelled set of
// feasibility tasks, and GRPO with the consensus reward (the model's agreement with its own
// majority judgement) trains on it. Evaluation: extrinsic accuracy / F1 against data.eval
// ({"prompt": task, "label": ...}) and intrinsic self-consistency of the k eval samples.
#include <cmath>

#include "selfrl/core/error.h"
#include "selfrl/loops/loop_registry.h"
#include "selfrl/core/logging.h"
#include "selfrl/core/progress.h"
#include "selfrl/core/seed.h"
#include "selfrl/introspection/introspection_generator.h"
#include "selfrl/io/jsonl.h"
#include "selfrl/loops/self_improvement_loop.h"
#include "selfrl/trainers/grpo_trainer.h"

namespace selfrl::loops {
namespace {

using namespace selfrl::introspection;

class KnowRLLoop : public SelfImprovementLoop {
 public:
  std::string name() const override { return "knowrl"; }

  metrics::Scalars iterate(RunContext& ctx, int64_t it) override {
    setup(ctx);
    const auto& c = ctx.cfg;
    IntrospectionConfig ic;
    ic.tasks_per_category = c.knowrl.tasks_per_category;
    ic.shots = c.knowrl.shots;
    ic.num_judgements = c.knowrl.num_judgements;
    ic.min_agreement = c.knowrl.min_agreement;
    ic.temperature = c.knowrl.generation_temperature;
    ic.judge_temperature = c.sampling.temperature;
    ic.max_task_tokens = c.knowrl.max_task_tokens;
    ic.max_judge_tokens = c.sampling.max_new_tokens;
    ic.seed = c.seed;
    IntrospectionGenerator gen(
        [&ctx](const std::vector<std::string>& prompts, int64_t n, double temperature, int64_t max_tokens,
               uint64_t seed) {
          std::vector<std::vector<int64_t>> ids;
          for (const auto& p : prompts) ids.push_back(ctx.fit_prompt(ctx.encode_prompt(p), max_tokens));
          const auto rollouts = ctx.sample(ids, n, temperature, max_tokens, seed, "knowrl introspection");
          std::vector<std::vector<std::string>> out;
          for (const auto& r : rollouts) {
            out.emplace_back();
            for (const auto& comp : r.completions) out.back().push_back(ctx.policy.decode(comp.token_ids));
          }
          return out;
        },
        ic);
    const auto res = gen.generate(seeds_, produced_, static_cast<uint64_t>(it));
    metrics::Scalars m{{"knowrl/written", static_cast<double>(res.written)},
                       {"knowrl/duplicates", static_cast<double>(res.duplicates)},
                       {"knowrl/empty", static_cast<double>(res.empty)},
                       {"knowrl/no_consensus", static_cast<double>(res.no_consensus)},
                       {"knowrl/self_consistency_generated", res.self_consistency},
                       {"num_tasks", static_cast<double>(res.kept.size())}};
    double feasible = 0;
    for (const auto& t : res.kept) {
      data::Prompt p;
      p.text = judge_prompt(t.task);
      p.ids = ctx.fit_prompt(ctx.encode_prompt(p.text), ctx.cfg.sampling.max_new_tokens);
      p.category = t.category;
      p.row = {{"prompt", t.task},
               {"category", t.category},
               {"label", *t.consensus.label},
               {"agreement", t.consensus.agreement}};
      feasible += *t.consensus.label == kFeasible;
      rl_set_.push_back(std::move(p));
    }
    m["knowrl/feasible_frac"] = res.kept.empty() ? std::nan("") : feasible / static_cast<double>(res.kept.size());
    m["knowrl/rl_set_size"] = static_cast<double>(rl_set_.size());
    write_rl_set(ctx, it);
    if (rl_set_.empty()) {
      SELFRL_WARN("knowrl iteration " << it << ": no task reached agreement " << c.knowrl.min_agreement
                                      << "; no GRPO update");
      return m;
    }
    // GRPO on the consensus-labelled set (reward: agreement with the model's own majority).
    if (!trainer_) make_trainer(ctx);
    // The global batch of every step spans the ranks; each rank takes its contiguous shard.
    const int64_t P = std::max<int64_t>(
        1, c.per_device_train_batch_size * c.gradient_accumulation_steps * ctx.world->size() / c.sampling.num_samples);
    ProgressBar bar("knowrl grpo", c.knowrl.grpo_steps, "steps");
    double reward = 0;
    for (int64_t s = 0; s < c.knowrl.grpo_steps; ++s) {
      std::vector<trainers::PromptExample> batch;
      for (int64_t i = 0; i < P; ++i) {
        const auto& p = rl_set_[cursor_++ % rl_set_.size()];
        batch.push_back({p.ids, p.text, p.row});
      }
      auto r = trainer_->step(dist::shard(batch, *ctx.world));
      reward += r.metrics["reward"] / static_cast<double>(c.knowrl.grpo_steps);
      ctx.log_train(r.metrics, "knowrl");
      bar.advance();
    }
    m["train/reward"] = reward;
    return m;
  }

  metrics::Scalars evaluate(RunContext& ctx, int64_t it) override {
    setup(ctx);
    if (eval_.empty() || !ctx.is_main()) return {};  // rank 0 alone evaluates
    eval::EvalOptions o;
    o.samples = std::max<int64_t>(ctx.cfg.eval.samples, 1);
    o.temperature = ctx.cfg.eval.temperature;
    o.max_new_tokens = ctx.cfg.eval.max_new_tokens > 0 ? ctx.cfg.eval.max_new_tokens : ctx.cfg.sampling.max_new_tokens;
    o.batch_size = ctx.cfg.generation_batch_size;
    o.continuous_batching = ctx.cfg.continuous_batching;
    o.share_prompt_cache = ctx.cfg.share_prompt_cache;
    o.kv_block_size = ctx.cfg.kv_block_size;
    o.seed = derive_seed(ctx.cfg.seed, {0xe7a1, static_cast<uint64_t>(it)});
    o.label = "knowrl eval " + std::to_string(it);
    const auto r = eval::evaluate(
        ctx.policy.model, [&ctx](const std::vector<int64_t>& ids) { return ctx.policy.decode(ids); }, eval_,
        ctx.extractor, o, ctx.policy.eos_token_ids);
    std::vector<std::optional<std::string>> pred;
    std::vector<std::string> gold;
    double consistency = 0;
    for (const auto& e : r.examples) {
      pred.push_back(e.greedy_answer ? parse_feasibility(*e.greedy_answer) : std::nullopt);
      gold.push_back(e.reference);
      if (o.samples > 1) {
        std::vector<std::optional<std::string>> labels;
        for (const auto& a : e.sample_answers) labels.push_back(a ? parse_feasibility(*a) : std::nullopt);
        consistency += consensus(labels).agreement;
      }
    }
    const auto s = binary_scores(pred, gold);
    metrics::Scalars m = r.to_scalars("eval/");
    m["eval/f1_feasible"] = s.f1_feasible;
    m["eval/f1_infeasible"] = s.f1_infeasible;
    m["eval/macro_f1"] = s.macro_f1;
    if (o.samples > 1)
      m["eval/self_consistency"] = consistency / static_cast<double>(std::max<size_t>(1, r.examples.size()));
    return m;
  }

  // Checkpoints keep the weights and the iteration only (not yet the accumulated RL task set,
  // the produced tasks, the cursor or the GRPO moments): say so on resume.
  void restore(RunContext& ctx, const nlohmann::json&) override {
    if (ctx.is_main())
      SELFRL_WARN(
          "knowrl: resuming restores the weights and the iteration; the RL task set, written tasks and GRPO "
          "optimizer state start afresh, so the continued run is not bit-identical to an uninterrupted one");
  }

 private:
  void setup(RunContext& ctx) {
    if (ready_) return;
    ready_ = true;
    seeds_ = load_seed_tasks(ctx.cfg.knowrl.seed_file, ctx.cfg.knowrl.label_field);
    if (ctx.cfg.eval_file.empty()) return;
    io::JsonlReader reader(ctx.cfg.eval_file);
    nlohmann::json row;
    const auto& field = ctx.cfg.knowrl.label_field;
    while (reader.next(row)) {
      if (ctx.cfg.eval.max_samples > 0 && static_cast<int64_t>(eval_.size()) >= ctx.cfg.eval.max_samples) break;
      if (!row.contains("prompt") || !row.contains(field))
        throw Error("knowrl eval row needs \"prompt\" and \"" + field + "\"").at(reader.where());
      data::Prompt p;
      p.where = reader.where();
      p.text = judge_prompt(row["prompt"].get<std::string>());
      p.ids = ctx.fit_prompt(ctx.encode_prompt(p.text), ctx.cfg.sampling.max_new_tokens);
      p.answer = row[field].get<std::string>();
      p.row = row;
      eval_.push_back(std::move(p));
    }
    if (eval_.empty()) throw Error("dataset is empty (no JSON rows)").at(ctx.cfg.eval_file + ":1");
  }

  void make_trainer(RunContext& ctx) {
    const auto& c = ctx.cfg;
    const trainers::GRPOConfig g = loops::grpo_config(c, c.iterations * c.knowrl.grpo_steps);
    trainer_ = std::make_unique<trainers::GRPOTrainer>(ctx.policy, ctx.make_rewards(c.reward_funcs, c.reward_weights),
                                                       g, ctx.world);
  }

  void write_rl_set(const RunContext& ctx, int64_t it) {
    if (!ctx.is_main()) return;  // rank 0 alone writes output_dir
    io::JsonlWriter w(ctx.cfg.output_dir + "/knowrl_tasks_iter" + std::to_string(it) + ".jsonl");
    for (const auto& p : rl_set_) w.write(p.row);
    w.close();
  }

  bool ready_ = false;
  std::vector<SeedTask> seeds_;
  std::vector<data::Prompt> eval_, rl_set_;
  std::vector<std::string> produced_;
  std::unique_ptr<trainers::GRPOTrainer> trainer_;
  size_t cursor_ = 0;
};

}  // namespace

std::unique_ptr<SelfImprovementLoop> make_knowrl_loop() { return std::make_unique<KnowRLLoop>(); }

namespace {
const RegisterLoop kKnowRL({"knowrl", "KnowRL-style introspection tasks, consensus-labelled, GRPO",
                            [](const TrainConfig&) { return make_knowrl_loop(); }});
}  // namespace

}  // namespace selfrl::loops
