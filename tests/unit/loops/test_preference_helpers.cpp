// Judge-score parsing (self-rewarding) and ScPO's pair choice and vote-margin weight.
#include <gtest/gtest.h>

#include "selfrl/loops/preference_loops.h"

using namespace selfrl::loops;
using A = std::vector<std::optional<std::string>>;

TEST(SelfRewarding, ParsesTheJudgeScore) {
  EXPECT_EQ(parse_judge_score("relevant, useful. Score: 4"), 4.0);
  EXPECT_EQ(parse_judge_score("1 point, then 2 more. score:3.5 and later 1"), 3.5);  // "Score:" wins
  EXPECT_EQ(parse_judge_score("I give it 2 points"), 2.0);                           // else the last number
  EXPECT_EQ(parse_judge_score("Score: 7"), std::nullopt);                            // outside [0, 5]
  EXPECT_EQ(parse_judge_score("no number"), std::nullopt);
  EXPECT_NE(default_judge_template().find("{response}"), std::string::npos);
}

TEST(Scpo, ChoosesMostAndLeastVotedWithTheMarginWeight) {
  // votes: 4 → 3, 5 → 1, none → 0 (k = 5)
  const auto c = scpo_choose(A{"4", "5", "4", std::nullopt, "4"}, 0.5);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->chosen, 0u);
  EXPECT_EQ(c->rejected, 3u);
  EXPECT_EQ(c->chosen_votes, 3);
  EXPECT_EQ(c->rejected_votes, 0);
  EXPECT_DOUBLE_EQ(c->weight, 3.0 / 5);
  EXPECT_DOUBLE_EQ(c->vote_share, 3.0 / 5);
  const auto d = scpo_choose(A{"1", "2", "2", "2"}, 0.5);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->rejected, 0u);
  EXPECT_DOUBLE_EQ(d->weight, (3.0 - 1.0) / 4);
  EXPECT_FALSE(scpo_choose(A{"1", "2", "2", "2"}, 0.8));  // vote share 0.75 < 0.8
  EXPECT_FALSE(scpo_choose(A{"1", "2"}, 0.0));            // tie: no preference
  EXPECT_FALSE(scpo_choose(A{std::nullopt, std::nullopt}, 0.0));
}
