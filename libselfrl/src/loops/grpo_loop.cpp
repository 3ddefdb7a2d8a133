// GRPO as a run (`trainer: grpo` — TTRL with reward_funcs [consensus], Intuitor with
// [self_certainty]) and SEC (`loop: sec`): GRPO whose batches are drawn by the curriculum.
// An "iteration" is eval_steps GRPO steps followed by an evaluation.
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

#include "selfrl/core/error.h"
#include "selfrl/loops/loop_registry.h"
#include "selfrl/core/interrupt.h"
#include "selfrl/core/logging.h"
#include "selfrl/core/progress.h"
#include "selfrl/core/seed.h"
#include "selfrl/loops/sec.h"
#include "selfrl/loops/self_improvement_loop.h"
#include "selfrl/trainers/checkpoint.h"
#include "selfrl/trainers/grpo_trainer.h"
#include "selfrl/trainers/label_free.h"

namespace selfrl::loops {

double sec_td_update(double q, double reward, double alpha) { return alpha * reward + (1.0 - alpha) * q; }

std::vector<double> boltzmann_probabilities(const std::vector<double>& q, double tau) {
  SELFRL_CHECK(tau > 0, "SEC: tau must be > 0, got ", tau);
  std::vector<double> p(q.size());
  if (q.empty()) return p;
  const double mx = *std::max_element(q.begin(), q.end());
  double z = 0;
  for (size_t i = 0; i < q.size(); ++i) z += p[i] = std::exp((q[i] - mx) / tau);
  for (auto& v : p) v /= z;
  return p;
}

SecCurriculum::SecCurriculum(std::vector<std::string> arms, double alpha, double tau, double initial_q)
    : arms_(std::move(arms)), q_(arms_.size(), initial_q), alpha_(alpha), tau_(tau) {}

void SecCurriculum::update(const std::vector<double>& r) {
  SELFRL_CHECK(r.size() == q_.size(), "SEC: ", r.size(), " rewards for ", q_.size(), " arms");
  for (size_t i = 0; i < q_.size(); ++i)
    if (std::isfinite(r[i])) q_[i] = sec_td_update(q_[i], r[i], alpha_);
}

size_t SecCurriculum::sample(std::mt19937_64& rng) const {
  const auto p = probabilities();
  std::discrete_distribution<size_t> d(p.begin(), p.end());
  return d(rng);
}

namespace {

// Records, for each group a reward scores, its category and scores (SEC needs per-group
// rewards; the trainer's step only returns aggregate metrics).
struct ScoreLog {
  std::vector<std::vector<std::pair<std::string, std::vector<double>>>> per_reward;  // [F][group]
};

class RecordingReward : public rewards::Reward {
 public:
  RecordingReward(rewards::RewardPtr inner, std::shared_ptr<ScoreLog> log, size_t index, std::string category_field)
      : inner_(std::move(inner)), log_(std::move(log)), index_(index), field_(std::move(category_field)) {}
  std::string name() const override { return inner_->name(); }
  std::vector<std::string> metric_names() const override { return inner_->metric_names(); }
  rewards::GroupScores score(const rewards::Group& g) override {
    std::string cat;
    if (g.example.is_object() && g.example.contains(field_)) {
      const auto& v = g.example[field_];
      cat = v.is_string() ? v.get<std::string>() : v.dump();
    }
    try {
      auto s = inner_->score(g);
      // The pipeline marks a wrong number of scores unscorable; so does the log.
      log_->per_reward[index_].push_back({cat, s.scores.size() == g.samples.size()
                                                   ? s.scores
                                                   : std::vector<double>(g.samples.size(), rewards::kUnscorable)});
      return s;
    } catch (...) {  // the pipeline reports it; the log keeps one entry per group
      log_->per_reward[index_].push_back({cat, std::vector<double>(g.samples.size(), rewards::kUnscorable)});
      throw;
    }
  }

