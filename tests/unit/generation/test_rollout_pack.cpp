// pack_rollouts / unpack_rollouts: what the loops' sharded sampling sends between ranks comes
// back field for field (real engine output, NaN statistics, empty lists), and a damaged buffer
// is an Error, not a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "../model/tiny_models.h"
#include "selfrl/generation/rollout.h"
#include "selfrl/generation/rollout_engine.h"
#include "test_util.h"

using selfrl::generation::Completion;
using selfrl::generation::FinishReason;
using selfrl::generation::Rollout;

namespace {

void expect_same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i])) {
      EXPECT_TRUE(std::isnan(b[i])) << i;
    } else {
      EXPECT_EQ(a[i], b[i]) << i;  // bit-exact: a float survives a double
    }
  }
}

void expect_same(const std::vector<Rollout>& a, const std::vector<Rollout>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].prompt_index, b[i].prompt_index);
    EXPECT_EQ(a[i].prompt_ids, b[i].prompt_ids);
    ASSERT_EQ(a[i].completions.size(), b[i].completions.size());
    for (size_t k = 0; k < a[i].completions.size(); ++k) {
      const Completion &x = a[i].completions[k], &y = b[i].completions[k];
      EXPECT_EQ(x.token_ids, y.token_ids);
      EXPECT_EQ(x.finish_reason, y.finish_reason);
      EXPECT_EQ(x.sample_index, y.sample_index);
      expect_same_floats(x.logprobs, y.logprobs);
      expect_same_floats(x.raw_logprobs, y.raw_logprobs);
      expect_same_floats(x.entropy, y.entropy);
      expect_same_floats(x.self_certainty, y.self_certainty);
    }
  }
}

}  // namespace

TEST(RolloutPack, EngineOutputRoundTripsFieldForField) {
  auto m = selfrl::test::tiny_model("llama", 3);
  selfrl::generation::RolloutEngineOptions eo;
  eo.eos_token_ids = {3, 17};
  selfrl::generation::RolloutEngine engine(m, eo);
  selfrl::generation::SamplingParams sp;
  sp.num_samples = 3;
  sp.max_new_tokens = 9;
  sp.temperature = 0.9;
  sp.seed = 5;
  const auto rollouts = engine.generate({{1, 2, 3, 4}, {9, 8}, {30, 31, 32}}, sp);
  int stopped = 0;
  for (const auto& r : rollouts)
    for (const auto& c : r.completions) stopped += c.finish_reason == FinishReason::kStop;
  const auto packed = selfrl::generation::pack_rollouts(rollouts);
  expect_same(rollouts, selfrl::generation::unpack_rollouts(packed.data(), packed.size()));
  std::printf("[ measured ] %zu values for 3 prompts x 3 samples, %d stopped early\n", packed.size(), stopped);
}

TEST(RolloutPack, ExtremeValuesAndEmptyListsRoundTrip) {
  Rollout r;
  r.prompt_index = 41;
  r.prompt_ids = {0, (int64_t{1} << 52) + 1};  // large ids stay exact below 2^53
  Completion c;
  c.token_ids = {};
  c.finish_reason = FinishReason::kStop;
  c.sample_index = 7;
  c.logprobs = {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity(), -1e-38f, 3.0f};
  c.entropy = {0.1f};
  r.completions = {c, Completion{}};
  const std::vector<Rollout> all = {r, Rollout{}};
  const auto packed = selfrl::generation::pack_rollouts(all);
  expect_same(all, selfrl::generation::unpack_rollouts(packed.data(), packed.size()));
  const auto none = selfrl::generation::pack_rollouts({});
  EXPECT_EQ(none, std::vector<double>{0.0});
  EXPECT_TRUE(selfrl::generation::unpack_rollouts(none.data(), none.size()).empty());
}

TEST(RolloutPack, ADamagedBufferIsAnError) {
  Rollout r;
  r.prompt_ids = {5, 6};
  r.completions.resize(2);
  r.completions[0].token_ids = {1, 2, 3};
  const auto packed = selfrl::generation::pack_rollouts({r});
  EXPECT_SELFRL_ERROR(selfrl::generation::unpack_rollouts(packed.data(), packed.size() - 1), "mid-record");
  auto longer = packed;
  longer.push_back(0);
  EXPECT_SELFRL_ERROR(selfrl::generation::unpack_rollouts(longer.data(), longer.size()), "more than the records use");
  auto bad = packed;
  bad[0] = 1e9;  // a count larger than the buffer could hold
  EXPECT_SELFRL_ERROR(selfrl::generation::unpack_rollouts(bad.data(), bad.size()), "bad count");
  bad[0] = -1;
  EXPECT_SELFRL_ERROR(selfrl::generation::unpack_rollouts(bad.data(), bad.size()), "bad count");
}
