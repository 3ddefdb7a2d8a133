// Chunked logprobs / entropy / self-certainty equal the naive full-logits computation, in
// values and in gradients, for any chunk size and temperature.
#include "selfrl/model/token_logprobs.h"

#include <gtest/gtest.h>

#include <cmath>

#include "test_util.h"

using selfrl::model::token_logprobs;
using selfrl::model::token_logprobs_naive;

namespace {
double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }
}  // namespace

TEST(TokenLogprobs, ChunkedEqualsNaiveValuesAndGradients) {
  torch::manual_seed(0);
  for (double temperature : {1.0, 0.7}) {
    for (int64_t chunk : {1, 5, 7, 1000}) {
      auto h = torch::randn({3, 7, 16}, torch::kDouble).requires_grad_(true);
      auto w = torch::randn({50, 16}, torch::kDouble).requires_grad_(true);
      auto t = torch::randint(0, 50, {3, 7}, torch::kLong);
      auto gl = torch::randn({3, 7}, torch::kDouble), ge = torch::randn({3, 7}, torch::kDouble),
           gs = torch::randn({3, 7}, torch::kDouble);
      auto run = [&](bool chunked) {
        auto s = chunked ? token_logprobs(h, w, t, temperature, chunk) : token_logprobs_naive(h, w, t, temperature);
        auto loss = (s.logprobs.to(torch::kDouble) * gl).sum() + (s.entropy.to(torch::kDouble) * ge).sum() +
                    (s.self_certainty.to(torch::kDouble) * gs).sum();
        auto grads = torch::autograd::grad({loss}, {h, w});
        return std::make_tuple(s, grads[0], grads[1]);
      };
      auto [sc, ghc, gwc] = run(true);
      auto [sn, ghn, gwn] = run(false);
      EXPECT_LT(max_diff(sc.logprobs, sn.logprobs), 1e-5);
      EXPECT_LT(max_diff(sc.entropy, sn.entropy), 1e-5);
      EXPECT_LT(max_diff(sc.self_certainty, sn.self_certainty), 1e-5);
      EXPECT_LT(max_diff(ghc, ghn), 1e-4) << "chunk " << chunk << " T " << temperature;
      EXPECT_LT(max_diff(gwc, gwn), 1e-4) << "chunk " << chunk << " T " << temperature;
    }
  }
}

TEST(TokenLogprobs, SingleGradientPathsAndKnownValues) {
  // Uniform logits: entropy log V, self-certainty 0, logprob −log V.
  auto h = torch::zeros({1, 2, 4});
  auto w = torch::randn({10, 4});
  auto s = token_logprobs(h, w, torch::tensor({{3, 4}}, torch::kLong));
  EXPECT_NEAR(s.entropy[0][0].item<float>(), std::log(10.0), 1e-5);
  EXPECT_NEAR(s.self_certainty[0][1].item<float>(), 0.0, 1e-5);
  EXPECT_NEAR(s.logprobs[0][0].item<float>(), -std::log(10.0), 1e-5);
  // Only logprobs used: the other outputs get undefined gradients, which must be fine.
  auto h2 = torch::randn({2, 3, 4}).requires_grad_(true);
  auto w2 = torch::randn({10, 4}).requires_grad_(true);
  auto t = torch::randint(0, 10, {2, 3}, torch::kLong);
  token_logprobs(h2, w2, t, 1.0, 2).logprobs.sum().backward();
  auto g1 = h2.grad().clone();
  h2.grad().zero_();
  token_logprobs_naive(h2, w2, t).logprobs.sum().backward();
  EXPECT_LT(max_diff(g1, h2.grad()), 1e-5);
}

TEST(TokenLogprobs, RejectsBadArguments) {
  auto h = torch::randn({1, 2, 4});
  auto w = torch::randn({10, 4});
  EXPECT_SELFRL_ERROR(token_logprobs(h, w, torch::tensor({{3, 10}}, torch::kLong)), "target id 10", "[0, 10)");
  EXPECT_SELFRL_ERROR(token_logprobs(h, torch::randn({10, 5}), torch::tensor({{3, 1}}, torch::kLong)),
                      "does not match");
  EXPECT_SELFRL_ERROR(token_logprobs(h, w, torch::tensor({{3, 1}}, torch::kLong), 0.0), "temperature");
}
