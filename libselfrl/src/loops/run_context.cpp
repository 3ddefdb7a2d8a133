// RunContext: the policy, data, metrics and phase helpers every loop shares.
#include "selfrl/loops/run_context.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <utility>

#include "selfrl/core/blas.h"
#include "selfrl/core/device.h"
#include "selfrl/core/error.h"
#include "selfrl/core/interrupt.h"
#include "selfrl/core/logging.h"
#include "selfrl/core/progress.h"
#include "selfrl/core/seed.h"
#include "selfrl/io/file_util.h"
#include "selfrl/model/lora.h"
#include "selfrl/generation/rollout_engine.h"
#include "selfrl/rewards/reward_registry.h"
#include "selfrl/trainers/checkpoint.h"
#include "loops/run_setup.h"

namespace fs = std::filesystem;

namespace selfrl::loops {

void copy_tokenizer_files(const std::string& from, const std::string& to) {
  static const char* kFiles[] = {
      "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
      "vocab.json",     "merges.txt",      "added_tokens.json"};
  for (const char* f : kFiles) {
    const fs::path src = fs::path(from) / f;
    if (fs::exists(src) && fs::absolute(src) != fs::absolute(fs::path(to) / f))
      fs::copy_file(src, fs::path(to) / f, fs::copy_options::overwrite_existing);
  }
}

namespace {
// One lock per output_dir per process, shared: runs in one process follow each other (Python: a
// trainer stopped by Ctrl-C, then a new one resuming the same directory while the first object
// is still alive); runs in two processes must not share the directory.
std::shared_ptr<const void> lock_output_dir(const std::string& dir) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<io::DirectoryLock>> held;
  std::lock_guard<std::mutex> guard(mu);
  auto& slot = held[fs::weakly_canonical(dir).string()];
  if (auto lock = slot.lock()) return lock;
  auto lock = std::make_shared<io::DirectoryLock>(dir);
  slot = lock;
  return lock;
}
}  // namespace

RunContext::RunContext(const TrainConfig& c, std::shared_ptr<dist::World> w, RunHooks hooks)
    : cfg(c),
      world(w ? std::move(w) : dist::World::single()),
      extractor(eval::parse_extractor(c.extractor)),
      hooks_(std::move(hooks)) {
  if (cfg.threads > 0) set_intra_op_threads(static_cast<int>(cfg.threads));
  if (is_main()) {  // one run per output_dir: a second one would delete this one's checkpoint temporaries
    create_output_dir(cfg.output_dir);
    output_dir_lock_ = lock_output_dir(cfg.output_dir);
  }
  const ResumePoint resume = find_resume_point(cfg, is_main());  // every rank looks (output_dir is shared)
  resume_dir = resume.dir;
  if (is_main()) prepare_output_dir(cfg, resume);
  if (resume.metrics_lines >= 0) metrics_lines_ = resume.metrics_lines;
  policy = load_policy(cfg, hooks_.model);
  attach_lora(*policy.model);
  load_datasets(cfg, policy, train, eval_set);
  if (is_main()) logger_ = std::make_unique<metrics::MetricsLogger>(cfg.output_dir, cfg.tensorboard);
  // Rank 0 has checked and prepared output_dir before any rank goes on.
  world->barrier("selfrl train: output_dir ready");
}

void RunContext::log_train(const metrics::Scalars& m, const std::string& kind) {
  ++global_step;
  if (hooks_.on_log) hooks_.on_log(global_step, kind, m);
  if (global_step % cfg.logging_steps == 0 || global_step == 1) {
    ++metrics_lines_;
    if (logger_) logger_->log(global_step, m, kind);
  }
}

void RunContext::after_phase_step(bool step_checkpoints, int64_t steps, int64_t phase_start,
                                  trainers::TrainingOptimizer& optimizer) {
  // trainer: sft | dpo with save_steps checkpoint inside their pass; a resumed pass continues
  // at phase_step of the pass begun at phase_start.
  auto save = [&] {
    return save_checkpoint(
        {{"iteration", 0}, {"data_position", steps}, {"loop", {{"phase_step", steps}, {"phase_start", phase_start}}}},
        &optimizer);
  };
  std::string saved;
  if (step_checkpoints && steps % cfg.save_steps == 0) saved = save();
  if (stop_requested()) {
    if (step_checkpoints && saved.empty()) saved = save();
    interrupt(saved);
  }
}

