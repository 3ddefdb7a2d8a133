// Padding-free training passes (trainers::pack_padding_free, ForwardOptions::segment_ids): the
// packed layout worked out by hand, and the same per-token statistics and gradients as the
// padded layout — which the model tests check against transformers — for every architecture,
// for SFT / GRPO / DPO steps, and under bf16 autocast.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "../model/tiny_models.h"
#include "selfrl/rewards/builtin_rewards.h"
#include "selfrl/trainers/dpo_trainer.h"
#include "selfrl/trainers/grpo_trainer.h"
#include "selfrl/trainers/sequence_batch.h"
#include "selfrl/trainers/sft_trainer.h"
#include "grad_compare.h"
#include "test_util.h"

using namespace selfrl;
using selfrl::test::grads_of;
using selfrl::test::relative_grad_diff;

namespace {

std::vector<int64_t> as_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

// Rows of mixed prompt and completion lengths (one completion empty), ids in [1, vocab).
trainers::SequenceBatch mixed_batch(int64_t vocab, uint64_t seed) {
  auto gen = torch::make_generator<at::CPUGeneratorImpl>(seed);
  const std::vector<int64_t> prompt_len = {3, 7, 2, 5, 4, 6, 1};
  const std::vector<int64_t> completion_len = {9, 2, 0, 5, 12, 1, 4};
  std::vector<std::vector<int64_t>> prompts, completions;
  for (size_t i = 0; i < prompt_len.size(); ++i) {
    prompts.push_back(as_vector(torch::randint(1, vocab, {prompt_len[i]}, gen, torch::kLong)));
    completions.push_back(as_vector(torch::randint(1, vocab, {completion_len[i]}, gen, torch::kLong)));
  }
  return trainers::pack_sequences(prompts, completions, /*pad_id=*/0);
}

double max_masked_diff(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mask) {
  return ((a - b).abs() * mask).max().item<double>();
}

}  // namespace

