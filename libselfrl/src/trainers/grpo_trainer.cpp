// GRPOTrainer (see selfrl/trainers/grpo_trainer.h). step() is its phases in order:
//   generate_and_score   G completions per prompt → rewards (with DAPO refill rounds)
//   advantages           group-relative (global std for scale_rewards: batch)
//   training_batch       one padded row per completion
//   old_and_ref_logprobs the no-grad passes (μ > 1, dumps, beta > 0)
//   update               μ passes over micro-batches, one optimizer step each
//   report               TRL's metric names, from sums reduced over ranks by name
// A rank whose groups were all dropped by dynamic sampling takes the same phases with an
// empty batch, so every rank issues the same collectives.
#include "selfrl/trainers/grpo_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <set>

#include "selfrl/core/error.h"
#include "selfrl/trainers/trainer_setup.h"
#include "selfrl/core/logging.h"
#include "selfrl/core/memory.h"
#include "selfrl/core/seed.h"
#include "selfrl/dist/world.h"
#include "selfrl/io/jsonl.h"
#include "selfrl/model/lora.h"
#include "selfrl/rewards/builtin_rewards.h"
#include "selfrl/trainers/label_free.h"
#include "selfrl/trainers/sequence_batch.h"

namespace selfrl::trainers {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<float> row_vector(const torch::Tensor& t, int64_t row, int64_t n) {
  const auto r = t[row].slice(0, 0, n).to(torch::kFloat).contiguous();
  return std::vector<float>(r.data_ptr<float>(), r.data_ptr<float>() + n);
}

bool truncated(const generation::Completion& c) { return c.finish_reason == generation::FinishReason::kLength; }

// Names of the per-reward-function sums (indexed: a pipeline may hold one reward twice).
std::string func_key(size_t f, const char* what) { return "reward_func/" + std::to_string(f) + "/" + what; }

}  // namespace

// Groups kept for the update, in prompt order, with what scoring them reported.
struct GRPOTrainer::Groups {
  std::vector<PromptExample> examples;
  std::vector<generation::Rollout> rollouts;
  std::vector<nlohmann::json> info;
  std::vector<torch::Tensor> reward_rows;                        // [G, F] per kept group
  torch::Tensor rewards_per_func;                                // [kept × G, F] float64, once collection is done
  std::map<std::string, int64_t> failures;                       // every round, kept or not
  std::map<std::string, std::pair<double, double>> metric_sums;  // every round, kept or not
  std::vector<std::optional<std::string>> greedy_answers;        // per kept group (greedy_diagnostics)
  std::vector<Anchor> new_anchors;                               // found this step, kept or not
  double anchors_checked = 0, anchors_agreed = 0;                // the earlier steps' anchors
  int64_t dropped = 0;
  double dropped_reward_sum = 0, dropped_rewards = 0;  // weighted rewards of the dropped groups
  bool empty() const { return examples.empty(); }
};

// The training batch: one row per completion of the kept groups.
struct GRPOTrainer::Batch {
  SequenceBatch seq;
  torch::Tensor advantages;  // [N] float32
  std::vector<bool> truncated;
  int64_t rows = 0;
  double prompt_tokens = 0, completion_tokens = 0;
};

struct GRPOTrainer::OldLogprobs {
  torch::Tensor old_logps, ref_logps;  // [N, C] on the CPU, undefined when not needed
};

struct GRPOTrainer::Timings {
  Clock::time_point start = Clock::now();
  double generation = 0, scoring = 0, logprobs = 0, update = 0;
};

