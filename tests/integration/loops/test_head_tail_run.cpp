// Head-tail re-balancing in a real `loop: rest_em` run: the same Grow step with and without
// re-balancing (same seed), rewarded for completions that contain a digit, which a random tiny
// model writes for some problems more often than for others. Tail re-sampling may only add
// solved problems; padding must make every solved problem contribute max_per_prompt examples.
#include <gtest/gtest.h>

#include <cmath>

#include "loop_fixture.h"
#include "selfrl/core/progress.h"
#include "selfrl/io/jsonl.h"
#include "selfrl/loops/self_improvement_loop.h"
#include "selfrl/loops/train_config.h"
#include "selfrl/recipe/recipe.h"

namespace selfrl::test {
namespace {

nlohmann::json first_iteration(const LoopFixture& f, const TempDir& d, const std::string& name,
                               const std::string& rest_em) {
  write_bytes(d.file(name + ".yaml"), "loop: rest_em\nmodel: " + f.model + "\noutput_dir: " + d.file(name) +
                                          "\ndata: {train: " + f.train + ", eval: " + f.eval +
                                          "}\nthreads: 1\nseed: 11\niterations: 1\nnum_train_epochs: 1\n"
                                          "max_completion_length: 4\ntemperature: 1.0\n"
                                          "reward_funcs: [format]\nformat_pattern: '([0-9])'\n"
                                          "report_to_tensorboard: false\nrest_em:\n  num_samples: 4\n"
                                          "  max_per_prompt: 2\n  reward_threshold: 1.0\n" +
                                          rest_em);
  auto r = recipe::Recipe::load(d.file(name + ".yaml"));
  const auto res = loops::run_training(loops::read_train_config(r));
  for (const auto& j : io::read_jsonl(res.metrics_path))
    if (j.value("kind", "") == "iteration" && j.value("iteration", 0.0) == 1.0) return j;
  ADD_FAILURE() << "no iteration 1 in " << res.metrics_path;
  return {};
}

TEST(HeadTailRun, TailResamplingAndPaddingRebalanceTheKeptSet) {
  ProgressBar::set_enabled_override(0);
  auto& f = loop_fixture();
  TempDir d;
  const auto plain = first_iteration(f, d, "plain", "");
  const auto balanced = first_iteration(f, d, "balanced", "  balance: pad\n  tail_samples: 8\n  tail_threshold: 0.5\n");
  const double n = 8;  // problems in the fixture's train set
  // The Grow step is the same: same seed, same model.
  EXPECT_DOUBLE_EQ(plain.at("rest_em/mean_reward").get<double>(), balanced.at("rest_em/mean_reward").get<double>());
  // The label-free diagnostics describe the Grow samples, the same in both runs.
  for (const char* k : {"label_free/majority_share", "label_free/answer_diversity", "label_free/no_answer_rate"})
    EXPECT_DOUBLE_EQ(plain.at(k).get<double>(), balanced.at(k).get<double>()) << k;
  const double reward = plain.at("rest_em/mean_reward").get<double>();
  ASSERT_GT(reward, 0.0) << "no sample had a digit: the test has nothing to re-balance";
  ASSERT_LT(reward, 1.0) << "every sample had a digit: no problem is tail";
  // Tail re-sampling only adds solved problems; the rescued ones are tail problems that the Grow
  // step had not solved.
  const double tail = balanced.at("rest_em/tail_queries").get<double>();
  const double rescued = balanced.at("rest_em/tail_rescued").get<double>();
  EXPECT_GE(tail, 1.0);
  EXPECT_LE(rescued, tail);
  EXPECT_DOUBLE_EQ(balanced.at("rest_em/solved_frac").get<double>() * n,
                   plain.at("rest_em/solved_frac").get<double>() * n + rescued);
  // Padding: every solved problem contributes exactly max_per_prompt = 2 examples.
  EXPECT_DOUBLE_EQ(balanced.at("kept").get<double>(), 2 * balanced.at("rest_em/solved_frac").get<double>() * n);
  EXPECT_LE(plain.at("kept").get<double>(), 2 * plain.at("rest_em/solved_frac").get<double>() * n);
  EXPECT_EQ(plain.count("rest_em/padded"), 0u);
  EXPECT_EQ(plain.count("rest_em/tail_queries"), 0u);
}

TEST(HeadTailRun, UnknownBalanceIsARecipeError) {
  auto& f = loop_fixture();
  TempDir d;
  write_bytes(d.file("r.yaml"), "loop: rest_em\nmodel: " + f.model + "\noutput_dir: " + d.file("out") +
                                    "\ndata: {train: " + f.train + "}\nrest_em:\n  balance: oversample\n");
  auto r = recipe::Recipe::load(d.file("r.yaml"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r), "rest_em.balance", "oversample");
}

}  // namespace
}  // namespace selfrl::test
