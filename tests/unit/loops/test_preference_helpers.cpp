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

TEST(MetaRewarding, ParsesTheVerdictAndFillsTheTemplate) {
  EXPECT_EQ(parse_meta_verdict("A is vague. Winner: B"), 1);
  EXPECT_EQ(parse_meta_verdict("winner: **a** because ..."), 0);
  EXPECT_EQ(parse_meta_verdict("Winner: B, no wait. WINNER: A"), 0);  // the last verdict counts
  EXPECT_EQ(parse_meta_verdict("Winner: neither"), std::nullopt);
  EXPECT_EQ(parse_meta_verdict("A"), std::nullopt);
  // Placeholders are replaced once; text inside a replacement is not scanned again.
  EXPECT_EQ(fill_meta_judge_template("{prompt}|{response}|{judgement_a}|{judgement_b}", "p", "{judgement_a}", "x", "y"),
            "p|{judgement_a}|x|y");
  for (const char* k : {"{prompt}", "{response}", "{judgement_a}", "{judgement_b}"})
    EXPECT_NE(default_meta_judge_template().find(k), std::string::npos) << k;
}

TEST(MetaRewarding, ChoiceCountsWinsOverBothOrders) {
  // Three judgements, every pair in both orders (A, B):
  //   (0,1) A → 0   (1,0) B → 0   (0,2) B → 2   (2,0) B → 0   (1,2) B → 2   (2,1) A → 2
  // wins: 0 → 3, 1 → 0, 2 → 3: chosen 0 (tie with 2: the lower index), rejected 1.
  std::vector<MetaVerdict> v = {{0, 1, 0}, {1, 0, 1}, {0, 2, 1}, {2, 0, 1}, {1, 2, 1}, {2, 1, 0}};
  auto c = meta_judge_choice(3, v);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->first, 0u);
  EXPECT_EQ(c->second, 1u);
  // A judge that always answers "A" prefers each judgement once per pair: all tie, no pair.
  std::vector<MetaVerdict> biased = {{0, 1, 0}, {1, 0, 0}};
  EXPECT_FALSE(meta_judge_choice(2, biased));
  // Unparsable verdicts do not count; one parsed verdict decides.
  std::vector<MetaVerdict> one = {{0, 1, std::nullopt}, {1, 0, 0}};
  c = meta_judge_choice(2, one);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->first, 1u);
  EXPECT_EQ(c->second, 0u);
  EXPECT_FALSE(meta_judge_choice(2, {{0, 1, std::nullopt}}));
  // Rejected ties go to the higher index: wins 0 → 2, 1 → 0, 2 → 0.
  std::vector<MetaVerdict> two = {{0, 1, 0}, {0, 2, 0}};
  c = meta_judge_choice(3, two);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->first, 0u);
  EXPECT_EQ(c->second, 2u);
}
