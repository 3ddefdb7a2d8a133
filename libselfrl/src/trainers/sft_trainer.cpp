// SFTTrainer (see selfrl/trainers/sft_trainer.h).
#include "selfrl/trainers/sft_trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "selfrl/core/error.h"
#include "selfrl/trainers/trainer_setup.h"
#include "selfrl/core/memory.h"
#include "selfrl/core/seed.h"
#include "selfrl/dist/world.h"
#include "selfrl/trainers/preference_loss.h"
#include "selfrl/trainers/sequence_batch.h"

namespace selfrl::trainers {

SFTTrainer::SFTTrainer(std::shared_ptr<model::CausalLM> policy, SFTConfig config, std::shared_ptr<dist::World> world)
    : policy_(std::move(policy)), cfg_(std::move(config)), world_(std::move(world)) {
  SELFRL_CHECK(policy_ != nullptr, "SFTTrainer: no model");
  world_ = join_world(world_, *policy_);
  SELFRL_CHECK(cfg_.per_device_train_batch_size >= 1 && cfg_.gradient_accumulation_steps >= 1,
               "SFTTrainer: batch size and gradient_accumulation_steps must be >= 1");
  optimizer_ = make_optimizer(*policy_, cfg_.optimizer, world_);
  logger_ = make_logger(cfg_.output_dir, world_.get());
  pad_id_ = pad_id_of(*policy_, {});
}

int64_t SFTTrainer::steps_for(size_t n, const SFTConfig& cfg, int world_size) {
  const int64_t per_step = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps * std::max(1, world_size);
  return cfg.num_train_epochs * ((static_cast<int64_t>(n) + per_step - 1) / per_step);
}

metrics::Scalars SFTTrainer::step(const std::vector<SFTExample>& examples) {
  SELFRL_CHECK(!examples.empty() || world_, "SFTTrainer::step: empty batch");
  if (world_) world_->set_step(step_);
  std::vector<std::vector<int64_t>> prompts, completions;
  for (const auto& e : examples) {
    SELFRL_CHECK(!e.completion_ids.empty(), "SFTTrainer: an example has an empty completion");
    prompts.push_back(e.prompt_ids);
    completions.push_back(e.completion_ids);
  }
  SequenceBatch batch;
  if (!examples.empty()) batch = pack_sequences(prompts, completions, pad_id_);
  const double local_items = examples.empty() ? 0.0 : batch.completion_mask.sum().item<double>();
  // The normalizer is the global batch's token count, whatever the split over ranks.
  const double num_items = world_ ? world_->all_reduce_sum(local_items, "SFT token count") : local_items;
  const int64_t n = examples.empty() ? 0 : batch.input_ids.size(0);
  const int64_t micro = cfg_.per_device_train_batch_size;
  // NFT: the old log-probs laid out as the completion columns, the verdicts and group accuracies.
  torch::Tensor old_logps, correct_rows, r_hat_rows;
  if (cfg_.nft && n > 0) {
    old_logps = torch::zeros_like(batch.completion_mask);
    correct_rows = torch::empty({n}, torch::kFloat);
    r_hat_rows = torch::empty({n}, torch::kFloat);
    for (int64_t i = 0; i < n; ++i) {
      const auto& e = examples[static_cast<size_t>(i)];
      SELFRL_CHECK(e.old_logprobs.size() == e.completion_ids.size(), "SFTTrainer (nft): example ", i, " has ",
                   e.old_logprobs.size(), " old log-probs for ", e.completion_ids.size(), " completion tokens");
      SELFRL_CHECK(e.r_hat > 0 && e.r_hat < 1, "SFTTrainer (nft): example ", i, " has group accuracy ", e.r_hat,
                   "; groups that are all right or all wrong carry no signal and must be left out");
      const auto row = torch::from_blob(const_cast<float*>(e.old_logprobs.data()),
                                        {static_cast<int64_t>(e.old_logprobs.size())}, torch::kFloat);
      old_logps[i].slice(0, 0, row.size(0)).copy_(row);
      correct_rows[i] = e.correct ? 1.0F : 0.0F;
      r_hat_rows[i] = static_cast<float>(e.r_hat);
    }
  }
  policy_->train();
  double loss = 0, correct = 0;
  bool finite = true;
  for (int64_t b0 = 0; b0 < n; b0 += micro) {
    const auto mb = slice_rows(batch, b0, std::min(n, b0 + micro));
    TokenStatsOptions so;
    so.activation_checkpointing = cfg_.gradient_checkpointing;
    so.chunk_size = cfg_.logprob_chunk_size;
    so.bf16 = cfg_.bf16;
    so.padding_free = cfg_.padding_free;
    const auto stats = completion_token_stats(*policy_, mb, so);
    const auto mask = mb.completion_mask.to(stats.logprobs.device());
    const auto l =
        cfg_.nft ? nft_loss(stats.logprobs, old_logps.slice(0, b0, std::min(n, b0 + micro)).to(mask.device()), mask,
                            correct_rows.slice(0, b0, std::min(n, b0 + micro)).to(mask.device()),
                            r_hat_rows.slice(0, b0, std::min(n, b0 + micro)).to(mask.device()), *cfg_.nft, num_items)
                 : sft_loss(stats.logprobs, mask, num_items);
    const double lv = l.item<double>();
    finite = finite && std::isfinite(lv);
    if (b0 + micro >= n) optimizer_->expect_final_backward();  // DP: all-reduce overlaps this backward
    if (std::isfinite(lv)) l.backward();
    loss += lv;
    // A token is "correct" when its log-prob exceeds log ½: it is certainly the argmax.
    correct += ((stats.logprobs.detach() > std::log(0.5)).to(torch::kFloat) * mask).sum().item<double>();
  }
  const StepReport rep = optimizer_->step(finite);
  if (world_) {
    const auto sums = world_->all_reduce_sum({loss, correct}, "SFT metrics");
    loss = sums[0];
    correct = sums[1];
  }
  metrics::Scalars m{{"loss", loss},
                     {"grad_norm", rep.grad_norm},
                     {"learning_rate", rep.learning_rate},
                     {"num_tokens", num_items},
                     {"mean_token_accuracy", correct / std::max(1.0, num_items)},
                     {"skipped_steps", static_cast<double>(optimizer_->steps_skipped())}};
  add_memory_metrics(m, policy_->device());
  if (logger_) logger_->log(step_, m);
  ++step_;
  return m;
}

std::vector<std::vector<float>> SFTTrainer::completion_logprobs(model::CausalLM& model,
                                                                const std::vector<SFTExample>& examples,
                                                                int64_t batch_size, bool bf16) {
  SELFRL_CHECK(batch_size >= 1, "completion_logprobs: batch_size must be >= 1");
  torch::NoGradGuard no_grad;
  model.eval();
  const int64_t pad = pad_id_of(model, {});
  std::vector<std::vector<float>> out;
  for (size_t b0 = 0; b0 < examples.size(); b0 += static_cast<size_t>(batch_size)) {
    const size_t b1 = std::min(examples.size(), b0 + static_cast<size_t>(batch_size));
    std::vector<std::vector<int64_t>> prompts, completions;
    for (size_t i = b0; i < b1; ++i)
      prompts.push_back(examples[i].prompt_ids), completions.push_back(examples[i].completion_ids);
    const auto batch = pack_sequences(prompts, completions, pad);
    const auto lp =
        completion_token_stats(model, batch, 1.0, false, 1024, bf16).logprobs.to(torch::kFloat).cpu().contiguous();
    for (size_t i = b0; i < b1; ++i) {
      const auto row = lp[static_cast<int64_t>(i - b0)];
      const auto* p = row.data_ptr<float>();
      out.emplace_back(p, p + examples[i].completion_ids.size());
    }
  }
  return out;
}

std::vector<metrics::Scalars> SFTTrainer::train(const std::vector<SFTExample>& data) {
  SELFRL_CHECK(!data.empty(), "SFTTrainer::train: the dataset is empty");
  std::vector<metrics::Scalars> out;
  const size_t ranks = world_ ? static_cast<size_t>(world_->size()) : 1;
  const size_t rank = world_ ? static_cast<size_t>(world_->rank()) : 0;
  const size_t per_step =
      ranks * static_cast<size_t>(cfg_.per_device_train_batch_size * cfg_.gradient_accumulation_steps);
  int64_t skip = skip_batches_;  // batches trained on before a resume
  skip_batches_ = 0;
  for (int64_t epoch = 0; epoch < cfg_.num_train_epochs; ++epoch) {
    std::vector<size_t> order(data.size());
    std::iota(order.begin(), order.end(), 0);
    auto rng = make_engine(cfg_.seed, {static_cast<uint64_t>(epoch)});
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t i = 0; i < order.size(); i += per_step) {
      if (skip > 0) {
        --skip;
        continue;
      }
      // This rank's contiguous slice of the global batch.
      const size_t end = std::min(order.size(), i + per_step), len = end - i;
      std::vector<SFTExample> batch;
      for (size_t k = i + rank * len / ranks; k < i + (rank + 1) * len / ranks; ++k) batch.push_back(data[order[k]]);
      out.push_back(step(batch));
    }
  }
  return out;
}

}  // namespace selfrl::trainers
