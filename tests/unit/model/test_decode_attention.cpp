// The CPU decode-attention passes (selfrl/model/decode_attention.h) against torch::matmul, on
// the shapes the model gives them: query rows of GQA groups, keys and values as views into a
// larger cache buffer (row stride = capacity), probabilities as a narrow() of a wider matrix,
// head sizes with and without a tail past the 8-float vectors.
#include "selfrl/model/decode_attention.h"

#include <gtest/gtest.h>

#include <torch/torch.h>

using selfrl::model::decode_attention_applies;
using selfrl::model::decode_attention_scores;
using selfrl::model::decode_attention_values;

namespace {

// Restores the process-wide switch when a test ends.
struct FusedSwitch {
  explicit FusedSwitch(bool on) : was(selfrl::model::fused_decode_attention_enabled()) {
    selfrl::model::set_fused_decode_attention(on);
  }
  ~FusedSwitch() { selfrl::model::set_fused_decode_attention(was); }
  bool was;
};

}  // namespace

TEST(DecodeAttention, ProductsMatchMatmulOnCacheViews) {
  FusedSwitch on(true);
  torch::manual_seed(3);
  torch::NoGradGuard no_grad;
  for (const int64_t d : {64, 80, 5, 128}) {
    for (const int64_t m : {1, 4, 7}) {
      SCOPED_TRACE("head_dim " + std::to_string(d) + ", rows " + std::to_string(m));
      const int64_t B = 3, kv = 2, capacity = 40, L = 29;
      auto kbuf = torch::randn({B, kv, capacity, d}), vbuf = torch::randn({B, kv, capacity, d});
      auto k = kbuf.narrow(2, 0, L), v = vbuf.narrow(2, 0, L);  // strided, as the cache hands them out
      auto q = torch::randn({B, kv, m, d});
      ASSERT_TRUE(decode_attention_applies(q, k, v));
      auto scores = decode_attention_scores(q, k);
      auto expected = torch::matmul(q, k.transpose(2, 3));
      ASSERT_EQ(scores.sizes(), expected.sizes());
      EXPECT_TRUE(torch::allclose(scores, expected, 1e-5, 1e-5)) << (scores - expected).abs().max().item<float>();

      // Probabilities as the shared-prefix path hands them: the last L columns of a wider matrix.
      auto wide = torch::softmax(torch::randn({B, kv, m, L + 6}), -1);
      auto probs = wide.narrow(-1, 6, L);
      auto out = decode_attention_values(probs, v);
      auto expected_out = torch::matmul(probs, v);
      ASSERT_EQ(out.sizes(), expected_out.sizes());
      EXPECT_TRUE(out.is_contiguous());
      EXPECT_TRUE(torch::allclose(out, expected_out, 1e-5, 1e-5)) << (out - expected_out).abs().max().item<float>();
    }
  }
  // A hand-checked case: one pair, two keys.
  auto q = torch::tensor({1.f, 2.f, 3.f}).view({1, 1, 1, 3});
  auto k = torch::tensor({1.f, 0.f, 1.f, -1.f, 0.5f, 2.f}).view({1, 1, 2, 3});
  auto s = decode_attention_scores(q, k);
  EXPECT_FLOAT_EQ(s[0][0][0][0].item<float>(), 4.f);  // 1 + 0 + 3
  EXPECT_FLOAT_EQ(s[0][0][0][1].item<float>(), 6.f);  // -1 + 1 + 6
  auto p = torch::tensor({0.25f, 0.75f}).view({1, 1, 1, 2});
  auto o = decode_attention_values(p, k);  // 0.25 * k0 + 0.75 * k1
  EXPECT_FLOAT_EQ(o[0][0][0][0].item<float>(), -0.5f);
  EXPECT_FLOAT_EQ(o[0][0][0][1].item<float>(), 0.375f);
  EXPECT_FLOAT_EQ(o[0][0][0][2].item<float>(), 1.75f);
}

// Where the passes do not apply, the model keeps torch::matmul: training (gradients), other
// dtypes, a prefill's many query rows, mismatched shapes, the switch off.
TEST(DecodeAttention, AppliesOnlyToInferenceInFloat32WithFewRows) {
  FusedSwitch on(true);
  auto q = torch::randn({2, 2, 3, 16}), k = torch::randn({2, 2, 9, 16}), v = torch::randn({2, 2, 9, 16});
  EXPECT_TRUE(decode_attention_applies(q, k, v));
  EXPECT_FALSE(decode_attention_applies(q.clone().requires_grad_(true), k, v));
  EXPECT_FALSE(decode_attention_applies(q.to(torch::kBFloat16), k.to(torch::kBFloat16), v.to(torch::kBFloat16)));
  EXPECT_FALSE(decode_attention_applies(torch::randn({2, 2, 65, 16}), k, v));  // prefill: BLAS
  EXPECT_TRUE(decode_attention_applies(torch::randn({2, 2, 65, 16}), k, v, /*max_rows=*/128));
  EXPECT_FALSE(decode_attention_applies(q, k, torch::randn({2, 2, 8, 16})));
  EXPECT_FALSE(decode_attention_applies(q, torch::randn({2, 2, 16, 9}).transpose(2, 3), v));  // head dim strided
  EXPECT_THROW(decode_attention_scores(q, torch::randn({2, 2, 9, 8})), c10::Error);
  selfrl::model::set_fused_decode_attention(false);
  EXPECT_FALSE(decode_attention_applies(q, k, v));
}