TEST(PaddingFree, LayoutWorkedOutByHand) {
  // Prompts of 2, 1, 3 tokens and completions of 1, 3, 2: padded width P + C = 3 + 3 = 6, sequence
  // lengths 3, 4, 5. Best-fit decreasing: 5 → row 0, 4 → row 1 (row 0 has 1 free), 3 fits
  // neither (5 + 3, 4 + 3 > 6) → row 2. Segment ids count sequences in batch order per row.
  const auto b = trainers::pack_sequences({{11, 12}, {13}, {14, 15, 16}}, {{21}, {22, 23, 24}, {25, 26}}, 0);
  const auto p = trainers::pack_padding_free(b);
  EXPECT_EQ(p.input_ids.size(0), 3);
  EXPECT_EQ(p.input_ids.size(1), 6);
  EXPECT_EQ(p.row_of, (std::vector<int64_t>{2, 1, 0}));
  EXPECT_EQ(as_vector(p.input_ids[0]), (std::vector<int64_t>{14, 15, 16, 25, 26, 0}));
  EXPECT_EQ(as_vector(p.input_ids[1]), (std::vector<int64_t>{13, 22, 23, 24, 0, 0}));
  EXPECT_EQ(as_vector(p.input_ids[2]), (std::vector<int64_t>{11, 12, 21, 0, 0, 0}));
  EXPECT_EQ(as_vector(p.position_ids[0]), (std::vector<int64_t>{0, 1, 2, 3, 4, 0}));
  EXPECT_EQ(as_vector(p.segment_ids[1]), (std::vector<int64_t>{1, 1, 1, 1, 0, 0}));
  EXPECT_EQ(p.real_tokens, 12);
  // Completion tokens in batch order: 21 is predicted at row 2 col 1; 22 23 24 at row 1 cols
  // 0..2; 25 26 at row 0 cols 2, 3. Flat index row × 6 + col; outputs at i × C + j (C = 3).
  EXPECT_EQ(as_vector(p.predict_index), (std::vector<int64_t>{13, 6, 7, 8, 2, 3}));
  EXPECT_EQ(as_vector(p.target_ids), (std::vector<int64_t>{21, 22, 23, 24, 25, 26}));
  EXPECT_EQ(as_vector(p.output_index), (std::vector<int64_t>{0, 3, 4, 5, 6, 7}));

  // Short sequences share rows. Prompts 1, 4, 1, 1 tokens, completions 2, 0, 1, 0: width
  // 4 + 2 = 6, lengths 3, 4, 2, 1. 4 → row 0; 3 does not fit row 0 → row 1; 2 fits both, row 0
  // is fuller (4 vs 3) → row 0 (now full); 1 → row 1.
  const auto c = trainers::pack_sequences({{1}, {2, 3, 4, 5}, {6}, {7}}, {{8, 10}, {}, {9}, {}}, 0);
  const auto q = trainers::pack_padding_free(c);
  EXPECT_EQ(q.input_ids.size(0), 2);
  EXPECT_EQ(q.row_of, (std::vector<int64_t>{1, 0, 0, 1}));
  EXPECT_EQ(as_vector(q.input_ids[0]), (std::vector<int64_t>{2, 3, 4, 5, 6, 9}));
  EXPECT_EQ(as_vector(q.segment_ids[0]), (std::vector<int64_t>{1, 1, 1, 1, 2, 2}));
  EXPECT_EQ(as_vector(q.position_ids[0]), (std::vector<int64_t>{0, 1, 2, 3, 0, 1}));
  EXPECT_EQ(as_vector(q.input_ids[1]), (std::vector<int64_t>{1, 8, 10, 7, 0, 0}));
  EXPECT_EQ(as_vector(q.segment_ids[1]), (std::vector<int64_t>{1, 1, 1, 2, 0, 0}));
  EXPECT_EQ(as_vector(q.position_ids[1]), (std::vector<int64_t>{0, 1, 2, 0, 0, 0}));
  EXPECT_EQ(as_vector(q.predict_index), (std::vector<int64_t>{6, 7, 4}));
  EXPECT_EQ(as_vector(q.target_ids), (std::vector<int64_t>{8, 10, 9}));
  EXPECT_EQ(as_vector(q.output_index), (std::vector<int64_t>{0, 1, 4}));
  EXPECT_EQ(q.real_tokens, 10);
}

TEST(PaddingFree, SegmentsNeedPositionsAndNoCacheOrMask) {
  auto m = test::tiny_model("llama");
  const auto ids = torch::tensor({{1, 2, 3, 4}}, torch::kLong);
  model::ForwardOptions fo;
  fo.segment_ids = torch::tensor({{1, 1, 2, 2}}, torch::kLong);
  EXPECT_SELFRL_ERROR(m->forward(ids, fo), "segment_ids (packed rows) need position_ids");
  fo.position_ids = torch::tensor({{0, 1, 0, 1}}, torch::kLong);
  fo.attention_mask = torch::ones({1, 4}, torch::kLong);
  EXPECT_SELFRL_ERROR(m->forward(ids, fo), "cannot be combined with a KV cache or an attention_mask");
  fo.attention_mask = torch::Tensor();
  fo.segment_ids = torch::tensor({{1, 1, 2}}, torch::kLong);
  EXPECT_SELFRL_ERROR(m->forward(ids, fo), "segment_ids must be [1, 4]");
}

TEST(PaddingFree, TwoSequencesInOneRowMatchEachAlone) {
  auto m = test::tiny_model("qwen3", 1);
  torch::NoGradGuard no_grad;
  const auto a = torch::tensor({{5, 9, 13, 2}}, torch::kLong);
  const auto b = torch::tensor({{7, 30, 41}}, torch::kLong);
  model::ForwardOptions fo;
  fo.position_ids = torch::tensor({{0, 1, 2, 3, 0, 1, 2, 0}}, torch::kLong);
  fo.segment_ids = torch::tensor({{1, 1, 1, 1, 2, 2, 2, 0}}, torch::kLong);
  const auto packed = m->forward(torch::cat({a, b, torch::zeros({1, 1}, torch::kLong)}, 1), fo);
  const auto ha = m->forward(a, {});
  const auto hb = m->forward(b, {});
  EXPECT_LT((packed.narrow(1, 0, 4) - ha).abs().max().item<double>(), 1e-5);
  EXPECT_LT((packed.narrow(1, 4, 3) - hb).abs().max().item<double>(), 1e-5);
}

