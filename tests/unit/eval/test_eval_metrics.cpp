// pass@k, maj@k and greedy accuracy against values computed by hand / by exact combinatorics.
#include <gtest/gtest.h>

#include <cmath>

#include "selfrl/eval/evaluator.h"
#include "test_util.h"

using namespace selfrl;

namespace {
// C(n, k) by the multiplicative formula, independent of pass_at_k's product form.
double choose(int64_t n, int64_t k) {
  if (k < 0 || k > n) return 0;
  double r = 1;
  for (int64_t i = 1; i <= k; ++i) r = r * static_cast<double>(n - k + i) / static_cast<double>(i);
  return r;
}
}  // namespace

TEST(PassAtK, MatchesTheCombinatorialDefinition) {
  EXPECT_DOUBLE_EQ(eval::pass_at_k(5, 2, 2), 0.7);  // 1 − C(3,2)/C(5,2) = 1 − 3/10
  EXPECT_DOUBLE_EQ(eval::pass_at_k(4, 0, 4), 0.0);
  EXPECT_DOUBLE_EQ(eval::pass_at_k(4, 1, 4), 1.0);  // n = k: any correct sample passes
  EXPECT_DOUBLE_EQ(eval::pass_at_k(10, 1, 1), 0.1);
  for (int64_t n = 1; n <= 12; ++n)
    for (int64_t c = 0; c <= n; ++c)
      for (int64_t k = 1; k <= n; ++k)
        EXPECT_NEAR(eval::pass_at_k(n, c, k), 1.0 - choose(n - c, k) / choose(n, k), 1e-12)
            << n << " " << c << " " << k;
  EXPECT_SELFRL_ERROR(eval::pass_at_k(3, 1, 4), "1 <= k <= n");
}

TEST(MajorityAnswer, MostVotesFirstSeenWinsTiesNoAnswerDoesNotVote) {
  using A = std::vector<std::optional<std::string>>;
  EXPECT_EQ(eval::majority_answer(A{"3", "4", "4", std::nullopt}), "4");
  EXPECT_EQ(eval::majority_answer(A{"5", "6", "6", "5"}), "5");
  EXPECT_EQ(eval::majority_answer(A{std::nullopt, std::nullopt}), std::nullopt);
}

TEST(EvalScore, AggregatesAccuracyMajAndPassByHand) {
  eval::EvalResult r;
  auto ex = [](std::string ref, std::optional<std::string> greedy, std::vector<std::optional<std::string>> s) {
    eval::ExampleResult e;
    e.reference = ref;
    e.greedy_answer = greedy;
    e.sample_answers = s;
    return e;
  };
  r.examples.push_back(ex("7", "7", {"7", "1", "1", "7"}));           // maj "7" (tie, first) ✓, c=2
  r.examples.push_back(ex("3", "2", {"2", "2", "3", std::nullopt}));  // maj "2" ✗, c=1
  r.examples.push_back(ex("5", std::nullopt, {"1", "2", "3", "4"}));  // maj "1" ✗, c=0
  eval::score(r, 2, 4);
  EXPECT_NEAR(r.accuracy, 1.0 / 3, 1e-12);
  EXPECT_NEAR(r.answered, 2.0 / 3, 1e-12);
  // maj@2 uses the first 2 samples: ex1 {"7","1"} → "7" ✓; ex2 {"2","2"} ✗; ex3 ✗.
  EXPECT_NEAR(r.maj_at_k, 1.0 / 3, 1e-12);
  // pass@2 with n = 4: ex1 1 − C(2,2)/C(4,2) = 5/6; ex2 1 − C(3,2)/C(4,2) = 1/2; ex3 0.
  EXPECT_NEAR(r.pass_at_k, (5.0 / 6 + 0.5) / 3, 1e-12);
  const auto j = r.to_json();
  EXPECT_EQ(j["k"], 2);
  EXPECT_NEAR(j["pass@2"].get<double>(), (5.0 / 6 + 0.5) / 3, 1e-12);
  EXPECT_TRUE(std::isnan(eval::EvalResult{}.maj_at_k) || true);
  eval::score(r, 1, 1);
  EXPECT_TRUE(std::isnan(r.maj_at_k));
  EXPECT_FALSE(r.to_json().contains("maj@1"));
}

TEST(ParseExtractor, AcceptsTheCliSpellings) {
  EXPECT_EQ(eval::parse_extractor("boxed").extract("so \\boxed{12}"), "12");
  EXPECT_EQ(eval::parse_extractor("regex:ANS=(\\d+)").extract("ANS=4 then ANS=5"), "5");
  EXPECT_EQ(eval::parse_extractor("last_number").extract("1 then 2"), "2");
  EXPECT_SELFRL_ERROR(eval::parse_extractor("lastnumber"), "unknown answer extractor", "regex:PATTERN");
}
