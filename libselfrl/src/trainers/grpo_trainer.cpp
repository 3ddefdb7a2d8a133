// GRPOTrainer (see selfrl/trainers/grpo_trainer.h). step() reads top to bottom:
// rollouts → rewards → advantages → update passes → metrics and dump.
#include "selfrl/trainers/grpo_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "selfrl/core/error.h"
#include "selfrl/core/logging.h"
#include "selfrl/core/seed.h"
#include "selfrl/dist/world.h"
#include "selfrl/io/jsonl.h"
#include "selfrl/trainers/sequence_batch.h"

namespace selfrl::trainers {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string ids_text(const std::vector<int64_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s;
}

// Entries of the per-step metric reduction before the 3 per reward function (sum, sum of
// squares, count), then 1 per reward function (unscorable samples) and 2 per reward metric
// (sum, groups).
constexpr size_t kNumReduced = 20;

std::vector<float> row_vector(const torch::Tensor& t, int64_t row, int64_t n) {
  const auto r = t[row].slice(0, 0, n).to(torch::kFloat).contiguous();
  return std::vector<float>(r.data_ptr<float>(), r.data_ptr<float>() + n);
}

// nan-aware mean and Bessel std of a column.
std::pair<double, double> nan_stats(const torch::Tensor& col) {
  const auto v = col.masked_select(col.isfinite());
  if (v.numel() == 0) return {std::nan(""), std::nan("")};
  const double mean = v.mean().item<double>();
  const double std = v.numel() > 1 ? v.std().item<double>() : 0.0;
  return {mean, std};
}

}  // namespace

GRPOTrainer::GRPOTrainer(std::shared_ptr<model::CausalLM> policy, rewards::RewardPipeline rewards, GRPOConfig config,
                         Decoder decode, std::vector<int64_t> eos_token_ids, std::shared_ptr<dist::World> world)
    : policy_(std::move(policy)),
      rewards_(std::move(rewards)),
      cfg_(std::move(config)),
      decode_(std::move(decode)),
      world_(std::move(world)) {
  SELFRL_CHECK(policy_ != nullptr, "GRPOTrainer: no policy model");
  if (world_ && !world_->distributed()) world_.reset();
  if (world_) dist::broadcast_module(*world_, *policy_);  // before the reference copy
  SELFRL_CHECK(cfg_.num_generations >= 2, "num_generations must be >= 2 for group-relative advantages, got ",
               cfg_.num_generations);
  SELFRL_CHECK(cfg_.num_iterations >= 1, "num_iterations must be >= 1");
  SELFRL_CHECK(cfg_.gradient_accumulation_steps >= 1, "gradient_accumulation_steps must be >= 1");
  SELFRL_CHECK(rewards_.size() > 0, "GRPOTrainer: the reward pipeline is empty");
  if (!decode_) decode_ = ids_text;
  if (cfg_.loss.beta != 0) ref_ = clone_model(*policy_);  // TRL loads no reference when beta == 0
  generation::RolloutEngineOptions eo;
  eo.max_batch_size = std::max(cfg_.generation_batch_size, cfg_.num_generations);
  eo.eos_token_ids = eos_token_ids.empty() ? policy_->config().eos_token_ids : eos_token_ids;
  engine_ = std::make_unique<generation::RolloutEngine>(policy_, eo);
  std::vector<torch::Tensor> params;
  for (auto& p : policy_->parameters())
    if (p.requires_grad()) params.push_back(p);
  optimizer_ = std::make_unique<TrainingOptimizer>(params, cfg_.optimizer, world_);
  if (!cfg_.output_dir.empty() && (!world_ || world_->is_main())) logger_ = std::make_unique<metrics::MetricsLogger>(cfg_.output_dir);
  pad_id_ = policy_->config().pad_token_id.value_or(eo.eos_token_ids.empty() ? 0 : eo.eos_token_ids[0]);
}