GRPOTrainer::GRPOTrainer(model::Policy policy, rewards::RewardPipeline rewards, GRPOConfig config,
                         std::shared_ptr<dist::World> world)
    : policy_(std::move(policy)), rewards_(std::move(rewards)), cfg_(std::move(config)), world_(std::move(world)) {
  SELFRL_CHECK(policy_.model != nullptr, "GRPOTrainer: no policy model");
  auto& model = *policy_.model;
  world_ = join_world(world_, model);  // before the reference copy
  SELFRL_CHECK(cfg_.num_generations() >= 2, "num_generations must be >= 2 for group-relative advantages, got ",
               cfg_.num_generations());
  SELFRL_CHECK(cfg_.num_iterations >= 1, "num_iterations must be >= 1");
  SELFRL_CHECK(cfg_.gradient_accumulation_steps >= 1, "gradient_accumulation_steps must be >= 1");
  SELFRL_CHECK(rewards_.size() > 0, "GRPOTrainer: the reward pipeline is empty");
  cfg_.sampling.validate();
  cfg_.loss.max_completion_length = cfg_.max_completion_length();  // dr_grpo's constant
  // TRL loads no reference when beta == 0. With LoRA the reference is the base itself: the same
  // weights with the adapters off (model::LoraDisabled), no second copy.
  if (cfg_.loss.beta != 0 && !selfrl::model::has_lora(model)) ref_ = clone_model(model);
  generation::RolloutEngineOptions eo;
  eo.max_batch_size = std::max(cfg_.generation_batch_size, cfg_.num_generations());
  eo.continuous_batching = cfg_.continuous_batching;
  eo.share_prompt_cache = cfg_.share_prompt_cache;
  eo.kv_block_size = cfg_.kv_block_size;
  eo.eos_token_ids = policy_.stop_ids();
  engine_ = std::make_unique<generation::RolloutEngine>(policy_.model, eo);
  optimizer_ = make_optimizer(model, cfg_.optimizer, world_);
  logger_ = make_logger(cfg_.output_dir, world_.get());
  pad_id_ = pad_id_of(model, eo.eos_token_ids);
}

GRPOStepResult GRPOTrainer::step(const std::vector<PromptExample>& prompts, const PromptSource& more_prompts) {
  SELFRL_CHECK(!prompts.empty(), "GRPOTrainer::step: no prompts");
  if (world_) world_->set_step(step_);
  Timings t;
  const Groups groups = generate_and_score(prompts, more_prompts, t);
  std::vector<double> kept = {static_cast<double>(groups.examples.size()), static_cast<double>(groups.dropped),
                              groups.dropped_reward_sum, groups.dropped_rewards};
  if (world_) kept = world_->all_reduce_sum(kept, "GRPO kept groups");
  if (kept[0] == 0) {
    // Every group had zero reward variance even after resampling: nothing to learn from. The
    // step is logged as skipped, with the mean reward of the groups it dropped.
    SELFRL_WARN("step " << step_ << ": every group was dropped by dynamic sampling; no update");
    metrics::Scalars m = {{"frac_reward_zero_std", 1.0},
                          {"dropped_groups", kept[1]},
                          {"skipped_steps", 1.0},
                          {"reward", kept[3] > 0 ? kept[2] / kept[3] : std::nan("")}};
    if (logger_) logger_->log(step_, m);
    ++step_;
    return {m, step_};
  }
  const Advantages adv = advantages(groups);
  const Batch batch = training_batch(groups, adv);
  const auto t_logprobs = Clock::now();
  const bool dump_now = (!cfg_.output_dir.empty() || !cfg_.rollouts_dir.empty()) && (!world_ || world_->is_main()) &&
                        cfg_.dump_rollouts_every > 0 && step_ % cfg_.dump_rollouts_every == 0;
  const OldLogprobs old = old_and_ref_logprobs(batch, dump_now);
  t.logprobs = seconds_since(t_logprobs);

  dist::NamedReduction sums = declare_step_sums();
  metrics::Scalars m;
  const auto t_update = Clock::now();
  update(batch, old, sums, m);
  t.update = seconds_since(t_update);
  add_group_sums(groups, batch, adv, sums);
  m = report(sums, std::move(m), t);
  if (dump_now) {
    // A dump is a diagnostic: one that cannot be written (disk full) is reported, not fatal. The
    // writer is atomic, so no partial step-N.jsonl is left under its final name.
    try {
      dump_rollouts(groups, batch, adv, old);
    } catch (const std::exception& e) {
      SELFRL_WARN("rollout dump of step " << step_ << " not written: " << e.what() << "; training goes on");
    }
  }
  if (logger_) logger_->log(step_, m);
  ++step_;
  return {m, step_};
}

// ---- 1. rollouts and rewards ------------------------------------------------------------------