bool RunContext::stop_requested() const {
  if (!hooks_.should_stop) return false;
  const bool local = hooks_.should_stop();
  if (!world->distributed()) return local;
  return world->all_reduce_max(local ? 1.0 : 0.0, "stop request") > 0.5;
}

void RunContext::interrupt(const std::string& checkpoint) const {
  std::string msg = cfg.kind + " stopped by request after step " + std::to_string(global_step);
  msg += checkpoint.empty() ? " (no checkpoint written at this step; set save_steps to have one)"
                            : "; checkpoint: " + checkpoint;
  if (is_main()) SELFRL_WARN(msg);
  throw Interrupted(msg, checkpoint);
}

void RunContext::log_iteration(int64_t iteration, const metrics::Scalars& m) {
  metrics::Scalars s = m;
  s["iteration"] = static_cast<double>(iteration);
  if (gen_stats_.prompts > 0) {
    s["timing_s/gen"] = gen_stats_.seconds;  // verl's name for the generation phase's time
    s["gen/prompts_this_rank"] = static_cast<double>(gen_stats_.prompts);
  }
  gen_stats_ = {};
  ++metrics_lines_;
  if (hooks_.on_log) hooks_.on_log(global_step, "iteration", s);
  if (!logger_) return;
  logger_->log(global_step, s, "iteration");
  std::string line = cfg.kind + " iteration " + std::to_string(iteration) + ":";
  for (const char* key : {"eval/accuracy", "eval/maj@k", "eval/pass@k", "kept", "pairs", "num_tasks"})
    if (auto it = s.find(key); it != s.end()) line += " " + std::string(key) + "=" + std::to_string(it->second);
  SELFRL_INFO(line);
}

metrics::Scalars RunContext::evaluate(int64_t iteration) {
  // Rank 0 alone evaluates (the other ranks go on and wait for it at the next collective).
  if (eval_set.empty() || !is_main()) return {};
  eval::EvalOptions o;
  o.samples = cfg.eval.samples;
  o.temperature = cfg.eval.temperature;
  o.max_new_tokens = cfg.eval.max_new_tokens > 0 ? cfg.eval.max_new_tokens : cfg.sampling.max_new_tokens;
  o.batch_size = cfg.generation_batch_size;
  o.continuous_batching = cfg.continuous_batching;
  o.share_prompt_cache = cfg.share_prompt_cache;
  o.kv_block_size = cfg.kv_block_size;
  o.seed = derive_seed(cfg.seed, {0xe7a1, static_cast<uint64_t>(iteration)});
  o.keep_per_example = false;
  o.label = "eval " + std::to_string(iteration);
  const auto r = eval::evaluate(
      policy.model, [this](const std::vector<int64_t>& ids) { return policy.decode(ids); }, eval_set, extractor, o,
      policy.eos_token_ids);
  return r.to_scalars("eval/");
}

namespace {

// Every rank's rollouts, concatenated in rank order (collective).
std::vector<generation::Rollout> gather_rollouts(dist::World& world, const std::vector<generation::Rollout>& local,
                                                 const std::string& what) {
  const auto packed = generation::pack_rollouts(local);
  const auto sizes =
      world.all_gather(torch::tensor({static_cast<double>(packed.size())}, torch::kDouble), what + " (sizes)");
  const auto longest = static_cast<int64_t>(sizes.max().item<double>());
  auto mine = torch::zeros({longest}, torch::kDouble);
  std::copy(packed.begin(), packed.end(), mine.data_ptr<double>());
  const auto all = world.all_gather(mine, what + " (rollouts)");
  std::vector<generation::Rollout> out;
  for (int r = 0; r < world.size(); ++r) {
    const double* begin = all.data_ptr<double>() + r * longest;
    for (auto& x : generation::unpack_rollouts(begin, static_cast<size_t>(sizes[r].item<double>())))
      out.push_back(std::move(x));
  }
  return out;
}

}  // namespace

std::vector<generation::Rollout> RunContext::sample(const std::vector<std::vector<int64_t>>& prompts, int64_t n,
                                                    double temperature, int64_t max_new_tokens, uint64_t seed,
                                                    const std::string& label) const {
  return sample_with(policy, prompts, n, temperature, max_new_tokens, seed, label, true);
}

