// RolloutEngine: completions agree with teacher-forced logprobs of the full forward (so KV
// caching, prompt sharing and batch compaction are right), greedy is deterministic, seeds make
// a request independent of its batch, stop tokens / sequences and length limits finish rows.
#include "selfrl/generation/rollout_engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <utility>

#include "../model/tiny_models.h"
#include "selfrl/model/decode_attention.h"
#include "selfrl/model/token_logprobs.h"
#include "test_util.h"

using selfrl::generation::FinishReason;
using selfrl::generation::RolloutEngine;
using selfrl::generation::RolloutEngineOptions;
using selfrl::generation::SamplingParams;

namespace {

// log p(completion tokens | prompt, previous tokens) at temperature T, by a full forward.
selfrl::model::TokenStats teacher_forced(selfrl::model::CausalLM& m, const std::vector<int64_t>& prompt,
                                         const std::vector<int64_t>& completion, double temperature) {
  std::vector<int64_t> all(prompt);
  all.insert(all.end(), completion.begin(), completion.end());
  auto ids = torch::tensor(all, torch::kLong).unsqueeze(0);
  torch::NoGradGuard g;
  auto h = m.forward(ids);
  const int64_t p = prompt.size(), n = completion.size();
  return selfrl::model::token_logprobs(h.narrow(1, p - 1, n), m.lm_head_weight(), ids.narrow(1, p, n), temperature);
}

std::vector<std::vector<int64_t>> prompts() { return {{1, 2, 3, 4, 5, 6, 7}, {9, 8}, {30, 31, 32, 33}}; }

}  // namespace

TEST(RolloutEngine, SampledCompletionsMatchTeacherForcedStats) {
  auto m = selfrl::test::tiny_model("qwen3", 7);
  RolloutEngineOptions eo;
  eo.eos_token_ids = {3, 17};  // frequent enough that rows finish at different steps
  RolloutEngine engine(m, eo);
  SamplingParams sp;
  sp.num_samples = 4;
  sp.max_new_tokens = 12;
  sp.temperature = 0.8;
  sp.top_k = 20;
  sp.seed = 11;
  auto rollouts = engine.generate(prompts(), sp);
  ASSERT_EQ(rollouts.size(), 3u);
  int stopped = 0;
  for (const auto& r : rollouts) {
    ASSERT_EQ(r.completions.size(), 4u);
    for (const auto& c : r.completions) {
      ASSERT_FALSE(c.token_ids.empty());
      if (c.finish_reason == FinishReason::kStop) {
        ++stopped;
        EXPECT_TRUE(c.token_ids.back() == 3 || c.token_ids.back() == 17);
      } else {
        EXPECT_EQ(c.finish_reason, FinishReason::kLength);
        EXPECT_EQ(c.token_ids.size(), 12u);
      }
      auto scaled = teacher_forced(*m, r.prompt_ids, c.token_ids, 0.8);
      auto raw = teacher_forced(*m, r.prompt_ids, c.token_ids, 1.0);
      for (size_t t = 0; t < c.token_ids.size(); ++t) {
        EXPECT_NEAR(c.logprobs[t], scaled.logprobs[0][t].item<float>(), 1e-4);
        EXPECT_NEAR(c.raw_logprobs[t], raw.logprobs[0][t].item<float>(), 1e-4);
        EXPECT_NEAR(c.entropy[t], scaled.entropy[0][t].item<float>(), 1e-4);
        EXPECT_NEAR(c.self_certainty[t], scaled.self_certainty[0][t].item<float>(), 1e-4);
      }
    }
  }
  EXPECT_GT(stopped, 0);
}

TEST(RolloutEngine, GreedySamplesAreIdenticalAndEqualFullForwardArgmax) {
  auto m = selfrl::test::tiny_model("llama3", 8);
  RolloutEngine engine(m);
  SamplingParams sp;
  sp.num_samples = 3;
  sp.max_new_tokens = 6;
  sp.temperature = 0;
  auto rollouts = engine.generate(prompts(), sp);
  for (const auto& r : rollouts) {
    std::vector<int64_t> seq = r.prompt_ids;
    for (int t = 0; t < 6; ++t) {
      torch::NoGradGuard g;
      auto h = m->forward(torch::tensor(seq, torch::kLong).unsqueeze(0));
      seq.push_back(m->logits(h[0][-1]).argmax().item<int64_t>());
    }
    for (const auto& c : r.completions) {
      EXPECT_EQ(c.token_ids, std::vector<int64_t>(seq.begin() + r.prompt_ids.size(), seq.end()));
      EXPECT_EQ(c.finish_reason, FinishReason::kLength);
    }
  }
}

