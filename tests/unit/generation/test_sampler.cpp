// Logit filters (top-k, top-p, min-p as transformers' warpers) and inverse-CDF sampling.
#include "selfrl/generation/sampler.h"

#include <gtest/gtest.h>

#include <cmath>

#include "test_util.h"

using selfrl::generation::filter_logits;
using selfrl::generation::sample_tokens;
using selfrl::generation::SamplingParams;

namespace {
// Logits of probabilities {0.5, 0.25, 0.15, 0.1} in a shuffled order.
torch::Tensor four() { return torch::log(torch::tensor({{0.15, 0.5, 0.1, 0.25}}, torch::kFloat)); }
std::vector<bool> kept(const torch::Tensor& filtered) {
  std::vector<bool> k;
  for (int64_t j = 0; j < filtered.size(1); ++j) k.push_back(std::isfinite(filtered[0][j].item<float>()));
  return k;
}
}  // namespace

TEST(Sampler, TopK) {
  SamplingParams p;
  p.top_k = 2;
  EXPECT_EQ(kept(filter_logits(four(), p)), (std::vector<bool>{false, true, false, true}));
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  SamplingParams p;
  p.top_p = 0.7;  // 0.5 + 0.25 reaches 0.7
  EXPECT_EQ(kept(filter_logits(four(), p)), (std::vector<bool>{false, true, false, true}));
  p.top_p = 0.76;  // needs 0.15 too
  EXPECT_EQ(kept(filter_logits(four(), p)), (std::vector<bool>{true, true, false, true}));
  p.top_p = 0.1;  // the top token always stays
  EXPECT_EQ(kept(filter_logits(four(), p)), (std::vector<bool>{false, true, false, false}));
}

TEST(Sampler, MinP) {
  SamplingParams p;
  p.min_p = 0.3;  // threshold 0.15
  EXPECT_EQ(kept(filter_logits(four(), p)), (std::vector<bool>{true, true, false, true}));
}

TEST(Sampler, InverseCdfFollowsTheDistributionAndNeverPicksFilteredTokens) {
  SamplingParams p;
  p.top_k = 3;
  std::vector<int64_t> counts(4, 0);
  const int n = 4000;
  std::vector<double> u(n);
  for (int i = 0; i < n; ++i) u[i] = (i + 1.0) / n;  // evenly spaced in (0, 1]
  auto tokens = sample_tokens(four().expand({n, 4}).contiguous(), p, u);
  for (int i = 0; i < n; ++i) counts[tokens[i].item<int64_t>()]++;
  EXPECT_EQ(counts[2], 0);
  const double z = 0.9;  // renormalized over the top 3
  EXPECT_NEAR(counts[1] / double(n), 0.5 / z, 0.01);
  EXPECT_NEAR(counts[3] / double(n), 0.25 / z, 0.01);
  EXPECT_NEAR(counts[0] / double(n), 0.15 / z, 0.01);
}

TEST(Sampler, ValidateNamesTheField) {
  SamplingParams p;
  p.top_p = 0;
  EXPECT_SELFRL_ERROR(p.validate(), "top_p");
  p = {};
  p.temperature = -1;
  EXPECT_SELFRL_ERROR(p.validate(), "temperature");
  p = {};
  p.num_samples = 0;
  EXPECT_SELFRL_ERROR(p.validate(), "num_samples");
}