TEST(PaddingFree, SameStatsAndGradientsAsPaddedForEveryArchitecture) {
  for (const std::string arch : {"llama", "llama3", "qwen2", "qwen3", "tied"}) {
    SCOPED_TRACE(arch);
    auto m = test::tiny_model(arch, 2);
    const auto batch = mixed_batch(61, 7);
    const auto mask = batch.completion_mask;
    model::TokenStats stats[2];
    std::vector<torch::Tensor> grads[2];
    for (int free = 0; free < 2; ++free) {
      m->zero_grad();
      trainers::TokenStatsOptions o;
      o.temperature = 0.7;
      o.chunk_size = 5;
      o.padding_free = free == 1;
      stats[free] = trainers::completion_token_stats(*m, batch, o);
      // Every statistic enters the loss, so every backward formula is compared.
      ((stats[free].logprobs + 0.3 * stats[free].entropy - 0.2 * stats[free].self_certainty) * mask).sum().backward();
      grads[free] = grads_of(*m);
    }
    // float32 sums in another order (packed vs padded matmul shapes): up to 1.3e-5 on an AMD EPYC
    // (log-probs of magnitude ~5), under 1e-5 on an Intel Xeon. A wrong position or mask moves
    // them by 1e-2 or more.
    EXPECT_LT(max_masked_diff(stats[1].logprobs, stats[0].logprobs, mask), 5e-5);
    EXPECT_LT(max_masked_diff(stats[1].entropy, stats[0].entropy, mask), 5e-5);
    EXPECT_LT(max_masked_diff(stats[1].self_certainty, stats[0].self_certainty, mask), 5e-5);
    // Outside the completions the padding-free statistics are exactly zero.
    EXPECT_EQ((stats[1].logprobs * (1 - mask)).abs().sum().item<double>(), 0.0);
    EXPECT_LT(relative_grad_diff(grads[1], grads[0]), 1e-5);
  }
}

TEST(PaddingFree, GradientCheckpointingAndBf16) {
  auto m = test::tiny_model("llama", 3);
  const auto batch = mixed_batch(61, 8);
  std::vector<torch::Tensor> grads[3];
  const int modes[3][2] = {{0, 0}, {1, 0}, {1, 1}};  // {padding_free, checkpointing}
  for (int k = 0; k < 3; ++k) {
    m->zero_grad();
    m->train();
    trainers::TokenStatsOptions o;
    o.bf16 = true;
    o.padding_free = modes[k][0] == 1;
    o.activation_checkpointing = modes[k][1] == 1;
    const auto s = trainers::completion_token_stats(*m, batch, o);
    EXPECT_EQ(s.logprobs.scalar_type(), torch::kFloat);
    trainers::sft_loss(s.logprobs, batch.completion_mask, -1).backward();
    grads[k] = grads_of(*m);
  }
  // bf16 rounds differently in the two layouts (different matmul shapes): within bf16's
  // ~1e-2 relative gradient error (MixedPrecision tests); checkpointing replays the same
  // arithmetic, so it matches its own layout to summation order.
  EXPECT_LT(relative_grad_diff(grads[1], grads[0]), 6e-2);
  EXPECT_LT(relative_grad_diff(grads[2], grads[1]), 1e-4);
}

