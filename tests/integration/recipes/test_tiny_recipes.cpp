// Every recipes/tiny/*.yaml runs one tiny iteration end to end on a random tiny model (the
// fixture stands in for `selfrl demo`'s outputs via overrides): metrics.jsonl holds train-step
// and iteration lines with evaluation, TensorBoard events exist, and the final model reloads
// and generates.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "../loops/loop_fixture.h"
#include "selfrl/core/progress.h"
#include "selfrl/eval/evaluator.h"
#include "selfrl/loops/self_improvement_loop.h"
#include "selfrl/loops/train_config.h"
#include "selfrl/recipe/recipe.h"
#include "selfrl/tokenizer/tokenizer.h"

namespace selfrl::test {
namespace {

namespace fs = std::filesystem;

struct Case {
  std::string recipe;
  std::vector<std::string> extra;  // overrides beyond the fixture paths
  bool labelled = true;            // data.train = the labelled set (else the unlabelled one)
};

std::vector<nlohmann::json> read_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

class TinyRecipe : public ::testing::TestWithParam<Case> {};

TEST_P(TinyRecipe, RunsOneIterationEndToEnd) {
  ProgressBar::set_enabled_override(0);
  auto& f = loop_fixture();
  const Case& c = GetParam();
  TempDir out;
  std::vector<std::string> ov = {"model=" + f.model,   "output_dir=" + out.path(), "threads=1",
                                 "eval.max_samples=3", "eval.samples=2",           "max_completion_length=6"};
  if (c.recipe != "knowrl") {
    ov.push_back("data.train=" + (c.labelled ? f.train : f.unlabelled));
    ov.push_back("data.eval=" + f.eval);
  }
  for (const auto& e : c.extra) ov.push_back(e);
  auto r = recipe::Recipe::load(source_dir() + "/recipes/tiny/" + c.recipe + ".yaml", ov);
  const auto cfg = loops::read_train_config(r);
  const auto res = loops::run_training(cfg);

  const auto lines = read_lines(res.metrics_path);
  int iterations = 0, steps = 0;
  double pairs = -1;
  for (const auto& l : lines) {
    if (l["kind"] == "iteration") {
      ++iterations;
      if (l.contains("pairs")) pairs = l["pairs"].get<double>();
      if (c.recipe == "knowrl") {
        EXPECT_TRUE(l.contains("eval/macro_f1")) << l.dump();
      } else {
        ASSERT_TRUE(l.contains("eval/accuracy")) << l.dump();
        EXPECT_TRUE(l.contains("eval/maj@k")) << l.dump();
        EXPECT_GE(l["eval/pass@k"].get<double>(), 0.0);
      }
    } else {
      ++steps;
      EXPECT_TRUE(l.contains("loss") || l.contains("reward")) << l.dump();
    }
  }
  EXPECT_EQ(iterations, 2) << "iteration 0 (before training) and iteration 1";
  bool tb = false;
  for (const auto& e : fs::directory_iterator(out.path()))
    tb |= e.path().filename().string().rfind("events.out.tfevents", 0) == 0;
  EXPECT_TRUE(tb);
  // The curves of the run, drawn from its metrics.jsonl: an SVG with at least one line.
  ASSERT_EQ(res.plot_path, (fs::path(out.path()) / "curves.svg").string());
  {
    std::ifstream svg(res.plot_path);
    const std::string text((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text.rfind("<?xml", 0), 0u);
    EXPECT_NE(text.find("<polyline"), std::string::npos);
  }
  // The final model reloads with its tokenizer and can be evaluated.
  ASSERT_TRUE(fs::exists(res.final_model_dir + "/config.json"));
  ASSERT_TRUE(fs::exists(res.final_model_dir + "/tokenizer.model"));
  auto m = model::CausalLM::from_pretrained(res.final_model_dir);
  auto tok = tokenizer::Tokenizer::from_pretrained(res.final_model_dir);
  EXPECT_EQ(m->config().vocab_size, 160);
  if (c.recipe != "knowrl" && c.recipe != "self_rewarding" && c.recipe != "meta_rewarding" && c.recipe != "scpo" &&
      c.recipe != "ttrl" && c.recipe != "intuitor") {
    EXPECT_GT(steps, 0) << "a training step was logged";
  }
  if (c.recipe == "sec") {
    // Every step logs the curriculum: arm values and Boltzmann probabilities that sum to 1.
    nlohmann::json last;
    for (const auto& l : lines)
      if (l["kind"] == "sec") last = l;
    ASSERT_TRUE(last.contains("sec/p/easy") && last.contains("sec/p/hard")) << last.dump();
    EXPECT_NEAR(last["sec/p/easy"].get<double>() + last["sec/p/hard"].get<double>(), 1.0, 1e-9);
    EXPECT_TRUE(last.contains("sec/q/easy"));
  }
  if (c.recipe == "bstar") {
    const auto& it1 = lines.back();
    EXPECT_TRUE(it1.contains("bstar/temperature") && it1.contains("bstar/reward_threshold") &&
                it1.contains("bstar/balance_score"));
    EXPECT_TRUE(it1.contains("bstar/grid/T0.7_thr0.5")) << it1.dump();
  }
  if (c.recipe == "knowrl") {
    EXPECT_TRUE(fs::exists(out.path() + "/knowrl_tasks_iter1.jsonl"));
    EXPECT_TRUE(lines.back().contains("knowrl/self_consistency_generated"));
  }
  if (c.recipe == "meta_rewarding") {
    // The meta-judge ran: its parse rate and the judge pairs are logged with the actor pairs.
    const auto& it1 = lines.back();
    ASSERT_TRUE(it1.contains("self_rewarding/meta_parse_rate")) << it1.dump();
    EXPECT_GE(it1["self_rewarding/meta_parse_rate"].get<double>(), 0.0);
    EXPECT_LE(it1["self_rewarding/meta_parse_rate"].get<double>(), 1.0);
    EXPECT_EQ(it1["pairs"].get<double>(),
              it1["self_rewarding/actor_pairs"].get<double>() + it1["self_rewarding/judge_pairs"].get<double>());
  }
  if (c.recipe == "scpo" || c.recipe == "self_rewarding" || c.recipe == "meta_rewarding") {
    EXPECT_GT(pairs, 0) << "preference pairs were built, so the DPO step ran";
    EXPECT_GT(steps, 0);
  }
  (void)tok;
}

INSTANTIATE_TEST_SUITE_P(
    Recipes, TinyRecipe,
    ::testing::Values(
        Case{"sft", {"num_train_epochs=1"}},
        // DAPO refills from the loop's own prompt stream, and extra stop ids, on the way
        Case{"ttrl",
             {"max_steps=2", "eval_steps=2", "num_generations=2", "per_device_train_batch_size=4",
              "max_resample_rounds=2", "stop_token_ids=[7]"},
             false},
        Case{"intuitor", {"max_steps=2", "eval_steps=2", "num_generations=2", "per_device_train_batch_size=4"}, false},
        Case{"judge_grpo",
             {"max_steps=2", "eval_steps=2", "num_generations=2", "per_device_train_batch_size=4",
              "dump_rollouts_steps=1", "judge.max_new_tokens=6"},
             false},
        Case{"star", {"iterations=1", "num_train_epochs=1", "star.num_samples=1"}},
        Case{"rest_em",
             {"iterations=1", "num_train_epochs=1", "rest_em.num_samples=3",
              // the random model is never right: accept everything so the M-step runs
              "rest_em.reward_threshold=-1"}},
        Case{"rest_em_balanced",
             {"iterations=1", "num_train_epochs=1", "rest_em.num_samples=3", "rest_em.tail_samples=2",
              // the random model is never right: accept everything so the M-step runs
              "rest_em.reward_threshold=-1"}},
        Case{"nft", {"iterations=1", "nft.num_samples=4"}, false},
        Case{"bstar",
             {"iterations=1", "num_train_epochs=1", "bstar.num_samples=2", "bstar.temperatures=[0.7, 1.2]",
              "bstar.probe_prompts=3", "answer_extractor=regex:(\\d)"}},
        Case{"self_rewarding",
             {"iterations=1", "self_rewarding.num_samples=2", "self_rewarding.judge_samples=2",
              "self_rewarding.judge_max_new_tokens=12"},
             false},
        Case{"meta_rewarding",
             {"iterations=1", "self_rewarding.num_samples=2", "self_rewarding.judge_max_new_tokens=12"},
             false},
        Case{"scpo",
             {"iterations=1", "scpo.num_samples=3", "scpo.min_vote_share=0", "answer_extractor=regex:(\\d)"},
             false},
        Case{"sec",
             {"max_steps=2", "eval_steps=2", "num_generations=2", "per_device_train_batch_size=4",
              "max_resample_rounds=1"}},
        Case{"knowrl",
             {"iterations=1", "knowrl.tasks_per_category=2", "knowrl.num_judgements=2", "knowrl.min_agreement=0",
              "knowrl.grpo_steps=1", "num_generations=2", "per_device_train_batch_size=2", "max_completion_length=4",
              "knowrl.max_task_tokens=8"}}),
    [](const ::testing::TestParamInfo<Case>& i) { return i.param.recipe; });

}  // namespace
}  // namespace selfrl::test