GRPOTrainer::Groups GRPOTrainer::generate_and_score(const std::vector<PromptExample>& prompts,
                                                    const PromptSource& more_prompts, Timings& t) {
  // Request r of the first round samples with derive_seed(derive_seed(seed, {step, 0}), {r})
  // where r is the prompt's index in the *global* batch (this rank's offset + i): the same
  // completions whatever the number of ranks. Refill rounds (their count differs between
  // ranks) mix in the rank instead.
  uint64_t prompt_offset = 0;
  if (world_) {
    const auto counts =
        world_->all_gather(torch::tensor({static_cast<double>(prompts.size())}, torch::kDouble), "GRPO prompt offsets");
    for (int r = 0; r < world_->rank(); ++r) prompt_offset += static_cast<uint64_t>(counts[r].item<double>());
  }
  Groups groups;
  for (const auto& name : rewards_.names()) groups.failures[name] = 0;
  for (const auto& k : rewards_.metric_names()) groups.metric_sums[k] = {0.0, 0.0};
  const bool dynamic = cfg_.max_resample_rounds > 0 && more_prompts;
  const int64_t target = static_cast<int64_t>(prompts.size());
  std::vector<PromptExample> todo = prompts;
  for (int64_t round = 0; !todo.empty(); ++round) {
    std::vector<generation::Rollout> votes;
    const auto rollouts = generate(todo, round, prompt_offset, t, votes);
    score(todo, rollouts, votes, groups, dynamic, target, t);
    todo.clear();
    const int64_t missing = target - static_cast<int64_t>(groups.examples.size());
    if (dynamic && missing > 0 && round < cfg_.max_resample_rounds) todo = more_prompts(missing);
  }
  if (!groups.reward_rows.empty()) groups.rewards_per_func = torch::cat(groups.reward_rows, 0);
  if (cfg_.diagnostics_extractor) add_greedy_answers(groups, t);
  // This step's anchors join after the check: it measured the anchors of earlier steps only.
  if (cfg_.anchor_prompts > 0 && anchor_steps_seen_ < cfg_.anchor_steps) {
    ++anchor_steps_seen_;
    for (auto& a : groups.new_anchors) anchors_.push_back(std::move(a));
  }
  return groups;
}

// One greedy completion per kept prompt (greedy_diagnostics), for
// label_free/greedy_majority_agreement, and one per anchor, for label_free/anchor_agreement; one
// engine call for both.
void GRPOTrainer::add_greedy_answers(Groups& groups, Timings& t) {
  const bool per_group = cfg_.greedy_diagnostics && !groups.empty();
  if (!per_group && anchors_.empty()) return;
  const auto t0 = Clock::now();
  std::vector<std::vector<int64_t>> ids;
  if (per_group)
    for (const auto& p : groups.examples) ids.push_back(p.prompt_ids);
  const size_t n_groups = ids.size();
  for (const auto& a : anchors_) ids.push_back(a.prompt_ids);
  generation::SamplingParams sp = cfg_.sampling;
  sp.temperature = 0;
  sp.num_samples = 1;
  sp.top_k = 0, sp.top_p = 1, sp.min_p = 0;
  policy_.model->eval();
  std::optional<model::LoraMerged> merged;
  if (cfg_.merge_lora_for_generation && selfrl::model::has_lora(*policy_.model)) merged.emplace(*policy_.model);
  const auto out = engine_->generate(ids, sp);
  for (size_t i = 0; i < out.size(); ++i) {
    auto answer = cfg_.diagnostics_extractor->extract(policy_.decode(out[i].completions.at(0).token_ids));
    if (i < n_groups) {
      groups.greedy_answers.push_back(std::move(answer));
    } else {
      groups.anchors_checked += 1;
      if (answer && *answer == anchors_[i - n_groups].answer) groups.anchors_agreed += 1;
    }
  }
  t.generation += seconds_since(t0);
}

nlohmann::json GRPOTrainer::anchor_state() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& a : anchors_) list.push_back({{"prompt_ids", a.prompt_ids}, {"answer", a.answer}});
  return {{"steps_seen", anchor_steps_seen_}, {"anchors", list}};
}

void GRPOTrainer::restore_anchors(const nlohmann::json& j) {
  anchor_steps_seen_ = j.at("steps_seen").get<int64_t>();
  anchors_.clear();
  for (const auto& a : j.at("anchors"))
    anchors_.push_back({a.at("prompt_ids").get<std::vector<int64_t>>(), a.at("answer").get<std::string>()});
}