TEST(RolloutEngine, RequestSeedMakesOutputIndependentOfBatch) {
  auto m = selfrl::test::tiny_model("llama", 9);
  SamplingParams sp;
  sp.num_samples = 2;
  sp.max_new_tokens = 8;
  sp.temperature = 1.0;
  sp.top_p = 0.9;
  RolloutEngineOptions small;
  small.max_batch_size = 2;  // one prompt per wave
  auto together = RolloutEngine(m).generate(prompts(), sp, {100, 200, 300});
  auto waves = RolloutEngine(m, small).generate(prompts(), sp, {100, 200, 300});
  auto alone = RolloutEngine(m).generate({prompts()[1]}, sp, {200});
  for (size_t i = 0; i < 3; ++i)
    for (int g = 0; g < 2; ++g) EXPECT_EQ(together[i].completions[g].token_ids, waves[i].completions[g].token_ids);
  EXPECT_EQ(together[1].completions[0].token_ids, alone[0].completions[0].token_ids);
  EXPECT_EQ(together[1].completions[1].token_ids, alone[0].completions[1].token_ids);
  // Different samples of one prompt draw from different streams.
  EXPECT_NE(together[0].completions[0].token_ids, together[0].completions[1].token_ids);
  // Same run seed, same result.
  sp.seed = 5;
  auto a = RolloutEngine(m).generate(prompts(), sp), b = RolloutEngine(m).generate(prompts(), sp);
  EXPECT_EQ(a[2].completions[1].token_ids, b[2].completions[1].token_ids);
}

TEST(RolloutEngine, StopSequencesAndStopTokens) {
  auto m = selfrl::test::tiny_model("qwen2", 10);
  SamplingParams sp;
  sp.temperature = 0;
  sp.max_new_tokens = 10;
  auto free_run = RolloutEngine(m).generate({{5, 6, 7}}, sp)[0].completions[0].token_ids;
  ASSERT_EQ(free_run.size(), 10u);
  sp.stop_sequences = {{free_run[3], free_run[4]}};
  auto c = RolloutEngine(m).generate({{5, 6, 7}}, sp)[0].completions[0];
  EXPECT_EQ(c.finish_reason, FinishReason::kStop);
  EXPECT_LE(c.token_ids.size(), 5u);
  sp.stop_sequences.clear();
  sp.stop_token_ids = {free_run[2]};
  c = RolloutEngine(m).generate({{5, 6, 7}}, sp)[0].completions[0];
  EXPECT_EQ(c.finish_reason, FinishReason::kStop);
  EXPECT_EQ(c.token_ids.back(), free_run[2]);
}

TEST(RolloutEngine, BadPromptsAreClearErrors) {
  auto m = selfrl::test::tiny_model("llama");
  RolloutEngine engine(m);
  SamplingParams sp;
  EXPECT_SELFRL_ERROR(engine.generate({{1, 2}, {}}, sp), "prompt 1", "empty");
  EXPECT_SELFRL_ERROR(engine.generate({{1, 61}}, sp), "prompt 0", "token id 61");
  EXPECT_SELFRL_ERROR(engine.generate({std::vector<int64_t>(128, 1)}, sp), "max_position_embeddings");
}

namespace {

// Mixed prompt lengths and frequent stops, so rows finish at different steps.
std::vector<std::vector<int64_t>> many_prompts() {
  return {{1, 2, 3, 4, 5, 6, 7}, {9, 8},  {30, 31, 32, 33}, {40}, {12, 13, 14, 15, 16, 17, 18, 19, 20, 21},
          {50, 51, 52},          {22, 23}};
}

}  // namespace

