// The demo's task generator: answers recomputed independently, splits disjoint, formats and
// the self-knowledge F1 against hand-computed values.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "demo/arithmetic_task.h"
#include "demo/demo_pipeline.h"
#include "demo/evaluation.h"
#include "selfrl/rewards/answer_extractor.h"
#include "test_util.h"

using namespace selfrl;

namespace {

// Long addition on the decimal strings, digit by digit: independent of the generator's +.
std::string add_strings(const std::string& x, const std::string& y) {
  std::string out;
  int carry = 0;
  for (int i = static_cast<int>(x.size()) - 1, j = static_cast<int>(y.size()) - 1; i >= 0 || j >= 0 || carry;
       --i, --j) {
    const int s = (i >= 0 ? x[i] - '0' : 0) + (j >= 0 ? y[j] - '0' : 0) + carry;
    out.insert(out.begin(), static_cast<char>('0' + s % 10));
    carry = s / 10;
  }
  return out;
}

demo::TaskConfig small_config() {
  demo::TaskConfig c;
  c.num_seed = 50, c.num_unlabelled = 400, c.num_eval_dev = 40, c.num_eval_test = 60;
  c.seed = 7;
  return c;
}

}  // namespace

TEST(DemoTask, AnswersAreCorrectAndPromptsParse) {
  const auto s = demo::generate_splits(small_config());
  for (const auto* split : {&s.seed, &s.unlabelled, &s.eval_dev, &s.eval_test}) {
    for (const auto& it : *split) {
      // Recover the operands from the prompt text, not from the struct.
      const std::string p = it.prompt();
      ASSERT_EQ(p.rfind("Q: ", 0), 0u) << p;
      const size_t plus = p.find('+'), eq = p.find(" =");
      ASSERT_NE(plus, std::string::npos);
      ASSERT_NE(eq, std::string::npos);
      const std::string ra = p.substr(3, plus - 3), rb = p.substr(plus + 1, eq - plus - 1);
      const std::string a(ra.rbegin(), ra.rend()), b(rb.rbegin(), rb.rend());  // little-endian
      ASSERT_EQ(a.size(), b.size()) << "operands are padded to one width: " << p;
      const std::string sum = add_strings(a, b);  // the padded width always holds the sum
      ASSERT_EQ(sum.size(), a.size()) << p;
      EXPECT_EQ(it.answer(), std::string(sum.rbegin(), sum.rend())) << p;
      EXPECT_EQ(demo::ArithmeticItem::parse_answer(it.answer()), std::stoll(a) + std::stoll(b)) << p;
      EXPECT_EQ(a.size(), 4u) << "every operand is written in max_digits + 1 digits: " << p;
      EXPECT_EQ(std::to_string(std::max(it.a, it.b)).size(), static_cast<size_t>(it.difficulty)) << p;
      EXPECT_GE(it.difficulty, 1);
      EXPECT_LE(it.difficulty, 3);
      const auto row = it.to_json();
      EXPECT_EQ(row["prompt"], p);
      EXPECT_EQ(row["answer"], it.answer());
      const auto back = demo::ArithmeticItem::from_json(row);
      EXPECT_EQ(back.prompt(), it.prompt());
      EXPECT_EQ(back.a, it.a);
      EXPECT_EQ(back.b, it.b);
      EXPECT_EQ(it.can_prompt(), "Q: " + ra + "+" + rb + " ? CAN:");
      EXPECT_EQ(row["sum"], it.a + it.b);
    }
  }
}

TEST(DemoTask, SplitsAreDisjointSizedAndReproducible) {
  const auto cfg = small_config();
  const auto s = demo::generate_splits(cfg);
  EXPECT_EQ(s.seed.size(), 50u);
  EXPECT_EQ(s.unlabelled.size(), 400u);
  EXPECT_EQ(s.eval_dev.size(), 40u);
  EXPECT_EQ(s.eval_test.size(), 60u);
  std::set<std::string> seen;
  size_t total = 0;
  for (const auto* split : {&s.seed, &s.unlabelled, &s.eval_dev, &s.eval_test}) {
    for (const auto& it : *split) seen.insert(it.prompt()), ++total;
  }
  EXPECT_EQ(seen.size(), total) << "a prompt appears twice across the splits";
  const auto again = demo::generate_splits(cfg);
  ASSERT_EQ(again.unlabelled.size(), s.unlabelled.size());
  for (size_t i = 0; i < s.unlabelled.size(); ++i) EXPECT_EQ(again.unlabelled[i].prompt(), s.unlabelled[i].prompt());
  auto other = cfg;
  other.seed = 8;
  EXPECT_NE(demo::generate_splits(other).eval_test[0].prompt() + demo::generate_splits(other).eval_test[1].prompt(),
            s.eval_test[0].prompt() + s.eval_test[1].prompt());
}

