// The LLM-as-judge reward with a fake judge: the judge prompts it sees, one batched call per
// group, the parse rule on hand-made judgements, the mean of the parsable ones, NaN when none
// parses, normalization, and the info / metrics a rollout dump and the trainer get.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "selfrl/rewards/judge_reward.h"
#include "selfrl/rewards/reward_pipeline.h"
#include "test_util.h"

using namespace selfrl::rewards;

namespace {

Group group_of(const std::string& prompt, const std::vector<std::string>& completions) {
  Group g;
  g.prompt = prompt;
  for (const auto& c : completions) {
    Sample s;
    s.completion = c;
    g.samples.push_back(s);
  }
  return g;
}

// A fake judge answering each judge prompt with the judgements scripted for the response it
// contains (the text after "R=" in the template below), and recording every request.
struct FakeJudge {
  std::map<std::string, std::vector<std::string>> script;  // response → judgements
  std::vector<JudgeRequest> requests;
  JudgeFn fn() {
    return [this](const JudgeRequest& r) {
      requests.push_back(r);
      std::vector<std::vector<std::string>> out;
      for (const auto& p : r.prompts) {
        const std::string response = p.substr(p.find("R=") + 2);
        out.push_back(script.at(response));
      }
      return out;
    };
  }
};

}  // namespace

TEST(JudgeReward, ParseRule) {
  EXPECT_EQ(parse_judge_score("Relevant and useful. Score: 4"), 4.0);
  EXPECT_EQ(parse_judge_score("Score: 1 ... on reflection, SCORE : 3"), 3.0);      // the last "Score:"
  EXPECT_EQ(parse_judge_score("score:2.5 although 5 points were possible"), 2.5);  // "Score:" beats later numbers
  EXPECT_EQ(parse_judge_score("4"), 4.0);                                          // a number alone
  EXPECT_EQ(parse_judge_score("I give 1, no, 2 points"), 2.0);                     // else the last number
  EXPECT_EQ(parse_judge_score("Score: 7"), std::nullopt);                          // outside [0, 5]
  EXPECT_EQ(parse_judge_score("Score: -1"), std::nullopt);
  EXPECT_EQ(parse_judge_score("excellent answer!"), std::nullopt);
  EXPECT_EQ(parse_judge_score(""), std::nullopt);
}

TEST(JudgeReward, FillsTheTemplateOnce) {
  EXPECT_EQ(fill_judge_template("Q={prompt} R={response} again {prompt}", "2+2?", "4 {prompt}"),
            "Q=2+2? R=4 {prompt} again 2+2?");
  const auto d = fill_judge_template(default_judge_template(), "What is 2 + 3?", "It is 5.");
  EXPECT_NE(d.find("Question: What is 2 + 3?\nResponse: It is 5.\n"), std::string::npos);
  EXPECT_EQ(d.find("{prompt}"), std::string::npos);
  EXPECT_EQ(d.find("{response}"), std::string::npos);
}

TEST(JudgeReward, MeanOfParsableJudgementsInOneBatchedCall) {
  FakeJudge fake;
  fake.script = {
      {"a", {"Good. Score: 4", "Score: 4", "fine, Score: 4"}},  // plain → 4
      {"b", {"Score: 1 then Score: 3", "Score: 3", "3"}},       // last Score:, number only → 3
      {"c", {"Score: 7", "no idea", "blah"}},                   // nothing parsable → NaN
      {"d", {"Score: 5", "garbage", "Score: 2"}},               // mixture: mean(5, 2) = 3.5
  };
  JudgeOptions o;
  o.judge_template = "Q={prompt} R={response}";
  o.num_judgements = 3;
  o.temperature = 0.9;
  o.max_new_tokens = 17;
  o.normalize = false;
  o.seed = 11;
  auto reward = make_judge_reward(fake.fn(), o);
  EXPECT_EQ(reward->name(), "judge");
  EXPECT_EQ(reward->metric_names(), std::vector<std::string>{"parse_rate"});
  const auto s = reward->score(group_of("what?", {"a", "b", "c", "d"}));

  ASSERT_EQ(fake.requests.size(), 1u);  // one batched call for the whole group
  const auto& req = fake.requests[0];
  EXPECT_EQ(req.prompts, (std::vector<std::string>{"Q=what? R=a", "Q=what? R=b", "Q=what? R=c", "Q=what? R=d"}));
  EXPECT_EQ(req.num_judgements, 3);
  EXPECT_DOUBLE_EQ(req.temperature, 0.9);
  EXPECT_EQ(req.max_new_tokens, 17);

  ASSERT_EQ(s.scores.size(), 4u);
  EXPECT_DOUBLE_EQ(s.scores[0], 4.0);
  EXPECT_DOUBLE_EQ(s.scores[1], 3.0);
  EXPECT_TRUE(std::isnan(s.scores[2]));
  EXPECT_DOUBLE_EQ(s.scores[3], 3.5);

  // What a rollout dump shows: every judgement text, its parsed points, the parse rate.
  EXPECT_EQ(s.info["judgements"][3], (nlohmann::json{"Score: 5", "garbage", "Score: 2"}));
  EXPECT_EQ(s.info["judge_scores"][1], (nlohmann::json{3.0, 3.0, 3.0}));
  EXPECT_EQ(s.info["judge_scores"][2], (nlohmann::json{nullptr, nullptr, nullptr}));
  EXPECT_DOUBLE_EQ(s.info["parse_rate"].get<double>(), 8.0 / 12.0);
  EXPECT_DOUBLE_EQ(s.metrics.at("parse_rate"), 8.0 / 12.0);

  // Another group is a new call with another seed; the same group again, the same seed.
  reward->score(group_of("again", {"a", "b"}));
  reward->score(group_of("what?", {"a", "b", "c", "d"}));
  ASSERT_EQ(fake.requests.size(), 3u);
  EXPECT_NE(fake.requests[1].seed, fake.requests[0].seed);
  EXPECT_EQ(fake.requests[2].seed, fake.requests[0].seed);
}