 private:
  rewards::RewardPtr inner_;
  std::shared_ptr<ScoreLog> log_;
  size_t index_;
  std::string field_;
};

class GrpoLoop : public SelfImprovementLoop {
 public:
  explicit GrpoLoop(bool sec) : sec_(sec) {}
  std::string name() const override { return sec_ ? "sec" : "grpo"; }

  int64_t num_iterations(const RunContext& ctx) const override {
    const int64_t total = total_steps(ctx);
    const int64_t e = ctx.cfg.eval_steps > 0 ? ctx.cfg.eval_steps : total;
    return (total + e - 1) / e;
  }

  metrics::Scalars iterate(RunContext& ctx, int64_t iteration) override {
    if (!trainer_) setup(ctx);
    const int64_t total = total_steps(ctx);
    const int64_t e = ctx.cfg.eval_steps > 0 ? ctx.cfg.eval_steps : total;
    const int64_t first = (iteration - 1) * e, last = std::min(total, iteration * e);
    // Resumed inside this iteration: continue at the saved step with the saved partial sums.
    const int64_t start = resume_step_ > first ? resume_step_ : first;
    metrics::Scalars sum = resume_step_ > first ? resume_sum_ : metrics::Scalars{};
    if (auto it = stepped_sums_.find(iteration); it != stepped_sums_.end()) sum = it->second;  // from step()
    resume_step_ = -1;
    ProgressBar bar(name(), last - start, "steps");
    for (int64_t s = start; s < last; ++s) {
      if (s < steps_done_) {  // taken by step() before train()
        bar.advance();
        continue;
      }
      auto m = one_step(ctx);
      add_to_sum(sum, m, last - first);
      check_collapse(ctx, iteration, sum);
      bar.advance();
      bar.set_postfix("reward=" + std::to_string(m["reward"]));
      std::string saved;
      if (ctx.cfg.save_steps > 0 && (s + 1) % ctx.cfg.save_steps == 0) saved = checkpoint(ctx, iteration - 1, sum);
      if (s + 1 < total && ctx.stop_requested()) {
        if (ctx.cfg.save_steps > 0 && saved.empty()) saved = checkpoint(ctx, iteration - 1, sum);
        ctx.interrupt(saved);
      }
    }
    return sum;
  }

  metrics::Scalars step(RunContext& ctx) override {
    if (!trainer_) setup(ctx);
    if (steps_done_ >= total_steps(ctx))
      throw Error(name() + ": all " + std::to_string(total_steps(ctx)) + " steps of the run are done")
          .at(ctx.cfg.recipe_path)
          .hint("raise max_steps to train further");
    const int64_t total = total_steps(ctx);
    const int64_t e = ctx.cfg.eval_steps > 0 ? ctx.cfg.eval_steps : total;
    const int64_t iteration = steps_done_ / e + 1;
    auto m = one_step(ctx);
    add_to_sum(stepped_sums_[iteration], m, std::min(total, iteration * e) - (iteration - 1) * e);
    check_collapse(ctx, iteration, stepped_sums_[iteration]);
    if (ctx.cfg.save_steps > 0 && steps_done_ % ctx.cfg.save_steps == 0)
      checkpoint(ctx, iteration - 1, stepped_sums_[iteration]);
    if (steps_done_ == std::min(total, iteration * e)) finish_iteration(ctx, iteration, stepped_sums_[iteration]);
    return m;
  }

  bool checkpoints_steps() const override { return true; }
  void prepare(RunContext& ctx) override {
    if (!trainer_) setup(ctx);
  }
  trainers::TrainingOptimizer* optimizer() override { return trainer_ ? &trainer_->optimizer() : nullptr; }

  nlohmann::json state() const override {
    std::ostringstream rng;
    rng << rng_;
    nlohmann::json j = {{"next_step", steps_done_}, {"partial", partial_}, {"order", order_},
                        {"cursor", cursor_},        {"epoch", epoch_},     {"rng", rng.str()}};
    if (curriculum_) j["sec_q"] = curriculum_->values();
    if (guard_) j["collapse_guard"] = guard_->state(), j["first_bad_global_step"] = first_bad_global_step_;
    if (trainer_ && trainer_->config().anchor_prompts > 0) j["anchors"] = trainer_->anchor_state();
    return j;
  }