std::vector<generation::Rollout> GRPOTrainer::generate(const std::vector<PromptExample>& prompts, int64_t round,
                                                       uint64_t prompt_offset, Timings& t,
                                                       std::vector<generation::Rollout>& votes) {
  const auto t0 = Clock::now();
  std::vector<std::vector<int64_t>> ids;
  for (const auto& p : prompts) ids.push_back(p.prompt_ids);
  // Vote prompts go after all the prompts, so the prompts' own samples (seeded by position) are
  // the same with or without them.
  std::vector<size_t> voting;  // prompts with a vote prompt, in order
  for (size_t i = 0; i < prompts.size(); ++i)
    if (!prompts[i].vote_prompt_ids.empty()) {
      voting.push_back(i);
      ids.push_back(prompts[i].vote_prompt_ids);
    }
  generation::SamplingParams sp = cfg_.sampling;
  const auto step = static_cast<uint64_t>(step_), r = static_cast<uint64_t>(round);
  sp.seed = world_ && round > 0 ? derive_seed(cfg_.seed, {step, r, static_cast<uint64_t>(world_->rank())})
                                : derive_seed(cfg_.seed, {step, r});
  std::vector<uint64_t> request_seeds;
  if (world_ && round == 0) {
    for (size_t i = 0; i < prompts.size(); ++i) request_seeds.push_back(derive_seed(sp.seed, {prompt_offset + i}));
    for (size_t i : voting) request_seeds.push_back(derive_seed(sp.seed, {prompt_offset + i, 0x766f7465}));
  }
  policy_.model->eval();
  std::optional<model::LoraMerged> merged;
  if (cfg_.merge_lora_for_generation && selfrl::model::has_lora(*policy_.model)) merged.emplace(*policy_.model);
  auto out = engine_->generate(ids, sp, request_seeds);
  votes.assign(prompts.size(), generation::Rollout{});
  for (size_t v = 0; v < voting.size(); ++v) votes[voting[v]] = std::move(out[prompts.size() + v]);
  out.resize(prompts.size());
  t.generation += seconds_since(t0);
  return out;
}

void GRPOTrainer::score(const std::vector<PromptExample>& prompts, const std::vector<generation::Rollout>& rollouts,
                        const std::vector<generation::Rollout>& votes, Groups& into, bool drop_zero_std, int64_t target,
                        Timings& t) {
  const auto t0 = Clock::now();
  const int64_t G = cfg_.num_generations();
  const auto decode = [this](const std::vector<int64_t>& ids) { return policy_.decode(ids); };
  std::vector<rewards::Group> groups;
  for (size_t i = 0; i < prompts.size(); ++i) {
    groups.push_back(rewards::make_group(prompts[i].prompt_text, prompts[i].row, rollouts[i], decode));
    groups.back().step = step_ + 1;
    if (!votes[i].completions.empty())
      groups.back().vote_samples = rewards::make_group("", nullptr, votes[i], decode).samples;
  }
  auto scored = rewards_.score(groups);
  // Anchor candidates: prompts whose G samples all gave one answer (every group, kept or not:
  // dynamic sampling drops exactly the unanimous ones).
  const size_t anchor_room = static_cast<size_t>(std::max<int64_t>(0, cfg_.anchor_prompts));
  if (cfg_.diagnostics_extractor && anchor_steps_seen_ < cfg_.anchor_steps) {
    for (size_t i = 0; i < prompts.size() && anchors_.size() + into.new_anchors.size() < anchor_room; ++i) {
      std::optional<std::string> first;
      bool unanimous = !groups[i].samples.empty();
      for (const auto& sample : groups[i].samples) {  // the text make_group decoded
        const auto a = cfg_.diagnostics_extractor->extract(sample.completion);
        if (!a || (first && *a != *first)) {
          unanimous = false;
          break;
        }
        first = a;
      }
      if (unanimous) into.new_anchors.push_back({prompts[i].prompt_ids, *first});
    }
  }
  for (const auto& [k, v] : scored.failures) into.failures[k] += v;
  for (const auto& [k, v] : scored.metric_sums) {
    into.metric_sums[k].first += v.first;
    into.metric_sums[k].second += v.second;
  }
  Advantages flat;
  if (drop_zero_std) flat = compute_advantages(scored.rewards_per_func, rewards_.weights(), G, cfg_.scale_rewards);
  for (size_t i = 0; i < prompts.size() && static_cast<int64_t>(into.examples.size()) < target; ++i) {
    const auto row = static_cast<int64_t>(i);
    if (drop_zero_std && flat.zero_std_groups[row].item<bool>()) {
      ++into.dropped;
      const auto r = flat.rewards.slice(0, row * G, (row + 1) * G);
      const auto ok = r.masked_select(r.isfinite());
      into.dropped_reward_sum += ok.sum().item<double>();
      into.dropped_rewards += static_cast<double>(ok.numel());
      continue;
    }
    into.examples.push_back(prompts[i]);
    into.rollouts.push_back(rollouts[i]);
    into.info.push_back(scored.group_info[i]);
    into.reward_rows.push_back(scored.rewards_per_func.slice(0, row * G, (row + 1) * G));
  }
  t.scoring += seconds_since(t0);
}

