// `loop: nft` end to end: the policy's own samples, right (a digit, by the format reward) and
// wrong, train it through the NFT loss. The first update is on-policy, so its loss is 0 (both
// terms are −log 1); problems whose samples are all right or all wrong are left out; and the
// share of right samples rises over the iterations.
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

TEST(NftRun, LearnsFromRightAndWrongSamples) {
  ProgressBar::set_enabled_override(0);
  auto& f = loop_fixture();
  TempDir d;
  write_bytes(d.file("nft.yaml"), "loop: nft\nmodel: " + f.model + "\noutput_dir: " + d.file("out") +
                                      "\ndata: {train: " + f.train + ", eval: " + f.eval +
                                      "}\nthreads: 1\nseed: 4\niterations: 3\nnum_train_epochs: 2\n"
                                      "learning_rate: 1.0e-2\nlr_scheduler_type: constant\n"
                                      "max_completion_length: 4\ntemperature: 1.0\nper_device_train_batch_size: 8\n"
                                      "reward_funcs: [format]\nformat_pattern: '([0-9])'\n"
                                      "report_to_tensorboard: false\nnft:\n  num_samples: 6\n");
  auto r = recipe::Recipe::load(d.file("nft.yaml"));
  const auto cfg = loops::read_train_config(r);
  EXPECT_EQ(cfg.nft.num_samples, 6);
  EXPECT_EQ(cfg.nft.loss.normalize, 1);
  const auto res = loops::run_training(cfg);
  std::vector<nlohmann::json> its;
  for (const auto& j : io::read_jsonl(res.metrics_path))
    if (j.value("kind", "") == "iteration" && j.value("iteration", 0.0) >= 1) its.push_back(j);
  ASSERT_EQ(its.size(), 3u);
  for (const auto& j : its) {
    const double kept = j.at("kept").get<double>();
    const double mixed = 8 * (1 - j.at("nft/all_right_frac").get<double>() - j.at("nft/all_wrong_frac").get<double>());
    EXPECT_LE(kept, 6 * mixed + 1e-9) << j.dump();  // only problems with right and wrong samples
  }
  ASSERT_GT(its[0].at("kept").get<double>(), 0) << "no problem had both right and wrong samples";
  EXPECT_GE(its[0].at("label_free/majority_share").get<double>(), 1.0 / 6);  // the sampled groups' diagnostics
  // On-policy first step: π = πold, every token's loss is −log 1.
  EXPECT_NEAR(its[0].at("sft/loss_first").get<double>(), 0.0, 1e-5);
  EXPECT_GT(its[2].at("nft/accuracy").get<double>(), its[0].at("nft/accuracy").get<double>());
}

}  // namespace
}  // namespace selfrl::test