  void restore(RunContext& ctx, const nlohmann::json& j) override {
    prepare(ctx);
    trainer_->set_global_step(ctx.global_step);
    resume_step_ = steps_done_ = j.at("next_step").get<int64_t>();
    resume_sum_ = j.at("partial").get<metrics::Scalars>();
    order_ = j.at("order").get<std::vector<size_t>>();
    cursor_ = j.at("cursor").get<size_t>();
    epoch_ = j.at("epoch").get<uint64_t>();
    std::istringstream rng(j.at("rng").get<std::string>());
    rng >> rng_;
    if (curriculum_ && j.contains("sec_q")) curriculum_->set_values(j["sec_q"].get<std::vector<double>>());
    if (guard_ && j.contains("collapse_guard")) {
      guard_->restore(j["collapse_guard"]);
      first_bad_global_step_ = j.value("first_bad_global_step", int64_t{-1});
    }
    if (j.contains("anchors")) trainer_->restore_anchors(j["anchors"]);
  }

 private:
  // Prompts of one global batch: (per_device_train_batch_size x gradient_accumulation_steps x
  // world size) / num_generations, as TRL.
  int64_t prompts_per_step(const RunContext& ctx) const {
    const int64_t completions =
        ctx.cfg.per_device_train_batch_size * ctx.cfg.gradient_accumulation_steps * ctx.world->size();
    if (completions % ctx.cfg.sampling.num_samples != 0)
      throw Error("per_device_train_batch_size x gradient_accumulation_steps = " + std::to_string(completions) +
                  " completions is not a multiple of num_generations = " + std::to_string(ctx.cfg.sampling.num_samples))
          .at(ctx.cfg.recipe_path)
          .hint("as in TRL, a step holds (batch x accumulation) / num_generations prompts; make it divide");
    return completions / ctx.cfg.sampling.num_samples;
  }
  int64_t total_steps(const RunContext& ctx) const {
    if (ctx.cfg.max_steps > 0) return ctx.cfg.max_steps;
    const int64_t p = prompts_per_step(ctx);
    return std::max<int64_t>(1, (static_cast<int64_t>(ctx.train.size()) + p - 1) / p);
  }

  // The iteration line's train/* values: means over the iteration's `steps` steps.
  static void add_to_sum(metrics::Scalars& sum, const metrics::Scalars& m, int64_t steps) {
    for (const char* k : {"reward", "loss", "kl", "entropy", "self_certainty", "frac_reward_zero_std"})
      if (m.count(k)) sum["train/" + std::string(k)] += m.at(k) / static_cast<double>(steps);
  }

  // One GRPO step on the next batch: trainer step, SEC update, logged.
  metrics::Scalars one_step(RunContext& ctx) {
    auto batch = next_batch(ctx);
    for (auto& per : log_->per_reward) per.clear();
    // The global batch is the same list on every rank; each takes its contiguous shard.
    // Refills for dynamic sampling (max_resample_rounds) come from their own stream: their
    // number differs between ranks, and the shared data order must not move.
    uint64_t refills = 0;
    auto more = [&](int64_t n) { return refill_batch(ctx, n, refills++); };
    auto res = trainer_->step(dist::shard(batch, *ctx.world), more);
    if (sec_) sec_update(ctx, res.metrics);
    // Metrics are reduced over ranks, so every rank's guard reaches the same verdict.
    trainers::CollapseVerdict verdict;
    if (guard_) verdict = guard_->observe(res.metrics);
    if (guard_ && verdict.flagged && guard_->first_bad_step() == steps_done_) first_bad_global_step_ = ctx.global_step;
    if (guard_ && !verdict.flagged && !guard_->fired()) first_bad_global_step_ = -1;
    ++steps_done_;
    ctx.log_train(res.metrics, name());
    if (verdict.fired) collapse_ = verdict;
    return res.metrics;
  }