// ---- 2. advantages -------------------------------------------------------------------------

Advantages GRPOTrainer::advantages(const Groups& groups) {
  const bool global_batch_std = world_ && cfg_.scale_rewards == ScaleRewards::kBatch;
  Advantages adv;
  if (!groups.empty()) {
    adv = compute_advantages(groups.rewards_per_func, rewards_.weights(), cfg_.num_generations(),
                             global_batch_std ? ScaleRewards::kNone : cfg_.scale_rewards);
  } else {  // this rank's groups were all dropped; it still joins the collectives
    adv.rewards = adv.advantages = adv.group_std = torch::empty({0}, torch::kDouble);
  }
  if (global_batch_std) {
    // scale_rewards: batch divides by the std of every reward of the global batch (Bessel).
    const auto r = adv.rewards.masked_select(adv.rewards.isfinite());
    const auto s =
        world_->all_reduce_sum({r.sum().item<double>(), r.pow(2).sum().item<double>(), static_cast<double>(r.numel())},
                               "GRPO batch reward std");
    const double var = s[2] > 1 ? std::max(0.0, (s[1] - s[0] * s[0] / s[2]) / (s[2] - 1)) : 0.0;
    adv.advantages = adv.advantages / (std::sqrt(var) + kAdvantageEps);
  }
  return adv;
}

// ---- 3. the training batch -----------------------------------------------------------------

GRPOTrainer::Batch GRPOTrainer::training_batch(const Groups& groups, const Advantages& adv) {
  Batch b;
  if (groups.empty()) return b;
  std::vector<std::vector<int64_t>> prompt_rows, completion_rows;
  for (size_t g = 0; g < groups.examples.size(); ++g) {
    for (const auto& c : groups.rollouts[g].completions) {
      prompt_rows.push_back(groups.examples[g].prompt_ids);
      completion_rows.push_back(c.token_ids);
      b.truncated.push_back(truncated(c));
      b.completion_tokens += static_cast<double>(c.token_ids.size());
    }
  }
  b.seq = pack_sequences(prompt_rows, completion_rows, pad_id_);
  b.rows = b.seq.input_ids.size(0);
  if (cfg_.mask_truncated_completions) {
    for (int64_t i = 0; i < b.rows; ++i)
      if (b.truncated[static_cast<size_t>(i)]) b.seq.completion_mask[i].zero_();
  }
  b.advantages = adv.advantages.to(torch::kFloat);
  b.prompt_tokens = static_cast<double>(b.seq.attention_mask.slice(1, 0, b.seq.prompt_length).sum().item<int64_t>());
  return b;
}

// ---- 4. old and reference log-probs (no grad) --------------------------------------------------

namespace {

// Temperature, lm_head chunking, bf16 and padding_free of every scoring pass.
TokenStatsOptions stats_options(const GRPOConfig& cfg) {
  TokenStatsOptions so;
  so.temperature = cfg.sampling.temperature;
  so.chunk_size = cfg.logprob_chunk_size;
  so.bf16 = cfg.bf16;
  so.padding_free = cfg.padding_free;
  return so;
}

}  // namespace

GRPOTrainer::OldLogprobs GRPOTrainer::old_and_ref_logprobs(const Batch& batch, bool dump_now) {
  OldLogprobs o;
  if (batch.rows == 0) return o;
  torch::NoGradGuard no_grad;
  policy_.model->eval();
  TokenStatsOptions so = stats_options(cfg_);
  if (cfg_.num_iterations > 1 || dump_now) {
    o.old_logps = completion_token_stats(*policy_.model, batch.seq, so).logprobs.cpu();
  }
  if (ref_) {
    o.ref_logps = completion_token_stats(*ref_, batch.seq, so).logprobs.cpu();
  } else if (cfg_.loss.beta != 0) {  // LoRA: the base is the adapted model with its adapters off
    model::LoraDisabled base(*policy_.model);
    o.ref_logps = completion_token_stats(*policy_.model, batch.seq, so).logprobs.cpu();
  }
  return o;
}

// ---- 5. μ update passes over micro-batches --------------------------------------------------