GRPOStepResult GRPOTrainer::step(const std::vector<PromptExample>& prompts,
                                 const std::function<std::vector<PromptExample>(int64_t)>& more_prompts) {
  SELFRL_CHECK(!prompts.empty(), "GRPOTrainer::step: no prompts");
  if (world_) world_->set_step(step_);
  const int64_t G = cfg_.num_generations;
  const auto t_start = Clock::now();
  metrics::Scalars m;

  // ---- 1. rollouts: G completions per prompt ---------------------------------------------
  generation::SamplingParams sp;
  sp.num_samples = G;
  sp.max_new_tokens = cfg_.max_completion_length;
  sp.temperature = cfg_.temperature;
  sp.top_p = cfg_.top_p;
  sp.top_k = cfg_.top_k;
  sp.min_p = cfg_.min_p;
  sp.stop_token_ids = cfg_.stop_token_ids;
  double gen_seconds = 0, score_seconds = 0;
  int64_t round = 0;
  // Request r of the first round samples with derive_seed(derive_seed(seed, {step, 0}), {r})
  // where r is the prompt's index in the *global* batch (this rank's offset + i): the same
  // completions whatever the number of ranks, and one process keeps today's seeds. Refill
  // rounds of dynamic sampling (their count differs between ranks) mix in the rank instead.
  uint64_t prompt_offset = 0;
  if (world_) {
    const auto counts = world_->all_gather(torch::tensor({static_cast<double>(prompts.size())}, torch::kDouble),
                                           "GRPO prompt offsets");
    for (int r = 0; r < world_->rank(); ++r) prompt_offset += static_cast<uint64_t>(counts[r].item<double>());
  }
  auto generate = [&](const std::vector<PromptExample>& batch) {
    const auto t0 = Clock::now();
    std::vector<std::vector<int64_t>> ids;
    for (const auto& p : batch) ids.push_back(p.prompt_ids);
    const bool first_round = round == 0;
    sp.seed = world_ && !first_round
                  ? derive_seed(cfg_.seed, {static_cast<uint64_t>(step_), static_cast<uint64_t>(round),
                                            static_cast<uint64_t>(world_->rank())})
                  : derive_seed(cfg_.seed, {static_cast<uint64_t>(step_), static_cast<uint64_t>(round)});
    ++round;
    std::vector<uint64_t> request_seeds;
    if (world_ && first_round) {
      for (size_t i = 0; i < batch.size(); ++i) request_seeds.push_back(derive_seed(sp.seed, {prompt_offset + i}));
    }
    policy_->eval();
    auto out = engine_->generate(ids, sp, request_seeds);
    gen_seconds += seconds_since(t0);
    return out;
  };

  // ---- 2. rewards: every reward sees whole groups ------------------------------------------
  struct Kept {
    PromptExample example;
    generation::Rollout rollout;
    nlohmann::json info;
  };
  std::vector<Kept> kept;
  std::vector<torch::Tensor> reward_rows;
  std::map<std::string, int64_t> failures;
  for (const auto& name : rewards_.names()) failures[name] = 0;
  const auto metric_names = rewards_.metric_names();
  std::map<std::string, std::pair<double, double>> metric_sums;  // over every scored group
  for (const auto& k : metric_names) metric_sums[k] = {0.0, 0.0};
  int64_t dropped_groups = 0;
  std::vector<PromptExample> todo = prompts;
  const size_t target = prompts.size();
  while (!todo.empty()) {
    auto rollouts = generate(todo);
    const auto t0 = Clock::now();
    std::vector<rewards::Group> groups;
    for (size_t i = 0; i < todo.size(); ++i) {
      rewards::Group g;
      g.prompt = todo[i].prompt_text;
      g.example = todo[i].row;
      g.step = step_ + 1;
      for (const auto& c : rollouts[i].completions) {
        rewards::Sample s;
        s.completion = decode_(c.token_ids);
        s.completion_ids = c.token_ids;
        s.token_self_certainty = c.self_certainty;
        s.truncated = c.finish_reason == "length";
        g.samples.push_back(std::move(s));
      }
      groups.push_back(std::move(g));
    }
    auto scored = rewards_.score(groups);
    for (const auto& [k, v] : scored.failures) failures[k] += v;
    for (const auto& [k, v] : scored.metric_sums) metric_sums[k].first += v.first, metric_sums[k].second += v.second;
    score_seconds += seconds_since(t0);
    const bool dynamic = cfg_.max_resample_rounds > 0 && more_prompts;
    torch::Tensor zero_std;
    if (dynamic) {
      zero_std = compute_advantages(scored.rewards_per_func, rewards_.weights(), G, cfg_.scale_rewards).zero_std_groups;
    }
    for (size_t i = 0; i < todo.size() && kept.size() < target; ++i) {
      if (dynamic && zero_std[static_cast<int64_t>(i)].item<bool>()) {
        ++dropped_groups;
        continue;
      }
      kept.push_back({todo[i], rollouts[i], scored.group_info[i]});
      reward_rows.push_back(scored.rewards_per_func.slice(0, static_cast<int64_t>(i) * G, (static_cast<int64_t>(i) + 1) * G));
    }
    todo.clear();
    if (dynamic && kept.size() < target && round <= cfg_.max_resample_rounds) {
      todo = more_prompts(static_cast<int64_t>(target - kept.size()));
    }
  }
  if (world_) {
    // Every rank must take the same path through the collectives below.
    const double global_kept = world_->all_reduce_sum(static_cast<double>(kept.size()), "GRPO kept groups");
    if (global_kept > 0 && kept.empty()) {
      // This rank's groups were all dropped: it still joins the normalizer, the gradient
      // all-reduce (with zero gradients) and the metrics of the others.
      if (cfg_.scale_rewards == ScaleRewards::kBatch) world_->all_reduce_sum({0.0, 0.0, 0.0}, "GRPO batch reward std");
      world_->all_reduce_sum(std::vector<double>(4, 0.0), "GRPO normalizers");
      for (int64_t it = 0; it < cfg_.num_iterations; ++it) optimizer_->step(true);
      world_->all_reduce_sum(std::vector<double>(kNumReduced + 4 * rewards_.size() + 2 * metric_names.size(), 0.0),
                             "GRPO metrics");
      world_->all_gather(torch::tensor({-1e300, -1e300}, torch::kDouble), "GRPO length extrema");
      ++step_;
      m["dropped_groups"] = static_cast<double>(dropped_groups);
      return {m, step_};
    }
    if (global_kept == 0) kept.clear();
  }
  if (kept.empty()) {
    // Every group had zero reward variance even after resampling: nothing to learn from.
    SELFRL_WARN("step " << step_ << ": every group was dropped by dynamic sampling; no update");
    ++step_;
    m["frac_reward_zero_std"] = 1.0;
    m["dropped_groups"] = static_cast<double>(dropped_groups);
    return {m, step_};
  }
  const auto t_scored = Clock::now();
  const auto rewards_per_func = torch::cat(reward_rows, 0);
  const bool global_batch_std = world_ && cfg_.scale_rewards == ScaleRewards::kBatch;
  Advantages adv = compute_advantages(rewards_per_func, rewards_.weights(), G,
                                      global_batch_std ? ScaleRewards::kNone : cfg_.scale_rewards);
  if (global_batch_std) {
    // scale_rewards: batch divides by the std of every reward of the global batch (Bessel).
    const auto r = adv.rewards.masked_select(adv.rewards.isfinite());
    const auto s = world_->all_reduce_sum({r.sum().item<double>(), r.pow(2).sum().item<double>(),
                                           static_cast<double>(r.numel())},
                                          "GRPO batch reward std");
    const double var = s[2] > 1 ? std::max(0.0, (s[1] - s[0] * s[0] / s[2]) / (s[2] - 1)) : 0.0;
    adv.advantages = adv.advantages / (std::sqrt(var) + kAdvantageEps);
  }

  // ---- 3. the training batch: one row per completion ---------------------------------------
  std::vector<std::vector<int64_t>> prompt_rows, completion_rows;
  std::vector<bool> truncated;
  for (const auto& k : kept) {
    for (const auto& c : k.rollout.completions) {
      prompt_rows.push_back(k.example.prompt_ids);
      completion_rows.push_back(c.token_ids);
      truncated.push_back(c.finish_reason == "length");
    }
  }
  SequenceBatch batch = pack_sequences(prompt_rows, completion_rows, pad_id_);
  const int64_t N = batch.input_ids.size(0);
  if (cfg_.mask_truncated_completions) {
    for (int64_t i = 0; i < N; ++i)
      if (truncated[static_cast<size_t>(i)]) batch.completion_mask[i].zero_();
  }
  const auto advantages = adv.advantages.to(torch::kFloat);
  const auto mask = batch.completion_mask;
  const double num_items = std::max(1.0, mask.sum().item<double>());

  // ---- 4. old and reference log-probs (no grad) ----------------------------------------------
  const bool dump_now = (!cfg_.output_dir.empty() || !cfg_.rollouts_dir.empty()) && (!world_ || world_->is_main()) && cfg_.dump_rollouts_every > 0 && step_ % cfg_.dump_rollouts_every == 0;
  torch::Tensor old_logps, ref_logps;
  {
    torch::NoGradGuard no_grad;
    policy_->eval();
    if (cfg_.num_iterations > 1 || dump_now) {
      old_logps = completion_token_stats(*policy_, batch, cfg_.temperature, false, cfg_.logprob_chunk_size, cfg_.bf16).logprobs.cpu();
    }
    if (ref_) ref_logps = completion_token_stats(*ref_, batch, cfg_.temperature, false, cfg_.logprob_chunk_size, cfg_.bf16).logprobs.cpu();
  }

  // ---- 5. μ update passes over micro-batches -------------------------------------------------
  const auto t_update = Clock::now();
  policy_->train();
  const int64_t ga = std::min<int64_t>(cfg_.gradient_accumulation_steps, N);
  const int64_t micro = (N + ga - 1) / ga;
  double global_normalizer = -1;
  if (world_) {
    // Global counts, so that the normalization depends on neither ranks nor micro-batches.
    const auto g = world_->all_reduce_sum({static_cast<double>(N), mask.sum().item<double>(), 0.0, 0.0},
                                          "GRPO normalizers");
    global_normalizer = global_grpo_normalizer(cfg_.loss.loss_type, g[0], g[1], cfg_.loss.max_completion_length);
  }
  double loss_sum = 0, kl_sum = 0, low_sum = 0, high_sum = 0, region_sum = 0, ent_sum = 0, sc_sum = 0, tok_sum = 0;
  double grad_norm = 0, lr = 0;
  int64_t skipped = 0;
  for (int64_t it = 0; it < cfg_.num_iterations; ++it) {
    bool finite = true;
    double iter_loss = 0;
    for (int64_t b0 = 0; b0 < N; b0 += micro) {
      const int64_t b1 = std::min(N, b0 + micro);
      const auto mb = slice_rows(batch, b0, b1);
      const auto stats =
          completion_token_stats(*policy_, mb, cfg_.temperature, cfg_.gradient_checkpointing, cfg_.logprob_chunk_size, cfg_.bf16);
      const auto dev = stats.logprobs.device();
      GRPOLossInputs in;
      in.logps = stats.logprobs;
      if (old_logps.defined()) in.old_logps = old_logps.slice(0, b0, b1).to(dev);
      if (ref_logps.defined()) in.ref_logps = ref_logps.slice(0, b0, b1).to(dev);
      in.advantages = advantages.slice(0, b0, b1).to(dev);
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
      const double toks = in.mask.sum().item<double>();
      if (it == 0) {
        kl_sum += out.kl * toks;
        low_sum += out.clip_ratio_low_mean * toks;
        high_sum += out.clip_ratio_high_mean * toks;
        region_sum += out.clip_ratio_region_mean * toks;
        ent_sum += (stats.entropy.detach() * in.mask).sum().item<double>();
        sc_sum += (stats.self_certainty.detach() * in.mask).sum().item<double>();
        tok_sum += toks;
      }
    }
    const StepReport rep = optimizer_->step(finite);
    skipped += rep.skipped;
    if (it == 0) {
      loss_sum = iter_loss;
      grad_norm = rep.grad_norm;
      lr = rep.learning_rate;
    }
  }
  const double update_seconds = seconds_since(t_update);

  // ---- 6. metrics (TRL's names) and the rollout dump --------------------------------------
  const double tok = std::max(1.0, tok_sum);
  m["loss"] = loss_sum;
  m["grad_norm"] = grad_norm;
  m["learning_rate"] = lr;
  m["kl"] = kl_sum / tok;
  m["clip_ratio/low_mean"] = low_sum / tok;
  m["clip_ratio/high_mean"] = high_sum / tok;
  m["clip_ratio/region_mean"] = region_sum / tok;
  m["entropy"] = ent_sum / tok;
  m["self_certainty"] = sc_sum / tok;
  m["reward"] = nan_stats(adv.rewards).first;
  m["reward_std"] = adv.group_std.view({-1, G}).select(1, 0).mean().item<double>();
  m["frac_reward_zero_std"] = adv.frac_reward_zero_std;
  m["num_unscorable"] = static_cast<double>(adv.num_unscorable);
  m["dropped_groups"] = static_cast<double>(dropped_groups);
  m["skipped_steps"] = static_cast<double>(skipped);
  const auto names = rewards_.names();
  for (size_t f = 0; f < names.size(); ++f) {
    const auto [mean, std] = nan_stats(rewards_per_func.select(1, static_cast<int64_t>(f)));
    m["rewards/" + names[f] + "/mean"] = mean;
    m["rewards/" + names[f] + "/std"] = std;
  }
  std::vector<double> lengths;
  int64_t clipped = 0;
  for (size_t i = 0; i < completion_rows.size(); ++i) {
    lengths.push_back(static_cast<double>(completion_rows[i].size()));
    clipped += truncated[i];
  }
  m["completions/mean_length"] = std::accumulate(lengths.begin(), lengths.end(), 0.0) / lengths.size();
  m["completions/min_length"] = *std::min_element(lengths.begin(), lengths.end());
  m["completions/max_length"] = *std::max_element(lengths.begin(), lengths.end());
  m["completions/clipped_ratio"] = static_cast<double>(clipped) / lengths.size();
  const double gen_tokens = std::accumulate(lengths.begin(), lengths.end(), 0.0);
  num_tokens_ += gen_tokens + static_cast<double>(batch.attention_mask.slice(1, 0, batch.prompt_length).sum().item<int64_t>());
  if (world_) {
    // Sums over ranks; means are re-formed from global sums and counts.
    const auto rw = adv.rewards.masked_select(adv.rewards.isfinite());
    const auto gstd = adv.group_std.view({-1, G}).select(1, 0);
    const double groups = static_cast<double>(gstd.numel());
    const double step_tokens =
        gen_tokens + static_cast<double>(batch.attention_mask.slice(1, 0, batch.prompt_length).sum().item<int64_t>());
    std::vector<double> v{loss_sum, kl_sum, low_sum, high_sum, region_sum, ent_sum, sc_sum, tok_sum,
                          rw.sum().item<double>(), static_cast<double>(rw.numel()), gstd.sum().item<double>(), groups,
                          adv.frac_reward_zero_std * groups, static_cast<double>(adv.num_unscorable),
                          static_cast<double>(dropped_groups), gen_tokens, static_cast<double>(lengths.size()),
                          static_cast<double>(clipped), step_tokens, gen_tokens};
    for (size_t f = 0; f < names.size(); ++f) {
      const auto col = rewards_per_func.select(1, static_cast<int64_t>(f)).to(torch::kDouble);
      const auto ok = col.masked_select(col.isfinite());
      v.push_back(ok.sum().item<double>());
      v.push_back(ok.pow(2).sum().item<double>());
      v.push_back(static_cast<double>(ok.numel()));
    }
    for (const auto& name : names) v.push_back(static_cast<double>(failures[name]));
    for (const auto& k : metric_names) v.push_back(metric_sums[k].first), v.push_back(metric_sums[k].second);
    const auto g = world_->all_reduce_sum(v, "GRPO metrics");
    const auto ext = world_->all_gather(
        torch::tensor({-m["completions/min_length"], m["completions/max_length"]}, torch::kDouble), "GRPO length extrema");
    const double gt = std::max(1.0, g[7]);
    m["loss"] = g[0];
    m["kl"] = g[1] / gt;
    m["clip_ratio/low_mean"] = g[2] / gt;
    m["clip_ratio/high_mean"] = g[3] / gt;
    m["clip_ratio/region_mean"] = g[4] / gt;
    m["entropy"] = g[5] / gt;
    m["self_certainty"] = g[6] / gt;
    m["reward"] = g[9] > 0 ? g[8] / g[9] : std::nan("");
    m["reward_std"] = g[10] / std::max(1.0, g[11]);
    m["frac_reward_zero_std"] = g[12] / std::max(1.0, g[11]);
    m["num_unscorable"] = g[13];
    m["dropped_groups"] = g[14];
    m["completions/mean_length"] = g[15] / std::max(1.0, g[16]);
    m["completions/clipped_ratio"] = g[17] / std::max(1.0, g[16]);
    m["completions/min_length"] = -ext.view({-1, 2}).select(1, 0).max().item<double>();
    m["completions/max_length"] = ext.view({-1, 2}).select(1, 1).max().item<double>();
    num_tokens_ += g[18] - step_tokens;
    m["tokens_per_second"] = g[19] / std::max(1e-9, gen_seconds);
    for (size_t f = 0; f < names.size(); ++f) {
      const double sum = g[kNumReduced + 3 * f], sq = g[kNumReduced + 3 * f + 1], n = g[kNumReduced + 3 * f + 2];
      m["rewards/" + names[f] + "/mean"] = n > 0 ? sum / n : std::nan("");
      m["rewards/" + names[f] + "/std"] = n > 1 ? std::sqrt(std::max(0.0, (sq - sum * sum / n) / (n - 1))) : 0.0;
    }
    const size_t fail_at = kNumReduced + 3 * names.size(), metric_at = fail_at + names.size();
    for (size_t f = 0; f < names.size(); ++f) failures[names[f]] = static_cast<int64_t>(g[fail_at + f]);
    for (size_t i = 0; i < metric_names.size(); ++i) metric_sums[metric_names[i]] = {g[metric_at + 2 * i], g[metric_at + 2 * i + 1]};
  }
  m["num_tokens"] = num_tokens_;
  m["time/generation"] = gen_seconds;
  m["time/scoring"] = score_seconds;
  m["time/logprobs"] = std::chrono::duration<double>(t_update - t_scored).count();
  m["time/update"] = update_seconds;
  m["time/step"] = seconds_since(t_start);
  if (!world_) m["tokens_per_second"] = gen_tokens / std::max(1e-9, gen_seconds);
  // Per reward: samples it could not score (every round of the step), and its own diagnostics
  // (e.g. rewards/judge/parse_rate) averaged over the scored groups.
  for (const auto& [k, v] : failures) m["rewards/" + k + "/unscorable"] = static_cast<double>(v);
  for (const auto& [k, v] : metric_sums) m["rewards/" + k] = v.second > 0 ? v.first / v.second : std::nan("");

  if (dump_now) {
    const auto dir = cfg_.rollouts_dir.empty() ? std::filesystem::path(cfg_.output_dir) / "rollouts"
                                               : std::filesystem::path(cfg_.rollouts_dir);
    std::filesystem::create_directories(dir);
    char name[64];
    std::snprintf(name, sizeof name, "step-%06lld.jsonl", static_cast<long long>(step_));
    io::JsonlWriter w((dir / name).string());
    int64_t row = 0;
    for (size_t p = 0; p < kept.size(); ++p) {
      for (const auto& c : kept[p].rollout.completions) {
        const int64_t n = static_cast<int64_t>(c.token_ids.size());
        nlohmann::json j;
        j["step"] = step_;
        j["prompt_index"] = p;
        j["sample_index"] = c.sample_index;
        j["prompt"] = kept[p].example.prompt_text;
        j["prompt_ids"] = kept[p].example.prompt_ids;
        j["completion"] = decode_(c.token_ids);
        j["completion_ids"] = c.token_ids;
        j["finish_reason"] = c.finish_reason;
        j["mask"] = row_vector(batch.completion_mask, row, n);
        j["logprobs"] = row_vector(old_logps, row, n);
        if (ref_logps.defined()) j["ref_logprobs"] = row_vector(ref_logps, row, n);
        nlohmann::json per;
        for (size_t f = 0; f < names.size(); ++f) {
          const double v = rewards_per_func[row][static_cast<int64_t>(f)].item<double>();
          per[names[f]] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
        }
        j["rewards"] = per;
        const double r = adv.rewards[row].item<double>();
        j["reward"] = std::isfinite(r) ? nlohmann::json(r) : nlohmann::json(nullptr);
        j["advantage"] = adv.advantages[row].item<double>();
        j["group_info"] = kept[p].info;
        w.write(j);
        ++row;
      }
    }
    w.close();
  }
  if (logger_) logger_->log(step_, m);
  ++step_;
  return {m, step_};
}

}  // namespace selfrl::trainers
