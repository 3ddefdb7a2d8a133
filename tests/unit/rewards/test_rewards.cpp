// Rewards on hand-made groups: extraction, majority ties, empty answers, Borda by hand,
// verifier, format, soft overlong, and a pipeline that survives throwing / NaN rewards.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "selfrl/rewards/builtin_rewards.h"
#include "selfrl/rewards/reward_pipeline.h"
#include "selfrl/trainers/advantages.h"
#include "test_util.h"

using namespace selfrl::rewards;

namespace {
Group group_of(const std::vector<std::string>& texts, nlohmann::json example = nullptr) {
  Group g;
  g.example = std::move(example);
  for (const auto& t : texts) {
    Sample s;
    s.completion = t;
    g.samples.push_back(s);
  }
  return g;
}
}  // namespace

TEST(AnswerExtractor, Kinds) {
  const auto num = AnswerExtractor::create("last_number");
  EXPECT_EQ(num.extract("12 + 30 = 42."), "42");
  EXPECT_EQ(num.extract("the total is 1,234.50 dollars"), "1234.5");
  EXPECT_EQ(num.extract("it is -7"), "-7");
  EXPECT_EQ(num.extract("no digits here"), std::nullopt);
  const auto boxed = AnswerExtractor::create("boxed");
  EXPECT_EQ(boxed.extract("so \\boxed{1} no wait \\boxed{\\frac{1}{2}}"), "\\frac{1}{2}");
  EXPECT_EQ(boxed.extract("\\boxed{unclosed"), std::nullopt);
  const auto re = AnswerExtractor::create("regex", "answer:\\s*(\\w+)");
  EXPECT_EQ(re.extract("answer: cat ... answer: dog"), "dog");
  EXPECT_EQ(AnswerExtractor::create("exact").extract("  yes \n"), "yes");
  EXPECT_SELFRL_ERROR(AnswerExtractor::create("regex", "(unclosed"), "invalid answer pattern", "offset");
  EXPECT_SELFRL_ERROR(AnswerExtractor::create("llm"), "unknown answer extractor 'llm'");
  EXPECT_EQ(normalize_answer("007"), "7");
  EXPECT_EQ(normalize_answer("-0.0"), "0");
  EXPECT_EQ(normalize_answer("+3.10"), "3.1");
}

TEST(ConsensusReward, MajorityTiesAndEmptyAnswers) {
  auto r = make_consensus_reward(AnswerExtractor::create("last_number"));
  auto s = r->score(group_of({"= 5", "= 7", "= 5", "none", "= 7.0"}));
  // 5 and 7 tie at two votes each; the first seen (5) wins.
  EXPECT_EQ(s.scores, (std::vector<double>{1, 0, 1, 0, 0}));
  EXPECT_EQ(s.info["majority"], "5");
  EXPECT_DOUBLE_EQ(s.info["vote_share"].get<double>(), 0.4);
  s = r->score(group_of({"?", "?"}));
  EXPECT_EQ(s.scores, (std::vector<double>{0, 0}));
  EXPECT_TRUE(s.info["majority"].is_null());
}

TEST(BordaReward, HandComputed) {
  // Self-certainties 3, 2, 1, 0.5 → ranks 1..4 → weights (4,3,2,1)^1.
  // Answers A, B, B, A: A = 4 + 1 = 5, B = 3 + 2 = 5 → tie, A (first tallied) wins at p = 1;
  // at p = 2: A = 16 + 1 = 17, B = 9 + 4 = 13 → A; at p = 0.5: A = 2 + 1 = 3, B = 1.732 + 1.414 = 3.146 → B.
  Group g = group_of({"A", "B", "B", "A"});
  const float sc[] = {3, 2, 1, 0.5};
  for (size_t i = 0; i < 4; ++i) g.samples[i].token_self_certainty = {sc[i], sc[i]};
  EXPECT_EQ(make_borda_reward(AnswerExtractor::create("exact"), 2.0)->score(g).scores,
            (std::vector<double>{1, 0, 0, 1}));
  EXPECT_EQ(make_borda_reward(AnswerExtractor::create("exact"), 0.5)->score(g).scores,
            (std::vector<double>{0, 1, 1, 0}));
}