TEST(RolloutEngine, ContinuousBatchingMatchesTeacherForcedStatsAndWaves) {
  auto m = selfrl::test::tiny_model("qwen3", 12);
  SamplingParams sp;
  sp.num_samples = 3;
  sp.max_new_tokens = 12;
  sp.temperature = 0.8;
  sp.seed = 4;
  RolloutEngineOptions eo;
  eo.eos_token_ids = {3, 17, 25};
  eo.max_batch_size = 6;  // two prompts at a time: admissions happen while others decode
  RolloutEngine waves(m, eo);
  eo.continuous_batching = true;
  RolloutEngine continuous(m, eo);
  int64_t done = 0;
  const auto a = waves.generate(many_prompts(), sp);
  const auto b = continuous.generate(many_prompts(), sp, {}, [&done](int64_t n) { done += n; });
  EXPECT_EQ(done, 7);
  ASSERT_EQ(b.size(), 7u);
  int stopped = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(b[i].prompt_index, static_cast<int64_t>(i));
    EXPECT_EQ(b[i].prompt_ids, many_prompts()[i]);
    for (int g = 0; g < 3; ++g) {
      const auto& c = b[i].completions[g];
      // Same seeds, same per-row random streams: the same tokens as in waves (the logits can
      // only differ in the last float bits between batch compositions).
      EXPECT_EQ(c.token_ids, a[i].completions[g].token_ids) << "prompt " << i << " sample " << g;
      EXPECT_EQ(c.finish_reason, a[i].completions[g].finish_reason);
      stopped += c.finish_reason == FinishReason::kStop;
      // The spliced cache gives each row exactly its own context: stats equal a full forward.
      const auto scaled = teacher_forced(*m, b[i].prompt_ids, c.token_ids, 0.8);
      for (size_t t = 0; t < c.token_ids.size(); ++t) {
        EXPECT_NEAR(c.logprobs[t], scaled.logprobs[0][t].item<float>(), 1e-4);
        EXPECT_NEAR(c.entropy[t], scaled.entropy[0][t].item<float>(), 1e-4);
      }
    }
  }
  EXPECT_GT(stopped, 3);
  EXPECT_LT(stopped, 21);
  // The same work in fewer decode steps: the batch is refilled instead of draining each wave.
  std::printf("decode steps: waves %lld, continuous %lld (%lld tokens)\n",
              static_cast<long long>(waves.last_timings().decode_steps),
              static_cast<long long>(continuous.last_timings().decode_steps),
              static_cast<long long>(waves.last_timings().decode_tokens));
  EXPECT_EQ(continuous.last_timings().decode_tokens, waves.last_timings().decode_tokens);
  EXPECT_EQ(continuous.last_timings().prefill_tokens, waves.last_timings().prefill_tokens);
  EXPECT_LT(continuous.last_timings().decode_steps, waves.last_timings().decode_steps);
}

TEST(RolloutEngine, ContinuousBatchingGreedyEqualsFullForwardArgmax) {
  auto m = selfrl::test::tiny_model("llama", 13);
  SamplingParams sp;
  sp.num_samples = 1;
  sp.max_new_tokens = 9;
  sp.temperature = 0;
  RolloutEngineOptions eo;
  eo.eos_token_ids = {3, 17, 25, 40};
  eo.max_batch_size = 3;
  eo.continuous_batching = true;
  const auto out = RolloutEngine(m, eo).generate(many_prompts(), sp);
  for (const auto& r : out) {
    std::vector<int64_t> seq = r.prompt_ids;
    const auto& c = r.completions[0];
    for (size_t t = 0; t < c.token_ids.size(); ++t) {
      torch::NoGradGuard g;
      auto h = m->forward(torch::tensor(seq, torch::kLong).unsqueeze(0));
      seq.push_back(m->logits(h[0][-1]).argmax().item<int64_t>());
    }
    EXPECT_EQ(c.token_ids, std::vector<int64_t>(seq.begin() + r.prompt_ids.size(), seq.end()));
  }
}

TEST(RolloutEngine, EachRowHasItsOwnBudgetUnderTheContext) {
  // max_position_embeddings 128: a 124-token prompt has room for 4 new tokens, a 2-token
  // prompt in the same batch keeps its 10 (before, a wave took the budget of its longest prompt).
  auto m = selfrl::test::tiny_model("llama", 14);
  SamplingParams sp;
  sp.num_samples = 2;
  sp.max_new_tokens = 10;
  sp.temperature = 1.0;
  sp.ignore_eos = true;
  for (bool continuous : {false, true}) {
    RolloutEngineOptions eo;
    eo.continuous_batching = continuous;
    eo.max_batch_size = continuous ? 2 : 4;
    const auto out = RolloutEngine(m, eo).generate({std::vector<int64_t>(124, 5), {7, 8}, {9}}, sp);
    for (int g = 0; g < 2; ++g) {
      EXPECT_EQ(out[0].completions[g].token_ids.size(), 4u) << continuous;
      EXPECT_EQ(out[1].completions[g].token_ids.size(), 10u) << continuous;
      EXPECT_EQ(out[2].completions[g].token_ids.size(), 10u) << continuous;
      EXPECT_EQ(out[0].completions[g].finish_reason, FinishReason::kLength);
    }
  }
}