  // After a step was added to its iteration's sums: act on a guard that fired.
  void check_collapse(RunContext& ctx, int64_t iteration, const metrics::Scalars& sum) {
    if (!collapse_) return;
    const auto v = *collapse_;
    collapse_.reset();
    on_collapse(ctx, v, iteration, sum);
  }

  // The guard fired: warn, or end the run (stop: checkpoint here; rollback: restore the newest
  // checkpoint from before the first flagged step and save it as final/).
  void on_collapse(RunContext& ctx, const trainers::CollapseVerdict& v, int64_t iteration,
                   const metrics::Scalars& sum) {
    const auto& g = ctx.cfg.collapse_guard;
    const std::string what = "collapse_guard: step " + std::to_string(ctx.global_step) + " is the " +
                             std::to_string(g.patience) + (g.patience == 1 ? "st" : "th") +
                             " flagged step in a row (from step " + std::to_string(first_bad_global_step_ + 1) +
                             "): " + v.reason;
    const std::string advice =
        "label-free rewards can be maximised by degenerate answers; lower learning_rate, add beta (KL to the "
        "reference), combine self_certainty with consensus (reward_funcs: [borda]) or raise num_generations "
        "(docs/algorithms.md, collapse guard)";
    if (g.action == trainers::CollapseAction::kWarn) {
      if (ctx.is_main()) SELFRL_WARN(what << "; training goes on (collapse_guard.action: warn). " << advice);
      return;
    }
    if (g.action == trainers::CollapseAction::kStop) {
      const std::string saved = checkpoint(ctx, iteration - 1, sum);
      trainers::CollapseStopped e(what + "; run stopped, state saved in " + saved, saved);
      e.hint(advice);
      throw e;
    }
    // rollback
    const int64_t limit = first_bad_global_step_ - 1;  // the policy that sampled the first flagged step is suspect
    std::string best;
    int64_t best_step = -1;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(ctx.cfg.output_dir, ec)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("checkpoint-", 0) != 0 || n.find(".tmp") != std::string::npos) continue;
      int64_t step = -1;
      try {
        step = std::stoll(n.substr(11));
      } catch (...) {
        continue;
      }
      if (step <= limit && step > best_step && checkpoint::check_complete(e.path().string()).empty())
        best = e.path().string(), best_step = step;
    }
    if (best.empty()) {
      trainers::CollapseStopped e(what + "; no complete checkpoint from step " + std::to_string(limit) +
                                      " or earlier to roll back to in " + ctx.cfg.output_dir +
                                      "; run stopped, final/ not written",
                                  "");
      e.hint("save more often (save_steps) or keep more checkpoints (save_total_limit); " + advice);
      throw e;
    }
    checkpoint::load(best, *ctx.policy.model, trainer_->optimizer(), ctx.world.get());
    const std::string final_dir = ctx.save_final();
    trainers::CollapseStopped e(
        what + "; rolled back to " + best + " (step " + std::to_string(best_step) + "), saved as " + final_dir, best);
    e.hint(advice);
    throw e;
  }

  std::string checkpoint(RunContext& ctx, int64_t iterations_completed, const metrics::Scalars& partial) {
    partial_ = partial;
    return ctx.save_checkpoint({{"iteration", iterations_completed}, {"data_position", steps_done_}, {"loop", state()}},
                               optimizer());
  }

