// A program registers its own loop by name and runs it from a recipe, reading the keys of the
// built-in kind it names (reads_keys_of) plus its own section; the validator and its messages
// know it. Here: best-of-N self-distillation written against the public loop API.
#include <gtest/gtest.h>

#include <fstream>

#include "loop_fixture.h"
#include "selfrl/loops/loop_registry.h"
#include "selfrl/loops/run.h"
#include "selfrl/rewards/builtin_rewards.h"

namespace selfrl::test {
namespace {

class BestOfN : public loops::SelfImprovementLoop {
 public:
  std::string name() const override { return "best_of_n_test"; }
  metrics::Scalars iterate(loops::RunContext& ctx, int64_t iteration) override {
    const int64_t n = ctx.cfg.loop_args.value("n", 2);  // its own knob: best_of_n_test.n
    std::vector<std::vector<int64_t>> prompts;
    for (const auto& p : ctx.train) prompts.push_back(p.ids);
    const auto rollouts = ctx.sample(prompts, n, ctx.cfg.sampling.temperature, ctx.cfg.sampling.max_new_tokens,
                                     static_cast<uint64_t>(iteration), "");
    std::vector<trainers::SFTExample> picked;
    for (const auto& r : rollouts) {
      size_t best = 0;
      for (size_t i = 1; i < r.completions.size(); ++i)
        if (rewards::mean_self_certainty(r.completions[i].self_certainty) >
            rewards::mean_self_certainty(r.completions[best].self_certainty))
          best = i;
      picked.push_back({r.prompt_ids, r.completions[best].token_ids});
    }
    auto m = ctx.sft(ctx.policy.model, picked);
    m["samples_per_prompt"] = static_cast<double>(n);
    return m;
  }
};

std::string write_recipe(const LoopFixture& f, const std::string& dir, const std::string& extra) {
  const std::string path = dir + "/r.yaml";
  std::ofstream(path) << "loop: best_of_n_test\nmodel: " << f.model << "\noutput_dir: " << dir
                      << "/run\ndata: {train: " << f.unlabelled << ", eval: " << f.eval
                      << "}\niterations: 2\nmax_completion_length: 4\n"
                      << "num_train_epochs: 1\n"
                      << extra;
  return path;
}

TEST(LoopRegistry, AProgramsLoopRunsFromARecipe) {
  auto& f = loop_fixture();
  loops::register_loop({"best_of_n_test", "best-of-N self-distillation",
                        [](const loops::TrainConfig&) { return std::make_unique<BestOfN>(); }, "rest_em"});
  const auto kinds = loops::run_kinds();
  EXPECT_EQ(kinds.front(), "grpo");
  EXPECT_EQ(kinds.back(), "best_of_n_test");
  TempDir d;
  auto r = recipe::Recipe::load(write_recipe(f, d.path(), "best_of_n_test: {n: 3}\nrest_em: {num_samples: 2}\n"));
  const auto cfg = loops::read_train_config(r);
  EXPECT_EQ(cfg.keys_kind, "rest_em");
  EXPECT_EQ(cfg.loop_args["n"], 3);
  loops::Run run(cfg);
  const auto result = run.train();
  const auto its = lines_of(d.file("run/metrics.jsonl"), "iteration");
  ASSERT_EQ(its.size(), 3u);  // iteration 0 (evaluation) and two trained ones
  EXPECT_EQ(its[2]["samples_per_prompt"], 3.0);
  EXPECT_EQ(its[2]["sft/examples"], 6.0);  // one picked completion per unlabelled prompt
  EXPECT_TRUE(its[2].contains("eval/accuracy"));
  EXPECT_FALSE(result.final_model_dir.empty());

  // A key outside its section and the keys it reads is still an error with a suggestion.
  auto bad = recipe::Recipe::load(write_recipe(f, d.path(), "num_generatons: 4\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(bad), "num_generatons");
  // A misspelt loop name is named with the known ones, the program's included.
  auto typo = recipe::Recipe::parse("loop: best_of_n_tset\nmodel: /\noutput_dir: /tmp/x\n");
  EXPECT_SELFRL_ERROR(loops::read_train_config(typo), "unknown kind 'best_of_n_tset'", "best_of_n_test");
  // Built-in names are taken; the base kind must be a built-in.
  EXPECT_SELFRL_ERROR(
      loops::register_loop(
          {"star", "", [](const loops::TrainConfig&) { return std::make_unique<BestOfN>(); }, "rest_em"}),
      "built-in");
  EXPECT_SELFRL_ERROR(
      loops::register_loop(
          {"x_loop", "", [](const loops::TrainConfig&) { return std::make_unique<BestOfN>(); }, "nope"}),
      "not a built-in kind");
  EXPECT_TRUE(loops::unregister_loop("best_of_n_test"));
  EXPECT_FALSE(loops::unregister_loop("star"));
}

}  // namespace
}  // namespace selfrl::test