void GRPOTrainer::update(const Batch& batch, const OldLogprobs& old, dist::NamedReduction& sums, metrics::Scalars& m) {
  policy_.model->train();
  const int64_t N = batch.rows;
  const double mask_sum = N > 0 ? batch.seq.completion_mask.sum().item<double>() : 0.0;
  const double num_items = std::max(1.0, mask_sum);
  const int64_t ga = std::max<int64_t>(1, std::min<int64_t>(cfg_.gradient_accumulation_steps, N));
  const int64_t micro = std::max<int64_t>(1, (N + ga - 1) / ga);
  double global_normalizer = -1;
  if (world_) {
    // Global counts, so that the normalization depends on neither ranks nor micro-batches.
    const auto g = world_->all_reduce_sum({static_cast<double>(N), mask_sum, 0.0, 0.0}, "GRPO normalizers");
    global_normalizer = global_grpo_normalizer(cfg_.loss.loss_type, g[0], g[1], cfg_.loss.max_completion_length);
  }
  int64_t skipped = 0;
  for (int64_t it = 0; it < cfg_.num_iterations; ++it) {
    bool finite = true;
    double iter_loss = 0;
    for (int64_t b0 = 0; b0 < N; b0 += micro) {
      const int64_t b1 = std::min(N, b0 + micro);
      const auto mb = slice_rows(batch.seq, b0, b1);
      TokenStatsOptions so = stats_options(cfg_);
      so.activation_checkpointing = cfg_.gradient_checkpointing;
      const auto stats = completion_token_stats(*policy_.model, mb, so);
      const auto dev = stats.logprobs.device();
      GRPOLossInputs in;
      in.logps = stats.logprobs;
      if (old.old_logps.defined()) in.old_logps = old.old_logps.slice(0, b0, b1).to(dev);
      if (old.ref_logps.defined()) in.ref_logps = old.ref_logps.slice(0, b0, b1).to(dev);
      in.advantages = batch.advantages.slice(0, b0, b1).to(dev);
      in.mask = mb.completion_mask.to(dev);
      in.num_items_in_batch = num_items;
      in.gradient_accumulation_steps = ga;
      in.global_normalizer = global_normalizer;
      const auto out = grpo_loss(in, cfg_.loss);
      const double l = out.loss.item<double>();
      finite = finite && std::isfinite(l);
      if (b1 == N) optimizer_->expect_final_backward();  // DP: all-reduce overlaps this backward
      if (std::isfinite(l)) out.loss.backward();
      iter_loss += l;
      if (it == 0) {  // token-weighted statistics of the first pass
        const double toks = in.mask.sum().item<double>();
        sums.add("kl", out.kl * toks);
        sums.add("clip_ratio/low_mean", out.clip_ratio_low_mean * toks);
        sums.add("clip_ratio/high_mean", out.clip_ratio_high_mean * toks);
        sums.add("clip_ratio/region_mean", out.clip_ratio_region_mean * toks);
        sums.add("entropy", (stats.entropy.detach() * in.mask).sum().item<double>());
        sums.add("self_certainty", (stats.self_certainty.detach() * in.mask).sum().item<double>());
        sums.add("loss_tokens", toks);
      }
    }
    const StepReport rep = optimizer_->step(finite);  // a rank without rows still joins the all-reduce
    skipped += rep.skipped;
    if (it == 0) {
      sums.add("loss", iter_loss);
      m["grad_norm"] = rep.grad_norm;
      m["learning_rate"] = rep.learning_rate;
    }
  }
  m["skipped_steps"] = static_cast<double>(skipped);
}

// ---- 6. metrics -------------------------------------------------------------------------------

// Every sum and maximum the step reports, declared from the configuration (the reward
// pipeline), so that every rank reduces the same entries on every path.
dist::NamedReduction GRPOTrainer::declare_step_sums() const {
  dist::NamedReduction s;
  for (const char* k :
       {"loss", "kl", "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "entropy",
        "self_certainty", "loss_tokens", "reward_sum", "reward_count", "group_std_sum", "groups", "zero_std_groups",
        "num_unscorable", "dropped_groups", "completion_tokens", "completions", "clipped_completions", "step_tokens"})
    s.declare(k);
  if (cfg_.diagnostics_extractor)
    for (const auto& k : LabelFreeSums::names()) s.declare("label_free/" + k);
  s.declare("completions/max_length", dist::NamedReduction::Op::kMax);
  s.declare("completions/min_length_negated", dist::NamedReduction::Op::kMax);
  for (size_t f = 0; f < rewards_.size(); ++f)
    for (const char* w : {"sum", "sum_sq", "count"}) s.declare(func_key(f, w));
  const auto names = rewards_.names();
  for (const auto& name : std::set<std::string>(names.begin(), names.end())) s.declare("unscorable/" + name);
  for (const auto& k : rewards_.metric_names()) {
    if (s.contains("reward_metric/" + k + "/sum")) continue;
    s.declare("reward_metric/" + k + "/sum");
    s.declare("reward_metric/" + k + "/groups");
  }
  return s;
}

