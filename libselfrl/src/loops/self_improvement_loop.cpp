// The run skeleton shared by every trainer and loop, and run_training() (`selfrl train`).
#include "selfrl/metrics/metrics_plot.h"
#include "selfrl/loops/self_improvement_loop.h"
#include "selfrl/loops/loop_registry.h"
#include "selfrl/loops/run.h"

#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "selfrl/core/device.h"
#include "selfrl/core/error.h"
#include "selfrl/core/logging.h"
#include "selfrl/core/seed.h"
#include "selfrl/rewards/builtin_rewards.h"
#include "selfrl/trainers/label_free.h"

namespace selfrl::loops {

metrics::Scalars SelfImprovementLoop::step(RunContext&) {
  throw Error(name() +
              " has no single optimizer step to take: its unit of work is an iteration (generate, select, train)")
      .hint("call train() to run it; step() is for GRPO-based runs (trainer: grpo, loop: sec)");
}

void SelfImprovementLoop::begin(RunContext& ctx) {
  if (begun_) return;
  begun_ = true;
  if (!ctx.resume_dir.empty()) {
    prepare(ctx);
    const auto extra = *ctx.resume_checkpoint(optimizer());
    done_ = extra.value("iteration", int64_t{0});
    if (extra.contains("loop")) restore(ctx, extra["loop"]);
  } else {
    ctx.log_iteration(0, evaluate(ctx, 0));
  }
}

metrics::Scalars SelfImprovementLoop::finish_iteration(RunContext& ctx, int64_t it, metrics::Scalars m) {
  for (const auto& [k, v] : evaluate(ctx, it)) m[k] = v;
  ctx.log_iteration(it, m);
  done_ = it;
  if (!checkpoints_steps()) {
    std::string saved;
    if (ctx.cfg.save_steps > 0 && it % ctx.cfg.save_steps == 0)
      saved = ctx.save_checkpoint({{"iteration", it}, {"loop", state()}}, optimizer());
    if (it < num_iterations(ctx) && ctx.stop_requested()) {
      if (ctx.cfg.save_steps > 0 && saved.empty())
        saved = ctx.save_checkpoint({{"iteration", it}, {"loop", state()}}, optimizer());
      ctx.interrupt(saved);
    }
  }
  return m;
}

metrics::Scalars SelfImprovementLoop::run(RunContext& ctx) {
  begin(ctx);
  metrics::Scalars last;
  for (int64_t it = done_ + 1; it <= num_iterations(ctx); ++it) last = finish_iteration(ctx, it, iterate(ctx, it));
  return last;
}

std::unique_ptr<SelfImprovementLoop> make_loop(const TrainConfig& cfg) {
  const auto info = find_loop(cfg.kind);
  if (!info) throw Error("unknown trainer or loop '" + cfg.kind + "'");
  auto loop = info->factory(cfg);
  if (!loop) throw Error("loop '" + cfg.kind + "': its factory returned no loop");
  return loop;
}

Run::Run(TrainConfig cfg, RunHooks hooks) : cfg_(std::move(cfg)) {
  // The World the launcher describes (mpirun / torchrun / SLURM), or a world of one.
  world_ = hooks.world;
  if (!world_) {
    dist::WorldOptions wo;
    wo.timeout = std::chrono::seconds(cfg_.ddp_timeout);
    wo.device = parse_device(cfg_.device);
    world_ = dist::World::from_environment(wo);
  }
  seed_everything(cfg_.seed, world_->rank());
  if (world_->distributed() && world_->is_main())
    SELFRL_INFO("selfrl train: " << world_->size() << " ranks (" << world_->backend()
                                 << "), global batch = " << cfg_.per_device_train_batch_size << " x "
                                 << cfg_.gradient_accumulation_steps << " x " << world_->size());
  ctx_ = std::make_unique<RunContext>(cfg_, world_, std::move(hooks));
  loop_ = make_loop(cfg_);
}

Run::~Run() = default;

metrics::Scalars Run::step() {
  loop_->begin(*ctx_);
  return loop_->step(*ctx_);
}

std::string Run::save_checkpoint() {
  loop_->begin(*ctx_);
  loop_->prepare(*ctx_);
  return ctx_->save_checkpoint({{"iteration", loop_->iterations_done()}, {"loop", loop_->state()}}, loop_->optimizer());
}

TrainResult Run::train() {
  const auto& cfg = cfg_;
  TrainResult r;
  r.last = loop_->run(*ctx_);
  r.metrics_path = (std::filesystem::path(cfg.output_dir) / "metrics.jsonl").string();
  if (cfg.save_model) r.final_model_dir = ctx_->save_final();
  if (world_->is_main() && std::filesystem::exists(r.metrics_path)) {
    // The run's curves next to its metrics; a plot that fails must not fail a finished run.
    r.plot_path = (std::filesystem::path(cfg.output_dir) / "curves.svg").string();
    try {
      metrics::MetricsPlotOptions po;
      po.title = cfg.kind + " — " + cfg.output_dir;
      metrics::plot_metrics({r.metrics_path}, r.plot_path, po);
    } catch (const std::exception& e) {
      SELFRL_WARN("could not write " << r.plot_path << ": " << e.what());
      r.plot_path.clear();
    }
  }
  return r;
}

TrainResult run_training(const TrainConfig& cfg) { return Run(cfg).train(); }

rewards::Group to_group(const data::Prompt& prompt, const generation::Rollout& rollout, const Policy& policy) {
  return rewards::make_group(prompt.text, prompt.row, rollout,
                             [&policy](const std::vector<int64_t>& ids) { return policy.decode(ids); });
}

metrics::Scalars label_free_metrics(const RunContext& ctx, const std::vector<generation::Rollout>& rollouts) {
  trainers::LabelFreeSums sums;
  for (const auto& r : rollouts) {
    trainers::GroupAnswers g;
    for (const auto& c : r.completions) {
      g.answers.push_back(ctx.extractor.extract(ctx.policy.decode(c.token_ids)));
      g.certainty.push_back(rewards::mean_self_certainty(c.self_certainty));
    }
    sums.add(g);
  }
  return sums.scalars();
}

std::vector<std::vector<double>> weighted_group_scores(rewards::RewardPipeline& pipeline,
                                                       const std::vector<rewards::Group>& groups) {
  std::vector<std::vector<double>> out;
  if (groups.empty()) return out;
  const auto res = pipeline.score(groups);
  const auto rpf = res.rewards_per_func.to(torch::kDouble).contiguous();
  const auto w = pipeline.weights();
  const int64_t F = rpf.size(1);
  int64_t row = 0;
  for (const auto& g : groups) {
    std::vector<double> scores;
    for (size_t i = 0; i < g.samples.size(); ++i, ++row) {
      double s = 0;
      bool any = false;
      for (int64_t f = 0; f < F; ++f) {
        const double v = rpf[row][f].item<double>();
        if (std::isfinite(v)) s += w[f].item<double>() * v, any = true;
      }
      scores.push_back(any ? s : std::nan(""));
    }
    out.push_back(std::move(scores));
  }
  return out;
}

std::vector<size_t> shuffled_indices(size_t n, uint64_t seed) {
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(idx.begin(), idx.end(), rng);
  return idx;
}

}  // namespace selfrl::loops