// consensus_min_vote_share: the majority of {5, 5, 5, 7, none} holds 3 of the 5 samples (0.6,
// the unanswered sample counts in the denominator): kept at 0.6, zeroed at 0.61 and 0.8.
TEST(ConsensusReward, MinVoteShareZeroesUnconfidentGroups) {
  const auto g = group_of({"= 5", "= 5", "= 7", "none", "= 5"});
  const auto e = AnswerExtractor::create("last_number");
  auto kept = make_consensus_reward(e, 0.6)->score(g);
  EXPECT_EQ(kept.scores, (std::vector<double>{1, 1, 0, 0, 1}));
  EXPECT_FALSE(kept.info.contains("below_min_vote_share"));
  for (double share : {0.61, 0.8}) {
    auto zeroed = make_consensus_reward(e, share)->score(g);
    EXPECT_EQ(zeroed.scores, (std::vector<double>(5, 0.0))) << share;
    EXPECT_EQ(zeroed.info["below_min_vote_share"], true);
    EXPECT_EQ(zeroed.info["majority"], "5");  // still reported
  }
  EXPECT_SELFRL_ERROR(make_consensus_reward(e, 1.5), "min_vote_share must be in [0, 1]");
}

// Borda's filter counts the samples of the winning answer: at p = 0.5 above, B wins with 2 of 4
// samples (0.5): kept at 0.5, zeroed at 0.75. At p = 2, A wins, also with 2 of 4.
TEST(BordaReward, MinVoteShareCountsTheWinnersSamples) {
  Group g = group_of({"A", "B", "B", "A"});
  const float sc[] = {3, 2, 1, 0.5};
  for (size_t i = 0; i < 4; ++i) g.samples[i].token_self_certainty = {sc[i], sc[i]};
  const auto e = AnswerExtractor::create("exact");
  EXPECT_EQ(make_borda_reward(e, 0.5, 0.5)->score(g).scores, (std::vector<double>{0, 1, 1, 0}));
  EXPECT_EQ(make_borda_reward(e, 0.5, 0.75)->score(g).scores, (std::vector<double>(4, 0.0)));
  EXPECT_EQ(make_borda_reward(e, 2.0, 0.75)->score(g).scores, (std::vector<double>(4, 0.0)));
  EXPECT_EQ(make_borda_reward(e, 2.0, 0.5)->score(g).scores, (std::vector<double>{1, 0, 0, 1}));
}

TEST(SelfCertaintyReward, MeanOverTokensEmptyIsUnscorable) {
  Group g = group_of({"a", ""});
  g.samples[0].token_self_certainty = {1.0f, 2.0f, 4.5f};
  const auto s = make_self_certainty_reward()->score(g);
  EXPECT_DOUBLE_EQ(s.scores[0], 2.5);
  EXPECT_TRUE(std::isnan(s.scores[1]));
}

