// B-STaR's balance score and configuration choice, SEC's TD(0) update and Boltzmann
// probabilities, against values worked out by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "selfrl/loops/bstar.h"
#include "selfrl/loops/sec.h"
#include "test_util.h"

using namespace selfrl::loops;

TEST(BStar, BalanceScoreByHand) {
  // min(n'/n*, 1) · n'/n
  EXPECT_DOUBLE_EQ(balance_score(4, 2, 4), 0.5 * 0.5);
  EXPECT_DOUBLE_EQ(balance_score(3, 3, 2), 1.0 * 1.0);  // more correct than n*: capped at 1
  EXPECT_DOUBLE_EQ(balance_score(5, 1, 4), 0.25 * 0.2);
  EXPECT_DOUBLE_EQ(balance_score(0, 0, 4), 0.0);  // nothing selected
  EXPECT_SELFRL_ERROR(balance_score(1, 2, 4), "more correct");
}

TEST(BStar, StatsOverQueriesByHand) {
  // Query A: scores 0.9 0.2 0.8 0.6, correct T F T T, texts a b a c (two distinct correct: a, c).
  // Query B: scores 0.1 0.7, correct F F.
  BStarQuery a{{0.9, 0.2, 0.8, 0.6}, {true, false, true, true}, {"a", "b", "a", "c"}};
  BStarQuery b{{0.1, 0.7}, {false, false}, {"x", "y"}};
  const auto s = bstar_stats({a, b}, 0.5, 2);
  // A selects {0.9 a ✓, 0.8 a ✓, 0.6 c ✓}: n = 3, distinct correct n' = 2 → min(2/2,1)·2/3.
  // B selects {0.7 ✗}: n = 1, n' = 0 → 0.
  EXPECT_NEAR(s.balance_score, (2.0 / 3 + 0) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(s.pass_at_k, 0.5);
  EXPECT_DOUBLE_EQ(s.distinct_correct, (2 + 0) / 2.0);
  EXPECT_DOUBLE_EQ(s.reward_at_k, 0.5);              // A's top (0.9) correct, B's top (0.7) wrong
  EXPECT_DOUBLE_EQ(s.selection_precision, 3.0 / 4);  // 3 correct of 4 selected
  EXPECT_DOUBLE_EQ(s.selected, 2.0);
  // A threshold of 0 selects everything in A: n = 4, n' = 2 → 2/4.
  EXPECT_NEAR(bstar_stats({a, b}, 0.0, 2).balance_score, (0.5 + 0) / 2, 1e-12);
}

TEST(BStar, ChoosesTheBestBalanceFirstOnTies) {
  std::vector<std::vector<BStarStats>> grid(2, std::vector<BStarStats>(2));
  grid[0][0].balance_score = 0.2;
  grid[0][1].balance_score = 0.5;
  grid[1][0].balance_score = 0.5;
  grid[1][1].balance_score = 0.1;
  const auto c = bstar_choose(grid);
  EXPECT_EQ(c.temperature_index, 0u);
  EXPECT_EQ(c.threshold_index, 1u);
  grid[1][1].balance_score = 0.9;
  EXPECT_EQ(bstar_choose(grid).temperature_index, 1u);
}

TEST(Sec, TdUpdateAndBoltzmannByHand) {
  EXPECT_DOUBLE_EQ(sec_td_update(0.0, 1.0, 0.5), 0.5);
  EXPECT_DOUBLE_EQ(sec_td_update(0.4, 0.2, 0.25), 0.25 * 0.2 + 0.75 * 0.4);
  const auto p = boltzmann_probabilities({0.0, std::log(3.0)}, 1.0);  // exp: 1, 3
  EXPECT_NEAR(p[0], 0.25, 1e-12);
  EXPECT_NEAR(p[1], 0.75, 1e-12);
  const auto q = boltzmann_probabilities({1.0, 2.0, 3.0}, 0.5);  // exp(2), exp(4), exp(6)
  const double z = std::exp(2) + std::exp(4) + std::exp(6);
  EXPECT_NEAR(q[0], std::exp(2) / z, 1e-12);
  EXPECT_NEAR(q[2], std::exp(6) / z, 1e-12);
}

TEST(Sec, CurriculumUpdatesOnlyDrawnArmsAndSamplesByProbability) {
  SecCurriculum c({"easy", "hard"}, 0.5, 1.0);
  c.update({0.8, std::nan("")});  // hard not drawn this step
  EXPECT_DOUBLE_EQ(c.values()[0], 0.4);
  EXPECT_DOUBLE_EQ(c.values()[1], 0.0);
  c.update({0.0, 1.2});
  EXPECT_DOUBLE_EQ(c.values()[0], 0.2);
  EXPECT_DOUBLE_EQ(c.values()[1], 0.6);
  const auto p = c.probabilities();
  EXPECT_NEAR(p[1], std::exp(0.6) / (std::exp(0.2) + std::exp(0.6)), 1e-12);
  std::mt19937_64 rng(1);
  int hard = 0;
  for (int i = 0; i < 4000; ++i) hard += c.sample(rng) == 1;
  EXPECT_NEAR(hard / 4000.0, p[1], 0.03);
}