void GRPOTrainer::add_group_sums(const Groups& groups, const Batch& batch, const Advantages& adv,
                                 dist::NamedReduction& s) {
  const int64_t G = cfg_.num_generations();
  s.add("dropped_groups", static_cast<double>(groups.dropped));
  for (const auto& [name, n] : groups.failures) s.add("unscorable/" + name, static_cast<double>(n));
  for (const auto& [k, v] : groups.metric_sums) {
    s.add("reward_metric/" + k + "/sum", v.first);
    s.add("reward_metric/" + k + "/groups", v.second);
  }
  if (groups.empty()) return;
  const auto rw = adv.rewards.masked_select(adv.rewards.isfinite());
  const auto gstd = adv.group_std.view({-1, G}).select(1, 0);
  const double n_groups = static_cast<double>(gstd.numel());
  s.add("reward_sum", rw.sum().item<double>());
  s.add("reward_count", static_cast<double>(rw.numel()));
  s.add("group_std_sum", gstd.sum().item<double>());
  s.add("groups", n_groups);
  s.add("zero_std_groups", adv.frac_reward_zero_std * n_groups);
  s.add("num_unscorable", static_cast<double>(adv.num_unscorable));
  for (size_t f = 0; f < rewards_.size(); ++f) {
    const auto col = groups.rewards_per_func.select(1, static_cast<int64_t>(f)).to(torch::kDouble);
    const auto ok = col.masked_select(col.isfinite());
    s.add(func_key(f, "sum"), ok.sum().item<double>());
    s.add(func_key(f, "sum_sq"), ok.pow(2).sum().item<double>());
    s.add(func_key(f, "count"), static_cast<double>(ok.numel()));
  }
  for (const auto& rollout : groups.rollouts) {
    for (const auto& c : rollout.completions) {
      const double len = static_cast<double>(c.token_ids.size());
      s.add("completions", 1.0);
      s.add("completion_tokens", len);
      s.add("clipped_completions", truncated(c) ? 1.0 : 0.0);
      s.raise("completions/max_length", len);
      s.raise("completions/min_length_negated", -len);
    }
  }
  s.add("step_tokens", batch.completion_tokens + batch.prompt_tokens);
  if (cfg_.diagnostics_extractor) {
    LabelFreeSums lf;
    for (size_t g = 0; g < groups.rollouts.size(); ++g) {
      GroupAnswers ga;
      for (const auto& c : groups.rollouts[g].completions) {
        ga.answers.push_back(cfg_.diagnostics_extractor->extract(policy_.decode(c.token_ids)));
        ga.certainty.push_back(rewards::mean_self_certainty(c.self_certainty));
      }
      if (g < groups.greedy_answers.size()) ga.has_greedy = true, ga.greedy_answer = groups.greedy_answers[g];
      lf.add(ga);
    }
    lf.anchors = groups.anchors_checked;
    lf.anchor_agree = groups.anchors_agreed;
    const auto v = lf.values();
    for (size_t i = 0; i < v.size(); ++i) s.add("label_free/" + LabelFreeSums::names()[i], v[i]);
  }
}