std::vector<generation::Rollout> RunContext::sample_with(const Policy& policy,
                                                         const std::vector<std::vector<int64_t>>& prompts, int64_t n,
                                                         double temperature, int64_t max_new_tokens, uint64_t seed,
                                                         const std::string& label, bool over_ranks) const {
  const auto t0 = std::chrono::steady_clock::now();
  torch::NoGradGuard ng;
  policy.model->eval();
  std::optional<model::LoraMerged> merged;  // lora.merge_for_rollouts
  if (cfg.lora_merge_for_rollouts && model::has_lora(*policy.model)) merged.emplace(*policy.model);
  generation::RolloutEngineOptions eo;
  eo.max_batch_size = std::max(cfg.generation_batch_size, n);
  eo.continuous_batching = cfg.continuous_batching;
  eo.share_prompt_cache = cfg.share_prompt_cache;
  eo.kv_block_size = cfg.kv_block_size;
  eo.eos_token_ids = policy.eos_token_ids;
  generation::RolloutEngine engine(policy.model, eo);
  generation::SamplingParams sp = cfg.sampling;  // top_p, top_k, min_p, stop_token_ids of the recipe
  sp.num_samples = n;
  sp.temperature = temperature;
  sp.max_new_tokens = max_new_tokens;
  // Waves of per_wave prompts, each with its prompts' own seeds. In a distributed run this rank
  // generates the contiguous range of waves shard_bounds gives it: the same waves with the same
  // seeds as one process, so the gathered rollouts do not depend on the number of ranks.
  const size_t per_wave = static_cast<size_t>(std::max<int64_t>(1, cfg.generation_batch_size / n));
  const size_t waves = (prompts.size() + per_wave - 1) / per_wave;
  const bool split = over_ranks && world->distributed();
  const auto [w_begin, w_end] = split ? dist::shard_bounds(waves, *world) : std::pair<size_t, size_t>{0, waves};
  const size_t p_begin = std::min(prompts.size(), w_begin * per_wave);
  const size_t p_end = std::min(prompts.size(), w_end * per_wave);
  std::optional<ProgressBar> bar;  // none when label is empty
  if (!label.empty()) bar.emplace(label, static_cast<int64_t>(p_end - p_begin), "prompts");
  std::vector<generation::Rollout> out;
  // With continuous batching the engine gets the whole range at once (it keeps its batch full);
  // the seeds are the same, so only the batch composition differs from waves.
  const size_t step = cfg.continuous_batching ? std::max<size_t>(1, p_end - p_begin) : per_wave;
  for (size_t first = p_begin; first < p_end; first += step) {
    const size_t last = std::min(p_end, first + step);
    std::vector<std::vector<int64_t>> chunk(prompts.begin() + first, prompts.begin() + last);
    std::vector<uint64_t> seeds;
    for (size_t i = first; i < last; ++i) seeds.push_back(derive_seed(seed, {i}));
    for (auto& r : engine.generate(chunk, sp, seeds, [&](int64_t done) {
           if (bar) bar->advance(done);
         }))
      out.push_back(std::move(r));
  }
  if (over_ranks) {  // the loops' phases (not a GRPO reward's judge)
    gen_stats_.prompts += static_cast<int64_t>(p_end - p_begin);
    gen_stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (split) out = gather_rollouts(*world, out, label.empty() ? "sampling" : label);
  return out;
}

std::vector<int64_t> RunContext::encode_prompt(const std::string& text) const {
  return data::encode_prompt(*policy.tokenizer, text, cfg.prompt_options);
}

std::vector<int64_t> RunContext::fit_prompt(std::vector<int64_t> ids, int64_t max_new_tokens) const {
  return fit_to(std::move(ids), max_new_tokens, policy.model->config().max_position_embeddings);
}

std::vector<int64_t> RunContext::fit_to(std::vector<int64_t> ids, int64_t max_new_tokens, int64_t context) const {
  const int64_t room = std::max<int64_t>(1, context - max_new_tokens);
  if (static_cast<int64_t>(ids.size()) <= room) return ids;
  if (!warned_truncation_) {
    SELFRL_WARN(cfg.kind << ": a generated prompt of " << ids.size() << " tokens is cut to its last " << room
                         << " to fit the context (max_position_embeddings " << context << " - " << max_new_tokens
                         << " new tokens)");
    warned_truncation_ = true;
  }
  ids.erase(ids.begin(), ids.end() - room);
  return ids;
}

std::shared_ptr<model::CausalLM> RunContext::load_base() const {
  auto m = model::CausalLM::from_pretrained(cfg.model_dir, parse_device(cfg.device), parse_dtype(cfg.dtype));
  attach_lora(*m);
  return m;
}

void RunContext::attach_lora(model::CausalLM& m) const {
  if (model::has_lora(m)) return;  // a given model that has its adapters already
  if (!cfg.lora_adapter.empty()) {
    model::load_lora(m, cfg.lora_adapter);
  } else if (cfg.use_lora()) {
    torch::manual_seed(derive_seed(cfg.seed, {0x10a}));  // the same A on every rank
    model::add_lora(m, cfg.lora);
  }
}

metrics::Scalars RunContext::sft(const std::shared_ptr<model::CausalLM>& model,
                                 const std::vector<trainers::SFTExample>& data,
                                 const std::optional<trainers::NFTLossConfig>& nft) {
  metrics::Scalars summary{{"sft/examples", static_cast<double>(data.size())}, {"sft/steps", 0.0}};
  if (data.empty()) return summary;
  trainers::SFTConfig sc;
  sc.optimizer = cfg.optimizer;
  sc.per_device_train_batch_size = cfg.per_device_train_batch_size;
  sc.gradient_accumulation_steps = cfg.gradient_accumulation_steps;
  sc.num_train_epochs = cfg.num_train_epochs;
  sc.gradient_checkpointing = cfg.gradient_checkpointing;
  sc.bf16 = cfg.bf16;
  sc.padding_free = cfg.padding_free;
  sc.nft = nft;
  // trainer: sft with save_steps: checkpoints inside the pass; a resumed pass keeps the seed of
  // the step it started at and skips the batches already trained on.
  const bool step_checkpoints = cfg.kind == "sft" && cfg.save_steps > 0;
  const PhaseResume resume = std::exchange(phase_resume_, PhaseResume{});
  const int64_t phase_start = resume.dir.empty() ? global_step : resume.phase_start;
  sc.seed = derive_seed(cfg.seed, {static_cast<uint64_t>(phase_start)});
  sc.optimizer.total_steps = trainers::SFTTrainer::steps_for(data.size(), sc, world->size());
  sc.optimizer.warmup_steps =
      trainers::resolve_warmup_steps(cfg.optimizer.warmup_steps, cfg.warmup_ratio, sc.optimizer.total_steps);
  trainers::SFTTrainer trainer(model, sc, world);
  if (!resume.dir.empty()) {  // the moments and scheduler of the interrupted pass
    checkpoint::load(resume.dir, *model, trainer.optimizer(), world.get());
    trainer.set_global_step(resume.step);
  }
  // Epochs in seeded random order (the same on every rank), one logged line per optimizer
  // step; each rank trains on its contiguous shard of the global batch.
  const int64_t per_step = sc.per_device_train_batch_size * sc.gradient_accumulation_steps * world->size();
  std::mt19937_64 rng(sc.seed);
  ProgressBar bar("sft", sc.optimizer.total_steps, "steps");
  double first = std::nan(""), last = 0;  // NFT losses can be negative: no sentinel value
  int64_t steps = 0;
  for (int64_t e = 0; e < sc.num_train_epochs; ++e) {
    std::vector<size_t> order(data.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t s = 0; s < order.size(); s += static_cast<size_t>(per_step)) {
      if (steps < resume.step) {  // trained on before the checkpoint
        ++steps;
        bar.advance();
        continue;
      }
      std::vector<trainers::SFTExample> batch;
      for (size_t i = s; i < std::min(order.size(), s + static_cast<size_t>(per_step)); ++i)
        batch.push_back(data[order[i]]);
      auto m = trainer.step(dist::shard(batch, *world));
      m["epoch"] = static_cast<double>(e) + static_cast<double>(s + batch.size()) / static_cast<double>(order.size());
      if (steps == resume.step) first = m["loss"];
      last = m["loss"];
      ++steps;
      log_train(m, "sft");
      after_phase_step(step_checkpoints, steps, phase_start, trainer.optimizer());
      bar.advance();
      bar.set_postfix("loss=" + std::to_string(last));
    }
  }
  summary["sft/steps"] = static_cast<double>(steps);
  summary["sft/loss_first"] = first;
  summary["sft/loss_last"] = last;
  return summary;
}

metrics::Scalars RunContext::dpo(const std::shared_ptr<model::CausalLM>& model,
                                 const std::vector<trainers::PreferencePair>& pairs, bool scpo, double scpo_alpha) {
  metrics::Scalars summary{{"dpo/pairs", static_cast<double>(pairs.size())}, {"dpo/steps", 0.0}};
  if (pairs.empty()) return summary;
  trainers::DPOConfig dc;
  dc.loss = cfg.dpo_loss;
  dc.scpo = scpo;
  dc.scpo_alpha = scpo_alpha;
  dc.optimizer = cfg.optimizer;
  dc.per_device_train_batch_size = cfg.per_device_train_batch_size;
  dc.bf16 = cfg.bf16;
  dc.padding_free = cfg.padding_free;
  const int64_t per_step = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps * world->size();
  const int64_t batches = (static_cast<int64_t>(pairs.size()) + per_step - 1) / per_step;
  const int64_t epochs = std::max<int64_t>(1, cfg.num_train_epochs);
  dc.optimizer.total_steps = batches * epochs;
  dc.optimizer.warmup_steps =
      trainers::resolve_warmup_steps(cfg.optimizer.warmup_steps, cfg.warmup_ratio, dc.optimizer.total_steps);
  const bool step_checkpoints = cfg.kind == "dpo" && cfg.save_steps > 0;
  const PhaseResume resume = std::exchange(phase_resume_, PhaseResume{});
  const int64_t phase_start = resume.dir.empty() ? global_step : resume.phase_start;
  trainers::DPOTrainer trainer(model, nullptr, dc, world);
  if (!resume.dir.empty()) {
    checkpoint::load(resume.dir, *model, trainer.optimizer(), world.get());
    trainer.set_global_step(resume.step);
  }
  std::mt19937_64 rng(derive_seed(cfg.seed, {0xd90, static_cast<uint64_t>(phase_start)}));
  ProgressBar bar(scpo ? "scpo" : "dpo", dc.optimizer.total_steps, "steps");
  double first = std::nan(""), last = 0;  // robust DPO losses can be negative
  int64_t steps = 0;
  for (int64_t e = 0; e < epochs; ++e) {
    std::vector<size_t> order(pairs.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t s = 0; s < order.size(); s += static_cast<size_t>(per_step)) {
      if (steps < resume.step) {
        ++steps;
        bar.advance();
        continue;
      }
      std::vector<trainers::PreferencePair> batch;
      for (size_t i = s; i < std::min(order.size(), s + static_cast<size_t>(per_step)); ++i)
        batch.push_back(pairs[order[i]]);
      auto m = trainer.step(dist::shard(batch, *world));
      if (steps == resume.step) first = m["loss"];
      last = m["loss"];
      ++steps;
      log_train(m, scpo ? "scpo" : "dpo");
      after_phase_step(step_checkpoints, steps, phase_start, trainer.optimizer());
      bar.advance();
    }
  }
  summary["dpo/steps"] = static_cast<double>(steps);
  summary["dpo/loss_first"] = first;
  summary["dpo/loss_last"] = last;
  return summary;
}

rewards::RewardPipeline RunContext::make_rewards(const std::vector<std::string>& funcs,
                                                 const std::vector<double>& weights) const {
  rewards::RewardPipeline p;
  for (size_t i = 0; i < funcs.size(); ++i) p.add(make_reward(funcs[i]), weights.empty() ? 1.0 : weights[i]);
  return p;
}

rewards::RewardPtr RunContext::make_reward(const std::string& f) const {
  rewards::RewardArgs a;
  a.extractor = extractor;
  a.answer_field = cfg.prompt_options.answer_field;
  a.max_completion_length = cfg.sampling.max_new_tokens;
  a.borda_power = cfg.borda_power;
  a.consensus_min_vote_share = cfg.consensus_min_vote_share;
  a.format_pattern = cfg.format_pattern;
  a.judge = cfg.judge;
  a.judge.seed = derive_seed(cfg.seed, {0x7d6e, 0x9e0});
  a.judge_fn = [this] { return judge_fn(); };
  return rewards::make_reward(f, a);
}

rewards::JudgeFn RunContext::judge_fn(bool over_ranks) const {
  if (!cfg.judge_model.empty() && !judge_) {
    auto j = std::make_shared<Policy>(
        Policy::from_pretrained(cfg.judge_model, parse_device(cfg.device), parse_dtype(cfg.dtype)));
    for (auto& p : j->model->parameters()) p.set_requires_grad(false);
    j->model->eval();
    judge_ = j;
  }
  return [this, over_ranks](const rewards::JudgeRequest& req) {
    const Policy& j = judge_ ? *judge_ : policy;
    const int64_t context = j.model->config().max_position_embeddings;
    std::vector<std::vector<int64_t>> ids;
    for (const auto& p : req.prompts)
      ids.push_back(fit_to(data::encode_prompt(*j.tokenizer, p, cfg.prompt_options), req.max_new_tokens, context));
    // No progress bar: as a GRPO reward the judge runs once per group, under the step's bar.
    const auto rollouts =
        sample_with(j, ids, req.num_judgements, req.temperature, req.max_new_tokens, req.seed, "", over_ranks);
    std::vector<std::vector<std::string>> out;
    for (const auto& r : rollouts) {
      out.emplace_back();
      for (const auto& c : r.completions) out.back().push_back(j.decode(c.token_ids));
    }
    return out;
  };
}

std::string RunContext::save_final() const {
  const std::string dir = (fs::path(cfg.output_dir) / "final").string();
  if (is_main()) {
    if (model::has_lora(*policy.model)) {  // a PEFT adapter for cfg.model_dir
      auto l = cfg.lora;
      if (!cfg.lora_adapter.empty())
        l = model::LoraConfig::from_peft_json(io::read_json_file(cfg.lora_adapter + "/adapter_config.json"),
                                              cfg.lora_adapter);
      l.base_model_name_or_path = cfg.model_dir;
      model::save_lora(*policy.model, l, dir);
    } else {
      policy.model->save_pretrained(dir);
    }
    copy_tokenizer_files(cfg.model_dir, dir);
  }
  world->barrier("selfrl train: final model saved");
  return dir;
}

std::string RunContext::save_checkpoint(nlohmann::json extra, trainers::TrainingOptimizer* optimizer) {
  std::unique_ptr<trainers::TrainingOptimizer> none;
  if (!optimizer) {  // the loop rebuilds its trainers every iteration: no moments to keep
    std::vector<torch::Tensor> params;
    for (auto& p : policy.model->parameters())
      if (p.requires_grad()) params.push_back(p);
    none = std::make_unique<trainers::TrainingOptimizer>(params, cfg.optimizer);
    optimizer = none.get();
  }
  extra["global_step"] = global_step;
  extra["metrics_lines"] = metrics_lines_;
  checkpoint::TrainerState st;
  st.step = global_step;
  st.data_position = extra.value("data_position", int64_t{0});
  st.extra = std::move(extra);
  checkpoint::SaveOptions so;
  so.tokenizer_dir = cfg.model_dir;
  so.keep_last = static_cast<int>(cfg.save_total_limit);
  return checkpoint::save(cfg.output_dir, *policy.model, *optimizer, st, so, world.get());
}

std::optional<nlohmann::json> RunContext::resume_checkpoint(trainers::TrainingOptimizer* optimizer) {
  if (resume_dir.empty()) return std::nullopt;
  std::unique_ptr<trainers::TrainingOptimizer> none;
  if (!optimizer) {
    std::vector<torch::Tensor> params;
    for (auto& p : policy.model->parameters())
      if (p.requires_grad()) params.push_back(p);
    none = std::make_unique<trainers::TrainingOptimizer>(params, cfg.optimizer);
    optimizer = none.get();
  }
  const auto st = checkpoint::load(resume_dir, *policy.model, *optimizer, world.get());
  global_step = st.extra.value("global_step", st.step);
  if (is_main()) SELFRL_INFO("resumed from " << resume_dir << " (step " << global_step << ")");
  return st.extra;
}

}  // namespace selfrl::loops