  void setup(RunContext& ctx) {
    if (trainer_) return;
    const auto& c = ctx.cfg;
    const trainers::GRPOConfig g = grpo_config(c, total_steps(ctx));
    auto base = ctx.make_rewards(c.reward_funcs, c.reward_weights);
    log_ = std::make_shared<ScoreLog>();
    log_->per_reward.resize(c.reward_funcs.size());
    rewards::RewardPipeline pipeline;
    // Build the recording pipeline from fresh rewards with the configured weights.
    const auto weights = base.weights();
    for (size_t i = 0; i < c.reward_funcs.size(); ++i) {
      auto inner = ctx.make_reward(c.reward_funcs[i]);
      pipeline.add(std::make_shared<RecordingReward>(inner, log_, i, c.prompt_options.category_field),
                   weights[static_cast<int64_t>(i)].item<double>());
    }
    weights_ = weights;
    if (c.collapse_guard.action == trainers::CollapseAction::kRollback && c.save_steps <= 0)
      throw Error("collapse_guard.action: rollback needs checkpoints to roll back to, and save_steps is 0")
          .at(c.recipe_path)
          .hint("set save_steps (e.g. 5), or use collapse_guard.action: stop");
    if (c.collapse_guard.action != trainers::CollapseAction::kOff)
      guard_ = std::make_unique<trainers::CollapseGuard>(c.collapse_guard);
    trainer_ = std::make_unique<trainers::GRPOTrainer>(ctx.policy, std::move(pipeline), g, ctx.world);
    rng_.seed(derive_seed(c.seed, {0x9e0}));
    if (sec_) {
      std::vector<std::string> arms;
      for (size_t i = 0; i < ctx.train.size(); ++i) {
        const auto& cat = ctx.train[i].category;
        auto it = std::find(arms.begin(), arms.end(), cat);
        if (it == arms.end()) arms.push_back(cat), by_arm_.emplace_back();
        by_arm_[static_cast<size_t>(std::find(arms.begin(), arms.end(), cat) - arms.begin())].push_back(i);
      }
      if (arms.size() < 2)
        SELFRL_WARN("SEC: the training data has " << arms.size() << " category (field '"
                                                  << c.prompt_options.category_field
                                                  << "'); the curriculum has nothing to choose");
      curriculum_ = std::make_unique<SecCurriculum>(arms, c.sec.alpha, c.sec.tau, c.sec.initial_q);
    }
  }