metrics::Scalars GRPOTrainer::report(dist::NamedReduction& s, metrics::Scalars m, const Timings& t) {
  s.reduce(world_.get(), "GRPO metrics");
  const double tok = std::max(1.0, s["loss_tokens"]);
  const double groups = std::max(1.0, s["groups"]), completions = std::max(1.0, s["completions"]);
  m["loss"] = s["loss"];
  m["kl"] = s["kl"] / tok;
  m["clip_ratio/low_mean"] = s["clip_ratio/low_mean"] / tok;
  m["clip_ratio/high_mean"] = s["clip_ratio/high_mean"] / tok;
  m["clip_ratio/region_mean"] = s["clip_ratio/region_mean"] / tok;
  m["entropy"] = s["entropy"] / tok;
  m["self_certainty"] = s["self_certainty"] / tok;
  m["reward"] = s["reward_count"] > 0 ? s["reward_sum"] / s["reward_count"] : std::nan("");
  m["reward_std"] = s["group_std_sum"] / groups;
  m["frac_reward_zero_std"] = s["zero_std_groups"] / groups;
  m["num_unscorable"] = s["num_unscorable"];
  m["dropped_groups"] = s["dropped_groups"];
  const auto names = rewards_.names();
  for (size_t f = 0; f < names.size(); ++f) {
    const double sum = s[func_key(f, "sum")], sq = s[func_key(f, "sum_sq")], n = s[func_key(f, "count")];
    m["rewards/" + names[f] + "/mean"] = n > 0 ? sum / n : std::nan("");
    m["rewards/" + names[f] + "/std"] = n > 1 ? std::sqrt(std::max(0.0, (sq - sum * sum / n) / (n - 1))) : 0.0;
  }
  m["completions/mean_length"] = s["completion_tokens"] / completions;
  m["completions/min_length"] = -s["completions/min_length_negated"];
  m["completions/max_length"] = s["completions/max_length"];
  m["completions/clipped_ratio"] = s["clipped_completions"] / completions;
  num_tokens_ += s["step_tokens"];
  m["num_tokens"] = num_tokens_;
  m["tokens_per_second"] = s["completion_tokens"] / std::max(1e-9, t.generation);
  m["time/generation"] = t.generation;
  m["time/scoring"] = t.scoring;
  m["time/logprobs"] = t.logprobs;
  m["time/update"] = t.update;
  m["time/step"] = seconds_since(t.start);
  add_memory_metrics(m, policy_.model->device());
  // Per reward: samples it could not score (every round of the step), and its own diagnostics
  // (e.g. rewards/judge/parse_rate) averaged over the scored groups.
  for (const auto& name : names) m["rewards/" + name + "/unscorable"] = s["unscorable/" + name];
  if (cfg_.diagnostics_extractor) {
    std::vector<double> v;
    for (const auto& k : LabelFreeSums::names()) v.push_back(s["label_free/" + k]);
    for (const auto& [k, x] : LabelFreeSums::from_values(v).scalars()) m[k] = x;
  }
  for (const auto& k : rewards_.metric_names()) {
    const double n = s["reward_metric/" + k + "/groups"];
    m["rewards/" + k] = n > 0 ? s["reward_metric/" + k + "/sum"] / n : std::nan("");
  }
  return m;
}

// ---- the rollout dump: every completion with what its loss term used -------------------------

void GRPOTrainer::dump_rollouts(const Groups& groups, const Batch& batch, const Advantages& adv,
                                const OldLogprobs& old) const {
  const auto dir = cfg_.rollouts_dir.empty() ? std::filesystem::path(cfg_.output_dir) / "rollouts"
                                             : std::filesystem::path(cfg_.rollouts_dir);
  std::filesystem::create_directories(dir);
  char name[64];
  std::snprintf(name, sizeof name, "step-%06lld.jsonl", static_cast<long long>(step_));
  io::JsonlWriter w((dir / name).string());
  const auto names = rewards_.names();
  int64_t row = 0;
  for (size_t p = 0; p < groups.examples.size(); ++p) {
    for (const auto& c : groups.rollouts[p].completions) {
      const int64_t n = static_cast<int64_t>(c.token_ids.size());
      nlohmann::json j;
      j["step"] = step_;
      j["prompt_index"] = p;
      j["sample_index"] = c.sample_index;
      j["prompt"] = groups.examples[p].prompt_text;
      j["prompt_ids"] = groups.examples[p].prompt_ids;
      j["completion"] = policy_.decode(c.token_ids);
      j["completion_ids"] = c.token_ids;
      j["finish_reason"] = generation::to_string(c.finish_reason);
      j["mask"] = row_vector(batch.seq.completion_mask, row, n);
      j["logprobs"] = row_vector(old.old_logps, row, n);
      if (old.ref_logps.defined()) j["ref_logprobs"] = row_vector(old.ref_logps, row, n);
      nlohmann::json per;
      for (size_t f = 0; f < names.size(); ++f) {
        const double v = groups.rewards_per_func[row][static_cast<int64_t>(f)].item<double>();
        per[names[f]] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
      }
      j["rewards"] = per;
      const double r = adv.rewards[row].item<double>();
      j["reward"] = std::isfinite(r) ? nlohmann::json(r) : nlohmann::json(nullptr);
      j["advantage"] = adv.advantages[row].item<double>();
      j["group_info"] = groups.info[p];
      w.write(j);
      ++row;
    }
  }
  w.close();
}

}  // namespace selfrl::trainers