// The shared prompt cache (default) against one copy of the prompt per sample: the same tokens
// (greedy and sampled: the uniforms are per row, so a sample can only differ where a last-bit
// difference of the logits moves a token boundary) and the same per-token stats up to the
// order of float sums. Rows stop at different steps and whole prompts finish early, so the
// cache drops rows and prompts (slot renumbering) while others still run; GQA (4 heads, 2 kv).
// In waves and with continuous batching (prompts join the shared prefix while others decode).
TEST(RolloutEngine, SharedPromptCacheGivesTheSameCompletionsAsCopies) {
  for (const char* arch : {"llama", "qwen3"}) {
    auto m = selfrl::test::tiny_model(arch, 21);
    for (const auto& [temperature, continuous] :
         {std::pair{0.0, false}, std::pair{1.0, false}, std::pair{0.0, true}, std::pair{1.0, true}}) {
      SCOPED_TRACE(continuous ? "continuous batching" : "waves");
      SamplingParams sp;
      sp.num_samples = temperature == 0.0 ? 3 : 4;
      sp.max_new_tokens = 11;
      sp.temperature = temperature;
      sp.seed = 5;
      RolloutEngineOptions shared, copies;
      shared.eos_token_ids = copies.eos_token_ids = {3, 17, 25, 40};
      shared.max_batch_size = copies.max_batch_size = 12;  // waves of 3-4 prompts
      // Continuous: a prompt is admitted whenever its G rows are free, so prompts join the shared
      // prefix while others decode, after rows (and whole prompts) have left it.
      shared.continuous_batching = copies.continuous_batching = continuous;
      copies.share_prompt_cache = false;
      RolloutEngine shared_engine(m, shared), copies_engine(m, copies);
      const auto a = shared_engine.generate(many_prompts(), sp);
      const auto b = copies_engine.generate(many_prompts(), sp);
      // The prompts are held once, not G times: a smaller cache at its largest.
      EXPECT_GT(shared_engine.last_timings().peak_cache_bytes, 0);
      EXPECT_LT(shared_engine.last_timings().peak_cache_bytes, copies_engine.last_timings().peak_cache_bytes);
      ASSERT_EQ(a.size(), b.size());
      std::set<size_t> lengths;
      for (size_t i = 0; i < a.size(); ++i) {
        for (size_t g = 0; g < a[i].completions.size(); ++g) {
          const auto &x = a[i].completions[g], &y = b[i].completions[g];
          ASSERT_EQ(x.token_ids, y.token_ids) << arch << " T=" << temperature << " prompt " << i << " sample " << g;
          EXPECT_EQ(x.finish_reason, y.finish_reason);
          lengths.insert(x.token_ids.size());
          for (size_t t = 0; t < x.token_ids.size(); ++t) {
            EXPECT_NEAR(x.logprobs[t], y.logprobs[t], 1e-5);
            EXPECT_NEAR(x.entropy[t], y.entropy[t], 1e-5);
            EXPECT_NEAR(x.self_certainty[t], y.self_certainty[t], 1e-5);
          }
        }
      }
      EXPECT_GE(lengths.size(), 3u) << "rows should finish at mixed steps";
    }
  }
}

