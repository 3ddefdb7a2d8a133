// `reward_funcs: [judge, consensus]` through run_training (what `selfrl train` runs): a judge
// model SFT-trained to answer "Score: 4" makes parsing deterministic, so the logged judge
// reward and parse rate can be checked against the rollout dump; and the policy as its own
// judge with a judge prompt longer than the context runs without a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "loop_fixture.h"
#include "selfrl/core/progress.h"
#include "selfrl/io/jsonl.h"
#include "selfrl/loops/self_improvement_loop.h"
#include "selfrl/loops/train_config.h"
#include "selfrl/recipe/recipe.h"

namespace selfrl::test {
namespace {

namespace fs = std::filesystem;

const char* kTemplate = "Question: {prompt}\\nResponse: {response}\\nconclude with Score:";

TEST(JudgeRewardRun, GrpoWithAFrozenJudgeModelLogsWhatTheDumpShows) {
  ProgressBar::set_enabled_override(0);
  auto& f = loop_fixture();
  TempDir d;
  // 1. A judge model: the fixture model fine-tuned to answer every judge prompt "Score: 4".
  {
    std::ofstream rows(d.file("judge_sft.jsonl"));
    for (int i = 0; i < 8; ++i)
      rows << nlohmann::json{{"prompt", "Question: " + std::to_string(i) + " + " + std::to_string(i % 3) +
                                            " =\nResponse: " + std::to_string(i * 7 % 10) + "\nconclude with Score:"},
                             {"completion", " Score: 4"}}
                  .dump()
           << "\n";
  }
  write_bytes(d.file("sft.yaml"), "trainer: sft\nmodel: " + f.model + "\noutput_dir: " + d.file("judge") +
                                      "\ndata: {train: " + d.file("judge_sft.jsonl") +
                                      "}\nthreads: 1\n"
                                      "per_device_train_batch_size: 4\nnum_train_epochs: 40\nlearning_rate: 1e-2\n"
                                      "lr_scheduler_type: constant\nreport_to_tensorboard: false\n");
  auto sft = recipe::Recipe::load(d.file("sft.yaml"));
  loops::run_training(loops::read_train_config(sft));
  ASSERT_TRUE(fs::exists(d.file("judge/final/config.json")));

  // 2. GRPO with reward_funcs [judge, consensus] and that judge.
  write_bytes(d.file("grpo.yaml"), std::string("trainer: grpo\nmodel: ") + f.model + "\noutput_dir: " + d.file("out") +
                                       "\ndata: {train: " + f.train +
                                       "}\nthreads: 1\n"
                                       "reward_funcs: [judge, consensus]\nreward_weights: [1.0, 0.5]\n"
                                       "judge:\n  model: " +
                                       d.file("judge/final") + "\n  template: \"" + kTemplate +
                                       "\"\n"
                                       "  num_judgements: 2\n  temperature: 0.05\n  max_new_tokens: 16\n"
                                       "num_generations: 4\nper_device_train_batch_size: 8\nmax_steps: 2\n"
                                       "max_completion_length: 6\nlearning_rate: 1e-3\ndump_rollouts_steps: 1\n"
                                       "report_to_tensorboard: false\n");
  auto r = recipe::Recipe::load(d.file("grpo.yaml"));
  const auto cfg = loops::read_train_config(r);
  EXPECT_EQ(cfg.judge.num_judgements, 2);
  EXPECT_EQ(cfg.judge_model, d.file("judge/final"));
  const auto res = loops::run_training(cfg);
  const auto steps = lines_of(res.metrics_path, "grpo");
  ASSERT_EQ(steps.size(), 2u);
  for (int s = 0; s < 2; ++s) {
    const auto& m = steps[static_cast<size_t>(s)];
    for (const char* k : {"rewards/judge/mean", "rewards/judge/std", "rewards/judge/parse_rate",
                          "rewards/judge/unscorable", "rewards/consensus/mean"})
      ASSERT_TRUE(m.contains(k)) << k;
    char name[64];
    std::snprintf(name, sizeof name, "rollouts/step-%06d.jsonl", s);
    const auto rows = io::read_jsonl(d.file("out/" + std::string(name)));
    ASSERT_EQ(rows.size(), 8u);  // 2 prompts x 4 completions
    // The judge model answers "Score: 4" (an occasional slip at temperature 0.05 is allowed).
    EXPECT_GE(m["rewards/judge/parse_rate"].get<double>(), 0.9) << rows[0]["group_info"]["judge"].dump();
    double sum = 0, n = 0, unscorable = 0, rate = 0;
    for (const auto& row : rows) {
      const auto& info = row["group_info"]["judge"];
      rate += info["parse_rate"].get<double>() / static_cast<double>(rows.size());  // every group has 4 rows
      ASSERT_EQ(info["judgements"].size(), 4u);
      const auto& mine = info["judge_scores"][row["sample_index"].get<size_t>()];
      ASSERT_EQ(mine.size(), 2u);
      double ps = 0, pn = 0;
      for (const auto& v : mine)
        if (!v.is_null()) ps += v.get<double>(), pn += 1;
      if (pn == 0) {
        EXPECT_TRUE(row["rewards"]["judge"].is_null());
        unscorable += 1;
        continue;
      }
      const double judge = row["rewards"]["judge"].get<double>();
      EXPECT_DOUBLE_EQ(judge, ps / pn / 5.0);  // mean of the parsable judgements, normalized
      EXPECT_NEAR(row["reward"].get<double>(), judge + 0.5 * row["rewards"]["consensus"].get<double>(), 1e-12);
      sum += judge, n += 1;
    }
    ASSERT_GT(n, 0);
    EXPECT_NEAR(m["rewards/judge/mean"].get<double>(), sum / n, 1e-9);
    EXPECT_EQ(m["rewards/judge/unscorable"].get<double>(), unscorable);
    EXPECT_NEAR(m["rewards/judge/parse_rate"].get<double>(), rate, 1e-12);
    EXPECT_NEAR(m["rewards/judge/mean"].get<double>(), 0.8, 0.1);  // 4 / 5
  }
}

TEST(JudgeRewardRun, PolicyJudgeWithAJudgePromptLongerThanTheContext) {
  ProgressBar::set_enabled_override(0);
  auto& f = loop_fixture();
  TempDir d;
  // The default rubric three times over: well past the fixture's 512-token context.
  std::string long_template;
  for (int i = 0; i < 3; ++i) long_template += loops::default_judge_template();
  nlohmann::json escaped = long_template;
  write_bytes(d.file("grpo.yaml"), std::string("trainer: grpo\nmodel: ") + f.model + "\noutput_dir: " + d.file("out") +
                                       "\ndata: {train: " + f.train +
                                       "}\nthreads: 1\nreward_funcs: [judge]\n"
                                       "judge:\n  template: " +
                                       escaped.dump() +
                                       "\n  num_judgements: 1\n  max_new_tokens: 4\n"
                                       "num_generations: 2\nper_device_train_batch_size: 4\nmax_steps: 1\n"
                                       "max_completion_length: 4\nreport_to_tensorboard: false\n");
  auto r = recipe::Recipe::load(d.file("grpo.yaml"));
  const auto res = loops::run_training(loops::read_train_config(r));
  const auto steps = lines_of(res.metrics_path, "grpo");
  ASSERT_EQ(steps.size(), 1u);
  const double rate = steps[0]["rewards/judge/parse_rate"].get<double>();
  EXPECT_GE(rate, 0.0);
  EXPECT_LE(rate, 1.0);
  EXPECT_TRUE(steps[0].contains("rewards/judge/unscorable"));
}

TEST(JudgeRewardRun, UnknownRewardAndJudgeKeysAreRejected) {
  auto& f = loop_fixture();
  TempDir d;
  const std::string base =
      "trainer: grpo\nmodel: " + f.model + "\noutput_dir: " + d.file("out") + "\ndata: {train: " + f.train + "}\n";
  write_bytes(d.file("a.yaml"), base + "reward_funcs: [judgee]\n");
  auto a = recipe::Recipe::load(d.file("a.yaml"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(a), "unknown reward 'judgee'", "did you mean 'judge'");
  write_bytes(d.file("b.yaml"), base + "reward_funcs: [judge]\njudge: {num_judgments: 2}\n");
  auto b = recipe::Recipe::load(d.file("b.yaml"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(b), "judge.num_judgments", "judge.num_judgements");
}

}  // namespace
}  // namespace selfrl::test