TEST(DemoTask, BadConfigsAreErrors) {
  auto c = small_config();
  c.difficulty_weights = {1, 1};
  EXPECT_SELFRL_ERROR(demo::generate_splits(c), "difficulty_weights", "max_digits");
  c = small_config();
  c.difficulty_weights = {1, 0, 0};  // only 100 one-digit pairs exist
  EXPECT_SELFRL_ERROR(demo::generate_splits(c), "distinct items");
  EXPECT_SELFRL_ERROR(demo::ArithmeticItem::from_json({{"a", 1}}), "\"b\"");
}

TEST(DemoTask, FormatExamples) {
  demo::ArithmeticItem it;
  it.a = 37, it.b = 58, it.difficulty = 2, it.width = 3;
  EXPECT_EQ(it.prompt(), "Q: 7300+8500 =");
  EXPECT_EQ(it.answer(), "5900");
  it.a = 999, it.b = 1;
  EXPECT_EQ(it.answer(), "0001");
  EXPECT_SELFRL_ERROR(demo::ArithmeticItem::parse_answer("12a"), "not a reversed decimal answer");
}

TEST(DemoTask, ExtractAnswer) {
  EXPECT_EQ(demo::extract_answer("95"), "95");
  EXPECT_EQ(demo::extract_answer(" 1034 junk 7"), "1034");
  EXPECT_EQ(demo::extract_answer("no digits"), "");
  EXPECT_EQ(demo::extract_answer(""), "");
}

TEST(DemoTask, LengthFilterKeepsOnlyAnswersOfTheFormatsLength) {
  demo::ArithmeticItem it;
  it.a = 5621, it.b = 9055, it.width = 5, it.difficulty = 4;
  ASSERT_EQ(it.answer(), "676410");  // 14676 reversed, in width + 1 = 6 digits
  EXPECT_TRUE(demo::well_formed_answer(it, "676410"));
  EXPECT_TRUE(demo::well_formed_answer(it, "999999"));  // wrong but well formed: the filter reads no label
  EXPECT_FALSE(demo::well_formed_answer(it, "67641"));  // the final carry's padding dropped
  EXPECT_FALSE(demo::well_formed_answer(it, "6764100"));
  EXPECT_FALSE(demo::well_formed_answer(it, "67641a"));
  EXPECT_FALSE(demo::well_formed_answer(it, ""));

  // The consensus rewards' extractor: the first run of digits, of exactly 6 with the filter.
  const auto filtered = rewards::AnswerExtractor::create("regex", demo::answer_pattern(5, true));
  EXPECT_EQ(filtered.extract("676410"), std::optional<std::string>("676410"));
  EXPECT_EQ(filtered.extract(" 676410 junk 7"), std::optional<std::string>("676410"));
  EXPECT_EQ(filtered.extract("67641"), std::nullopt);
  EXPECT_EQ(filtered.extract("6764100"), std::nullopt);
  EXPECT_EQ(filtered.extract("67641 000000"), std::nullopt);  // only the first run of digits counts
  const auto plain = rewards::AnswerExtractor::create("regex", demo::answer_pattern(5, false));
  EXPECT_EQ(plain.extract("67641"), std::optional<std::string>("67641"));
  EXPECT_EQ(plain.extract("6764100"), std::optional<std::string>("6764100"));
}