TEST(PaddingFree, SftAndDpoStepsMatchPadded) {
  const auto batch = mixed_batch(61, 9);
  std::vector<trainers::SFTExample> examples;
  for (int64_t i = 0; i < batch.input_ids.size(0); ++i) {
    const auto am = batch.attention_mask[i];
    const auto row = batch.input_ids[i];
    const int64_t len_c = am.slice(0, batch.prompt_length).sum().item<int64_t>();
    if (len_c == 0) continue;  // SFT needs a completion
    trainers::SFTExample e;
    e.prompt_ids = as_vector(
        row.slice(0, 0, batch.prompt_length).masked_select(am.slice(0, 0, batch.prompt_length).to(torch::kBool)));
    e.completion_ids = as_vector(row.slice(0, batch.prompt_length, batch.prompt_length + len_c));
    examples.push_back(e);
  }
  metrics::Scalars sft[2], dpo[2];
  for (int free = 0; free < 2; ++free) {
    trainers::SFTConfig sc;
    sc.per_device_train_batch_size = 4;
    sc.padding_free = free == 1;
    trainers::SFTTrainer st(test::tiny_model("qwen2", 4), sc);
    sft[free] = st.step(examples);
    sft[free] = st.step(examples);  // a second step sees the first update
    trainers::DPOConfig dc;
    dc.per_device_train_batch_size = 2;
    dc.padding_free = free == 1;
    std::vector<trainers::PreferencePair> pairs;
    for (size_t i = 0; i + 1 < examples.size(); i += 2)
      pairs.push_back({examples[i].prompt_ids, examples[i].completion_ids, examples[i + 1].completion_ids});
    trainers::DPOTrainer dt(test::tiny_model("qwen2", 5), nullptr, dc);
    dpo[free] = dt.step(pairs);
    dpo[free] = dt.step(pairs);
  }
  for (const char* key : {"loss", "grad_norm", "mean_token_accuracy"})
    EXPECT_NEAR(sft[1].at(key), sft[0].at(key), 1e-5 * std::max(1.0, std::abs(sft[0].at(key)))) << key;
  ASSERT_GT(dpo[0].count("loss"), 0u);
  for (const auto& [key, value] : dpo[0])
    if (key.rfind("perf/", 0) != 0)  // memory: a property of the process, not of the step
      EXPECT_NEAR(dpo[1].at(key), value, 1e-4 * std::max(1.0, std::abs(value))) << "dpo " << key;
}

TEST(PaddingFree, GrpoStepWithEarlyStopsMatchesPadded) {
  // eos id 3 in a vocabulary of 8: completions stop at different lengths, so the padded batch
  // holds padding and the packed one shares rows.
  metrics::Scalars out[2];
  for (int free = 0; free < 2; ++free) {
    auto m = test::tiny_model_with("llama", 8, {{"eos_token_id", 3}}, 6);
    rewards::RewardPipeline pipe;
    pipe.add(rewards::make_function_reward("length", [](const rewards::Group& g) {
      std::vector<double> r;
      for (const auto& s : g.samples) r.push_back(static_cast<double>(s.completion_ids.size()));
      return r;
    }));
    trainers::GRPOConfig cfg;
    cfg.sampling.num_samples = 6;
    cfg.sampling.max_new_tokens = 10;
    cfg.loss.beta = 0.04;
    cfg.num_iterations = 2;  // old log-probs and the clipped ratio too
    cfg.gradient_accumulation_steps = 2;
    cfg.seed = 5;
    cfg.padding_free = free == 1;
    trainers::GRPOTrainer trainer(std::move(m), pipe, cfg);
    const std::vector<trainers::PromptExample> prompts = {{{1, 2, 4}, "a", nullptr}, {{5, 6}, "b", nullptr}};
    out[free] = trainer.step(prompts).metrics;
    out[free] = trainer.step(prompts).metrics;  // same rollouts only if the first update matched
  }
  EXPECT_GT(out[0].at("completions/max_length"), out[0].at("completions/min_length"));
  for (const char* key : {"loss", "grad_norm", "kl", "entropy", "reward", "completions/mean_length"})
    EXPECT_NEAR(out[1].at(key), out[0].at(key), 1e-4 * std::max(1.0, std::abs(out[0].at(key)))) << key;
}