  std::vector<trainers::PromptExample> next_batch(RunContext& ctx) {
    const int64_t P = prompts_per_step(ctx);
    std::vector<trainers::PromptExample> out;
    for (int64_t i = 0; i < P; ++i) {
      size_t idx;
      if (sec_) {
        const size_t arm = curriculum_->sample(rng_);
        const auto& pool = by_arm_[arm];
        idx = pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng_)];
      } else {
        if (cursor_ >= order_.size()) {
          order_ = shuffled_indices(ctx.train.size(), derive_seed(ctx.cfg.seed, {0x5e, epoch_++}));
          cursor_ = 0;
        }
        idx = order_[cursor_++];
      }
      const auto& p = ctx.train[idx];
      out.push_back({p.ids, p.text, p.row, p.vote_ids});
    }
    return out;
  }

  // `n` prompts drawn at random (SEC: through the curriculum) with a stream of their own per
  // (step, rank, call), so that checkpoints and the other ranks' data order are unaffected.
  std::vector<trainers::PromptExample> refill_batch(const RunContext& ctx, int64_t n, uint64_t call) const {
    std::mt19937_64 rng(derive_seed(
        ctx.cfg.seed, {0xd5a, static_cast<uint64_t>(steps_done_), static_cast<uint64_t>(ctx.world->rank()), call}));
    std::vector<trainers::PromptExample> out;
    for (int64_t i = 0; i < n; ++i) {
      size_t idx;
      if (sec_) {
        const auto& pool = by_arm_[curriculum_->sample(rng)];
        idx = pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng)];
      } else {
        idx = std::uniform_int_distribution<size_t>(0, ctx.train.size() - 1)(rng);
      }
      const auto& p = ctx.train[idx];
      out.push_back({p.ids, p.text, p.row, p.vote_ids});
    }
    return out;
  }

  void sec_update(RunContext& ctx, metrics::Scalars& m) {
    // Rebuild [N, F] from the recorded per-group scores and recompute the advantages the
    // trainer used (same pure function, same weights and scaling).
    const auto& per = log_->per_reward;
    if (per.empty() || per[0].empty()) return;
    const size_t groups = per[0].size();
    const int64_t G = ctx.cfg.sampling.num_samples;
    auto rpf = torch::empty({static_cast<int64_t>(groups) * G, static_cast<int64_t>(per.size())}, torch::kDouble);
    for (size_t f = 0; f < per.size(); ++f)
      for (size_t g = 0; g < groups; ++g)
        for (int64_t i = 0; i < G; ++i)
          rpf[static_cast<int64_t>(g) * G + i][static_cast<int64_t>(f)] = per[f][g].second.at(static_cast<size_t>(i));
    const auto adv = trainers::compute_advantages(rpf, weights_, G, ctx.cfg.grpo.scale_rewards).advantages.abs();
    const auto& arms = curriculum_->arms();
    std::vector<double> sum(arms.size(), 0.0), cnt(arms.size(), 0.0);
    for (size_t g = 0; g < groups; ++g) {
      const size_t a = static_cast<size_t>(std::find(arms.begin(), arms.end(), per[0][g].first) - arms.begin());
      if (a >= arms.size()) continue;
      for (int64_t i = 0; i < G; ++i) sum[a] += adv[static_cast<int64_t>(g) * G + i].item<double>(), cnt[a] += 1;
    }
    if (ctx.world->distributed()) {  // every rank scored its own groups: sum over ranks
      std::vector<double> both = sum;
      both.insert(both.end(), cnt.begin(), cnt.end());
      both = ctx.world->all_reduce_sum(both, "SEC arm rewards");
      std::copy(both.begin(), both.begin() + static_cast<std::ptrdiff_t>(arms.size()), sum.begin());
      std::copy(both.begin() + static_cast<std::ptrdiff_t>(arms.size()), both.end(), cnt.begin());
    }
    std::vector<double> r(arms.size());
    for (size_t a = 0; a < arms.size(); ++a) r[a] = cnt[a] > 0 ? sum[a] / cnt[a] : std::nan("");
    curriculum_->update(r);
    const auto p = curriculum_->probabilities();
    for (size_t a = 0; a < arms.size(); ++a) {
      const std::string name = arms[a].empty() ? "_" : arms[a];
      m["sec/q/" + name] = curriculum_->values()[a];
      m["sec/p/" + name] = p[a];
      if (std::isfinite(r[a])) m["sec/reward/" + name] = r[a];
    }
  }

  bool sec_;
  std::unique_ptr<trainers::GRPOTrainer> trainer_;
  std::shared_ptr<ScoreLog> log_;
  torch::Tensor weights_;
  std::mt19937_64 rng_;
  std::vector<size_t> order_;
  size_t cursor_ = 0;
  uint64_t epoch_ = 0;
  std::unique_ptr<SecCurriculum> curriculum_;
  std::unique_ptr<trainers::CollapseGuard> guard_;
  int64_t first_bad_global_step_ = -1;                 // global step before the first flagged step of the streak
  std::optional<trainers::CollapseVerdict> collapse_;  // fired on the last step, not yet acted on
  std::vector<std::vector<size_t>> by_arm_;
  // Checkpoint state: steps taken (the step a checkpoint resumes at), the iteration's partial sums.
  int64_t steps_done_ = 0, resume_step_ = -1;
  std::map<int64_t, metrics::Scalars> stepped_sums_;  // iteration → sums of its steps taken by step()
  metrics::Scalars partial_, resume_sum_;
};

}  // namespace

std::unique_ptr<SelfImprovementLoop> make_grpo_loop() { return std::make_unique<GrpoLoop>(false); }
std::unique_ptr<SelfImprovementLoop> make_sec_loop() { return std::make_unique<GrpoLoop>(true); }

namespace {
const RegisterLoop kGrpo({"grpo", "GRPO (TTRL: reward_funcs [consensus]; Intuitor: [self_certainty])",
                          [](const TrainConfig&) { return make_grpo_loop(); }, "", true});
const RegisterLoop kSec({"sec", "GRPO with batches drawn by the self-evolving curriculum",
                         [](const TrainConfig&) { return make_sec_loop(); }});
}  // namespace

}  // namespace selfrl::loops