TEST(DemoEvaluation, SelfKnowledgeF1MatchesHandComputedValues) {
  // predicted: Y Y N N Y N ; solved: Y N Y N Y N → tp 2, fp 1, fn 1, tn 2 → F1 = 4 / 6.
  const std::vector<bool> pred = {true, true, false, false, true, false};
  const std::vector<bool> solved = {true, false, true, false, true, false};
  const auto c = demo::confusion(pred, solved);
  EXPECT_EQ(c.tp, 2);
  EXPECT_EQ(c.fp, 1);
  EXPECT_EQ(c.fn, 1);
  EXPECT_EQ(c.tn, 2);
  EXPECT_DOUBLE_EQ(demo::self_knowledge_f1(pred, solved), 4.0 / 6.0);
  // Always "yes" with 1 of 4 solved: precision 1/4, recall 1 → F1 = 2·(1/4)/(5/4) = 0.4.
  EXPECT_DOUBLE_EQ(demo::self_knowledge_f1({true, true, true, true}, {true, false, false, false}), 0.4);
  // Never "yes": F1 0, also when nothing is solved.
  EXPECT_DOUBLE_EQ(demo::self_knowledge_f1({false, false}, {true, false}), 0.0);
  EXPECT_DOUBLE_EQ(demo::self_knowledge_f1({false, false}, {false, false}), 0.0);
  EXPECT_DOUBLE_EQ(demo::self_knowledge_f1({true}, {true}), 1.0);
  EXPECT_SELFRL_ERROR(demo::self_knowledge_f1({true}, {true, false}), "1 predictions for 2 outcomes");
}

TEST(DemoEvaluation, MajorityVote) {
  auto v = demo::majority_vote({"12", "", "13", "12", "13"});
  ASSERT_TRUE(v);
  EXPECT_EQ(v->answer, "12");  // tie 2:2 goes to the answer seen first
  EXPECT_DOUBLE_EQ(v->share, 2.0 / 5.0);
  v = demo::majority_vote({"7", "8", "8"});
  ASSERT_TRUE(v);
  EXPECT_EQ(v->answer, "8");
  EXPECT_FALSE(demo::majority_vote({"", ""}));
  EXPECT_FALSE(demo::majority_vote({}));
}

TEST(DemoConfigKnobs, SetParsesValuesAndNamesBadKeys) {
  demo::DemoConfig c;
  c.set("task.num_seed", "350");
  c.set("task.seed_difficulty_weights", "1, 3,6");
  c.set("rest_min_vote_share", "0.875");
  c.set("rest_pool_commuted", "0");
  c.set("stages", "rest_em,control");
  EXPECT_EQ(c.task.num_seed, 350);
  EXPECT_EQ(c.task.seed_difficulty_weights, (std::vector<double>{1, 3, 6}));
  EXPECT_DOUBLE_EQ(c.rest_min_vote_share, 0.875);
  EXPECT_FALSE(c.rest_pool_commuted);
  EXPECT_EQ(c.stages, (std::vector<std::string>{"rest_em", "control"}));
  EXPECT_SELFRL_ERROR(c.set("task.num_sed", "3"), "unknown demo knob", "task.num_seed");
  EXPECT_SELFRL_ERROR(c.set("sft_epochs", "3x"), "sft_epochs", "not an integer");
  EXPECT_SELFRL_ERROR(c.set("rest_learning_rate", ""), "rest_learning_rate", "not a number");
  EXPECT_SELFRL_ERROR(c.set("stages", "ttrl,grpo"), "unknown stage", "grpo");
  c.set("intuitor_reward", "borda");
  EXPECT_EQ(c.intuitor_reward, "borda");
  EXPECT_SELFRL_ERROR(c.set("intuitor_reward", "consensus"), "intuitor_reward", "self_certainty");
  c.set("curriculum", "0");
  EXPECT_FALSE(c.curriculum);
  EXPECT_TRUE(c.length_filter);  // on by default
  c.set("length_filter", "0");
  EXPECT_FALSE(c.length_filter);
  EXPECT_EQ(c.grpo_levels, 0);  // the GRPO stages draw from every level above the seed set
  c.set("grpo_levels", "1");
  EXPECT_EQ(c.grpo_levels, 1);
  // The demo's task: nothing above 3 digits is labelled, sums go to 5 digits.
  const demo::DemoConfig d;
  EXPECT_TRUE(d.curriculum);
  EXPECT_EQ(d.task.max_digits, 5);
  EXPECT_EQ(d.task.seed_difficulty_weights, (std::vector<double>{1, 4, 1, 0, 0}));
  const auto names = demo::DemoConfig::knob_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "eval.k"), names.end());
}