// KV memory grows a block at a time (kv_block_size) instead of reserving every row's whole
// budget: the same tokens and statistics as reserving it all up front, in waves and with
// continuous batching, with and without the shared prompt cache, and a smaller cache at its
// largest when completions stop long before max_new_tokens. Blocks of 3 columns, so the
// cache grows many times within a call, also while rows and prompts leave it.
TEST(RolloutEngine, KvMemoryGrowsInBlocksWithTheSameCompletions) {
  auto m = selfrl::test::tiny_model("qwen3", 23);
  for (const bool continuous : {false, true}) {
    for (const bool share : {true, false}) {
      SCOPED_TRACE(std::string(continuous ? "continuous" : "waves") + (share ? ", shared prompts" : ", copies"));
      SamplingParams sp;
      sp.num_samples = 3;
      sp.max_new_tokens = 60;
      sp.temperature = 1.0;
      sp.seed = 9;
      RolloutEngineOptions grow, upfront;
      grow.eos_token_ids = upfront.eos_token_ids = {3, 17, 25, 40};
      grow.max_batch_size = upfront.max_batch_size = 9;
      grow.continuous_batching = upfront.continuous_batching = continuous;
      grow.share_prompt_cache = upfront.share_prompt_cache = share;
      grow.kv_block_size = 3;
      upfront.kv_block_size = 0;
      RolloutEngine a_engine(m, grow), b_engine(m, upfront);
      const auto a = a_engine.generate(many_prompts(), sp);
      const auto b = b_engine.generate(many_prompts(), sp);
      size_t longest = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        for (size_t g = 0; g < a[i].completions.size(); ++g) {
          const auto &x = a[i].completions[g], &y = b[i].completions[g];
          ASSERT_EQ(x.token_ids, y.token_ids) << "prompt " << i << " sample " << g;
          longest = std::max(longest, x.token_ids.size());
          for (size_t t = 0; t < x.token_ids.size(); ++t) {
            EXPECT_NEAR(x.logprobs[t], y.logprobs[t], 1e-5);
            EXPECT_NEAR(x.self_certainty[t], y.self_certainty[t], 1e-5);
          }
        }
      }
      EXPECT_GT(longest, 3u) << "the cache should have grown";
      EXPECT_LT(longest, 60u) << "completions should stop before the budget";
      EXPECT_LT(a_engine.last_timings().peak_cache_bytes, b_engine.last_timings().peak_cache_bytes);
    }
  }
  // Rows that use their whole budget grow to it: the same as reserving it, token for token.
  SamplingParams full;
  full.num_samples = 2;
  full.max_new_tokens = 20;
  full.temperature = 0;
  full.ignore_eos = true;
  RolloutEngineOptions grow;
  grow.kv_block_size = 7;
  RolloutEngineOptions upfront;
  upfront.kv_block_size = 0;
  const auto a = RolloutEngine(m, grow).generate(many_prompts(), full);
  const auto b = RolloutEngine(m, upfront).generate(many_prompts(), full);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].completions[0].token_ids.size(), 20u);
    EXPECT_EQ(a[i].completions[1].token_ids, b[i].completions[1].token_ids);
  }
  RolloutEngineOptions bad;
  bad.kv_block_size = -1;
  EXPECT_SELFRL_ERROR(RolloutEngine(m, bad), "kv_block_size must be >= 0");
}

// The CPU decode-attention passes (selfrl/model/decode_attention.h, on by default) against the
// torch::matmul path they replace: the same tokens, greedy and sampled, and the same per-token
// statistics up to the order of float sums, in waves and with continuous batching, with the
// shared prompt cache (all four products) and with a copy per sample; GQA (4 heads, 2 kv) and
// Qwen3's own head_dim.
TEST(RolloutEngine, DecodeAttentionPassesGiveTheSameCompletionsAsMatmul) {
  const bool was = selfrl::model::fused_decode_attention_enabled();
  for (const char* arch : {"llama", "qwen3"}) {
    auto m = selfrl::test::tiny_model(arch, 29);
    for (const bool continuous : {false, true}) {
      for (const bool share : {true, false}) {
        for (const double temperature : {0.0, 1.0}) {
          SCOPED_TRACE(std::string(arch) + (continuous ? ", continuous" : ", waves") +
                       (share ? ", shared prompts" : ", copies") + ", T=" + std::to_string(temperature));
          SamplingParams sp;
          sp.num_samples = 3;
          sp.max_new_tokens = 14;
          sp.temperature = temperature;
          sp.seed = 13;
          RolloutEngineOptions eo;
          eo.eos_token_ids = {3, 17, 25, 40};
          eo.max_batch_size = 9;
          eo.continuous_batching = continuous;
          eo.share_prompt_cache = share;
          selfrl::model::set_fused_decode_attention(true);
          const auto a = RolloutEngine(m, eo).generate(many_prompts(), sp);
          selfrl::model::set_fused_decode_attention(false);
          const auto b = RolloutEngine(m, eo).generate(many_prompts(), sp);
          selfrl::model::set_fused_decode_attention(was);
          ASSERT_EQ(a.size(), b.size());
          size_t tokens = 0;
          for (size_t i = 0; i < a.size(); ++i) {
            for (size_t g = 0; g < a[i].completions.size(); ++g) {
              const auto &x = a[i].completions[g], &y = b[i].completions[g];
              ASSERT_EQ(x.token_ids, y.token_ids) << "prompt " << i << " sample " << g;
              tokens += x.token_ids.size();
              for (size_t t = 0; t < x.token_ids.size(); ++t) {
                EXPECT_NEAR(x.logprobs[t], y.logprobs[t], 1e-5);
                EXPECT_NEAR(x.entropy[t], y.entropy[t], 1e-5);
                EXPECT_NEAR(x.self_certainty[t], y.self_certainty[t], 1e-5);
              }
            }
          }
          EXPECT_GT(tokens, a.size() * 3 * 2) << "rows should decode past their first token";
        }
      }
    }
  }
}