TEST(Rewards, VerifierFormatAndLength) {
  auto v = make_verifier_reward(AnswerExtractor::create("last_number"));
  EXPECT_EQ(v->score(group_of({"= 42", "= 41", "42.0"}, {{"answer", "42"}})).scores, (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(v->score(group_of({"= 42"}, {{"answer", 42}})).scores, (std::vector<double>{1}));
  EXPECT_SELFRL_ERROR(v->score(group_of({"1"}, {{"label", 1}})), "no 'answer' field");
  auto f = make_format_reward("^<think>.*</think>");
  EXPECT_EQ(f->score(group_of({"<think>x</think> 4", "4"})).scores, (std::vector<double>{1, 0}));
  // DAPO: max 20, cache 5 → lengths ≤ 15: 0; 18: −3/5; 21: −1.
  EXPECT_DOUBLE_EQ(soft_overlong_punishment(15, 20, 5), 0.0);
  EXPECT_DOUBLE_EQ(soft_overlong_punishment(18, 20, 5), -0.6);
  EXPECT_DOUBLE_EQ(soft_overlong_punishment(20, 20, 5), -1.0);
  EXPECT_DOUBLE_EQ(soft_overlong_punishment(21, 20, 5), -1.0);
  EXPECT_SELFRL_ERROR(make_soft_overlong_reward(10, 0), "overlong_cache");
}

TEST(RewardPipeline, ThrowingAndNanRewardsAreUnscorableNotFatal) {
  RewardPipeline p;
  p.add(make_consensus_reward(AnswerExtractor::create("last_number")), 1.0);
  p.add(make_function_reward("flaky",
                             [](const Group& g) -> std::vector<double> {
                               if (g.prompt == "bad") throw std::runtime_error("judge timed out");
                               return std::vector<double>(g.samples.size(), std::nan(""));
                             }),
        0.5);
  p.add(make_function_reward("short", [](const Group&) { return std::vector<double>{1.0}; }), 1.0);
  std::vector<Group> groups = {group_of({"1", "1", "2"}), group_of({"3", "4", "4"})};
  groups[1].prompt = "bad";
  const auto res = p.score(groups);
  ASSERT_EQ(res.rewards_per_func.sizes(), (std::vector<int64_t>{6, 3}));
  EXPECT_EQ(res.failures.at("flaky"), 6);
  EXPECT_EQ(res.failures.at("short"), 6);  // wrong number of scores for both groups
  EXPECT_NE(res.group_info[1]["flaky"]["error"].get<std::string>().find("judge timed out"), std::string::npos);
  // Consensus still scores every sample, so no row is wholly unscorable.
  const auto adv = selfrl::trainers::compute_advantages(res.rewards_per_func, p.weights(), 3,
                                                        selfrl::trainers::ScaleRewards::kGroup);
  EXPECT_EQ(adv.num_unscorable, 0);
  EXPECT_GT(adv.advantages[0].item<double>(), 0);
  EXPECT_LT(adv.advantages[2].item<double>(), 0);
}

// Vote-only samples (a paraphrase's completions) join the vote after the group's own samples and
// are never scored. Own {5, 7, 7}: 7 wins alone; with votes {5, 5}: 5 has 3 votes to 7's 2. Own
// {5, 7} with votes {7, 5}: 2-2, the tie goes to 5 (seen first). Votes {9, 9, 9}: 9 wins and no
// own sample holds it. vote_share stays the winner's share of the own samples.
TEST(ConsensusReward, VoteSamplesJoinTheVoteButAreNotScored) {
  const auto r = make_consensus_reward(AnswerExtractor::create("last_number"));
  auto with_votes = [](Group g, const std::vector<std::string>& votes) {
    g.vote_samples = group_of(votes).samples;
    return g;
  };
  EXPECT_EQ(r->score(group_of({"= 5", "= 7", "= 7"})).scores, (std::vector<double>{0, 1, 1}));
  const auto s = r->score(with_votes(group_of({"= 5", "= 7", "= 7"}), {"= 5", "= 5"}));
  EXPECT_EQ(s.scores, (std::vector<double>{1, 0, 0}));
  EXPECT_EQ(s.info["majority"], "5");
  EXPECT_DOUBLE_EQ(s.info["vote_share"].get<double>(), 1.0 / 3.0);
  EXPECT_EQ(s.info["num_vote_samples"], 2);
  EXPECT_FALSE(r->score(group_of({"= 5"})).info.contains("num_vote_samples"));
  EXPECT_EQ(r->score(with_votes(group_of({"= 5", "= 7"}), {"= 7", "= 5"})).scores, (std::vector<double>{1, 0}));
  EXPECT_EQ(r->score(with_votes(group_of({"= 5", "= 7"}), {"= 9", "= 9", "= 9"})).scores, (std::vector<double>{0, 0}));
}

// Borda ranks own and vote samples together: own A (certainty 3), B (1); votes B (2), B (0.5).
// Ranks A 1, B(vote) 2, B 3, B(vote) 4 → weights at p = 1: A = 4, B = 3 + 2 + 1 = 6 → B wins;
// without the votes A (weight 2) beats B (1).
TEST(BordaReward, VoteSamplesAreRankedWithTheGroup) {
  Group g = group_of({"A", "B"});
  g.samples[0].token_self_certainty = {3};
  g.samples[1].token_self_certainty = {1};
  const auto r = make_borda_reward(AnswerExtractor::create("exact"), 1.0);
  EXPECT_EQ(r->score(g).scores, (std::vector<double>{1, 0}));
  g.vote_samples = group_of({"B", "B"}).samples;
  g.vote_samples[0].token_self_certainty = {2};
  g.vote_samples[1].token_self_certainty = {0.5};
  const auto s = r->score(g);
  EXPECT_EQ(s.scores, (std::vector<double>{0, 1}));
  EXPECT_EQ(s.info["winner"], "B");
  EXPECT_EQ(s.info["num_vote_samples"], 2);
}