TEST(JudgeReward, NormalizesToUnitIntervalAndCountsMissingJudgements) {
  FakeJudge fake;
  fake.script = {{"x", {"Score: 5"}}, {"y", {"Score: 2", "Score: 3"}}};  // x answers 1 of 2
  JudgeOptions o;
  o.judge_template = "R={response}";
  o.num_judgements = 2;
  auto reward = make_judge_reward(fake.fn(), o, "my_judge");
  const auto s = reward->score(group_of("p", {"x", "y"}));
  EXPECT_DOUBLE_EQ(s.scores[0], 1.0);  // 5 / 5
  EXPECT_DOUBLE_EQ(s.scores[1], 2.5 / 5.0);
  EXPECT_DOUBLE_EQ(s.metrics.at("parse_rate"), 3.0 / 4.0);  // the missing judgement counts as unparsed
}

TEST(JudgeReward, InfoKeepsTheTailOfLongJudgementsAsValidUtf8) {
  FakeJudge fake;
  std::string rant;
  for (int i = 0; i < 100; ++i) rant += "é";  // 2 bytes each
  fake.script = {{"x", {rant + " Score: 2"}}};
  JudgeOptions o;
  o.judge_template = "R={response}";
  o.num_judgements = 1;
  o.max_info_chars = 21;
  auto reward = make_judge_reward(fake.fn(), o);
  const auto s = reward->score(group_of("p", {"x"}));
  const std::string shown = s.info["judgements"][0][0];
  EXPECT_EQ(shown.rfind("...", 0), 0u);
  EXPECT_NE(shown.find("Score: 2"), std::string::npos);
  EXPECT_LE(shown.size(), 3u + 21u);
  EXPECT_NO_THROW(s.info.dump());  // strict UTF-8: no character was cut in half
}

TEST(JudgeReward, PipelineAveragesParseRateOverGroupsAndCountsUnscorable) {
  FakeJudge fake;
  fake.script = {{"good", {"Score: 4"}}, {"bad", {"nope"}}};
  JudgeOptions o;
  o.judge_template = "R={response}";
  o.num_judgements = 1;
  RewardPipeline p;
  p.add(make_judge_reward(fake.fn(), o), 1.0);
  EXPECT_EQ(p.metric_names(), std::vector<std::string>{"judge/parse_rate"});
  const auto r = p.score({group_of("p", {"good", "bad"}), group_of("q", {"good", "good"})});
  EXPECT_EQ(fake.requests.size(), 2u);  // one call per group
  EXPECT_DOUBLE_EQ(r.metric_sums.at("judge/parse_rate").first, 0.5 + 1.0);
  EXPECT_DOUBLE_EQ(r.metric_sums.at("judge/parse_rate").second, 2.0);
  EXPECT_EQ(r.failures.at("judge"), 1);
  EXPECT_TRUE(std::isnan(r.rewards_per_func[1][0].item<double>()));
  EXPECT_DOUBLE_EQ(r.rewards_per_func[0][0].item<double>(), 0.8);
  EXPECT_TRUE(r.group_info[0]["judge"].contains("judgements"));
}

TEST(JudgeReward, RejectsBadOptionsAndShortAnswers) {
  FakeJudge fake;
  JudgeOptions o;
  o.num_judgements = 0;
  EXPECT_SELFRL_ERROR(make_judge_reward(fake.fn(), o), "num_judgements must be >= 1");
  EXPECT_SELFRL_ERROR(make_judge_reward(nullptr), "no judge callable");
  // A judge that answers fewer prompts than asked is an error the pipeline turns into NaN.
  auto broken = make_judge_reward([](const JudgeRequest&) { return std::vector<std::vector<std::string>>{}; });
  EXPECT_SELFRL_ERROR(broken->score(group_of("p", {"x"})), "the judge answered 0 of 1 judge prompts");
}
