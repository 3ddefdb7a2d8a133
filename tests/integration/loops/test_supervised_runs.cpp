// `trainer: dpo` and `trainer: sft` on fixed datasets through run_training: steps logged, the
// DPO loss starts at log 2 (policy = reference) and the rows' fields are used as documented.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "loop_fixture.h"
#include "selfrl/core/progress.h"
#include "selfrl/loops/self_improvement_loop.h"
#include "selfrl/loops/train_config.h"
#include "selfrl/recipe/recipe.h"

namespace selfrl::test {
namespace {

TEST(SupervisedRuns, DpoOnChosenRejectedRows) {
  ProgressBar::set_enabled_override(0);
  auto& f = loop_fixture();
  TempDir d;
  write_bytes(d.file("pairs.jsonl"),
              "{\"prompt\": \"1 + 1 =\", \"chosen\": \" 2\", \"rejected\": \" 3\"}\n"
              "{\"prompt\": \"2 + 2 =\", \"good\": \" 4\", \"rejected\": \" 5\"}\n");
  write_bytes(d.file("r.yaml"), "trainer: dpo\nmodel: " + f.model +
                                    "\noutput_dir: out\ndata: {train: pairs.jsonl}\n"
                                    "per_device_train_batch_size: 2\nlearning_rate: 1e-3\nbeta: 0.1\n");
  auto r = recipe::Recipe::load(d.file("r.yaml"));
  const auto cfg = loops::read_train_config(r);
  EXPECT_SELFRL_ERROR(loops::run_training(cfg), "pairs.jsonl:2", "no string field \"chosen\"");
  auto r2 = recipe::Recipe::load(d.file("r.yaml"),
                                 {"data.train=" + f.dir.file("pairs_ok.jsonl"), "output_dir=" + d.file("out2")});
  write_bytes(f.dir.file("pairs_ok.jsonl"),
              "{\"prompt\": \"1 + 1 =\", \"chosen\": \" 2\", \"rejected\": \" 3\"}\n"
              "{\"prompt\": \"2 + 2 =\", \"chosen\": \" 4\", \"rejected\": \" 5\"}\n");
  const auto cfg2 = loops::read_train_config(r2);
  const auto res = loops::run_training(cfg2);
  const auto steps = lines_of(res.metrics_path, "dpo");
  ASSERT_EQ(steps.size(), 1u);  // 2 pairs, batch 2, one epoch
  EXPECT_NEAR(steps[0]["loss"].get<double>(), std::log(2.0), 1e-5);
  EXPECT_EQ(lines_of(res.metrics_path, "iteration").size(), 2u);
}

TEST(SupervisedRuns, SftOnPromptCompletionRows) {
  ProgressBar::set_enabled_override(0);
  auto& f = loop_fixture();
  TempDir d;
  write_bytes(d.file("r.yaml"), "trainer: sft\nmodel: " + f.model + "\noutput_dir: out\ndata: {train: " + f.train +
                                    ", eval: " + f.eval +
                                    ", completion_field: answer}\nper_device_train_batch_size: 4\n"
                                    "num_train_epochs: 3\nlearning_rate: 1e-2\nlr_scheduler_type: constant\n");
  auto r = recipe::Recipe::load(d.file("r.yaml"));
  const auto res = loops::run_training(loops::read_train_config(r));
  const auto steps = lines_of(res.metrics_path, "sft");
  ASSERT_EQ(steps.size(), 6u);  // 8 rows / 4 per step × 3 epochs
  EXPECT_LT(steps.back()["loss"].get<double>(), steps.front()["loss"].get<double>());

  // A second run into the same output_dir is refused, or replaces the first with overwrite_output_dir.
  auto again = recipe::Recipe::load(d.file("r.yaml"));
  EXPECT_SELFRL_ERROR(loops::run_training(loops::read_train_config(again)), "already holds a run",
                      "overwrite_output_dir=true");
  auto over = recipe::Recipe::load(d.file("r.yaml"), {"overwrite_output_dir=true", "num_train_epochs=1"});
  const auto res2 = loops::run_training(loops::read_train_config(over));
  EXPECT_EQ(lines_of(res2.metrics_path, "sft").size(), 2u);  // only the new run's steps
  EXPECT_EQ(lines_of(res2.metrics_path, "iteration").size(), 2u);
}

// bf16: true through the recipe: an SFT run under autocast still learns, and a GRPO run (with
// gradient checkpointing and a reference model) trains without non-finite steps.
TEST(SupervisedRuns, Bf16RecipesTrain) {
  ProgressBar::set_enabled_override(0);
  auto& f = loop_fixture();
  TempDir d;
  write_bytes(d.file("sft.yaml"), "trainer: sft\nmodel: " + f.model +
                                      "\noutput_dir: sft\nbf16: true\ndata: {train: " + f.train +
                                      ", completion_field: answer}\nper_device_train_batch_size: 4\nthreads: 1\n"
                                      "num_train_epochs: 10\nlearning_rate: 1e-2\nlr_scheduler_type: constant\n");
  auto r = recipe::Recipe::load(d.file("sft.yaml"));
  const auto steps = lines_of(loops::run_training(loops::read_train_config(r)).metrics_path, "sft");
  ASSERT_EQ(steps.size(), 20u);
  EXPECT_LT(steps.back()["loss"].get<double>(), 0.5 * steps.front()["loss"].get<double>());
  write_bytes(d.file("grpo.yaml"),
              "trainer: grpo\nmodel: " + f.model + "\noutput_dir: grpo\nbf16: true\ndata: {train: " + f.train +
                  "}\nthreads: 1\nreward_funcs: [consensus]\nbeta: 0.04\n"
                  "gradient_checkpointing: true\nnum_generations: 4\nper_device_train_batch_size: 8\n"
                  "max_steps: 2\nmax_completion_length: 6\nlearning_rate: 1e-3\n");
  auto g = recipe::Recipe::load(d.file("grpo.yaml"));
  const auto cfg = loops::read_train_config(g);
  EXPECT_TRUE(loops::grpo_config(cfg, 2).bf16);
  const auto grpo = lines_of(loops::run_training(cfg).metrics_path, "grpo");
  ASSERT_EQ(grpo.size(), 2u);
  for (const auto& m : grpo) {
    EXPECT_EQ(m["skipped_steps"].get<double>(), 0.0);
    EXPECT_TRUE(std::isfinite(m["loss"].get<double>()));
  }
}

// padding_free: true through the recipe reaches the SFT and GRPO trainers, and their runs follow
// the padded runs step for step (the same log-probs up to float rounding; the unit tests in
// test_padding_free.cpp compare the numbers closely).
TEST(SupervisedRuns, PaddingFreeRecipesFollowThePaddedRuns) {
  ProgressBar::set_enabled_override(0);
  auto& f = loop_fixture();
  TempDir d;
  std::vector<nlohmann::json> sft[2], grpo[2];
  for (int free = 0; free < 2; ++free) {
    const std::string pf = free ? "true" : "false";
    const std::string tag = free ? "free" : "padded";
    write_bytes(d.file("sft.yaml"), "trainer: sft\nmodel: " + f.model + "\noutput_dir: sft_" + tag +
                                        "\npadding_free: " + pf + "\ndata: {train: " + f.train +
                                        ", completion_field: answer}\nper_device_train_batch_size: 4\nthreads: 1\n"
                                        "num_train_epochs: 2\nlearning_rate: 1e-3\n");
    auto r = recipe::Recipe::load(d.file("sft.yaml"));
    sft[free] = lines_of(loops::run_training(loops::read_train_config(r)).metrics_path, "sft");
    write_bytes(d.file("grpo.yaml"), "trainer: grpo\nmodel: " + f.model + "\noutput_dir: grpo_" + tag +
                                         "\npadding_free: " + pf + "\ndata: {train: " + f.train +
                                         "}\nthreads: 1\nreward_funcs: [consensus]\nbeta: 0.04\n"
                                         "num_generations: 4\nper_device_train_batch_size: 8\n"
                                         "max_steps: 2\nmax_completion_length: 8\nlearning_rate: 1e-3\n");
    auto g = recipe::Recipe::load(d.file("grpo.yaml"));
    const auto cfg = loops::read_train_config(g);
    EXPECT_EQ(loops::grpo_config(cfg, 2).padding_free, free == 1);
    grpo[free] = lines_of(loops::run_training(cfg).metrics_path, "grpo");
  }
  ASSERT_EQ(sft[1].size(), sft[0].size());
  ASSERT_FALSE(sft[0].empty());
  for (size_t i = 0; i < sft[0].size(); ++i)
    EXPECT_NEAR(sft[1][i]["loss"].get<double>(), sft[0][i]["loss"].get<double>(), 1e-4) << "sft step " << i;
  ASSERT_EQ(grpo[1].size(), 2u);
  ASSERT_EQ(grpo[0].size(), 2u);
  for (size_t i = 0; i < 2; ++i)
    for (const char* key : {"loss", "kl", "completions/mean_length"})
      EXPECT_NEAR(grpo[1][i][key].get<double>(), grpo[0][i][key].get<double>(), 1e-4) << "grpo step " << i << key;
}

}  // namespace
}  // namespace selfrl::test
