// Recipes: typed reads, locations in errors, did-you-mean, extends, command-line overrides.
#include "selfrl/recipe/recipe.h"

#include <gtest/gtest.h>

#include "test_util.h"

using selfrl::recipe::Range;
using selfrl::recipe::Recipe;

TEST(Recipe, TypedReadsWithDefaults) {
  auto r = Recipe::parse(
      "model: m\ngrpo:\n  beta: 0.04\n  num_generations: 8\n  loss_type: dapo\n"
      "  reward_weights: [1, 0.5]\n  mask_truncated_completions: yes\n");
  EXPECT_EQ(r.get_string("model", ""), "m");
  EXPECT_DOUBLE_EQ(r.get_double("grpo.beta", 0.0, {0}), 0.04);
  EXPECT_EQ(r.get_int("grpo.num_generations", 4, {2}), 8);
  EXPECT_EQ(r.get_string("grpo.loss_type", "dapo", {"grpo", "bnpo", "dr_grpo", "dapo"}), "dapo");
  EXPECT_EQ(r.get_double_list("grpo.reward_weights", {}), (std::vector<double>{1, 0.5}));
  EXPECT_TRUE(r.get_bool("grpo.mask_truncated_completions", false));
  EXPECT_DOUBLE_EQ(r.get_double("grpo.epsilon", 0.2), 0.2);
  EXPECT_FALSE(r.get_optional_double("grpo.epsilon_high").has_value());
  EXPECT_NO_THROW(r.finish());
  EXPECT_EQ(r.documented_keys().size(), 8u);
}

TEST(Recipe, UnknownKeyNamesLineAndSuggests) {
  auto r = Recipe::parse("grpo:\n  beta: 0.1\n  num_generatons: 8\n", "r.yaml");
  r.get_double("grpo.beta", 0);
  r.get_int("grpo.num_generations", 8);
  EXPECT_SELFRL_ERROR(r.finish(), "r.yaml:3:", "grpo.num_generatons: unknown key",
                      "did you mean 'grpo.num_generations'?");
  auto top = Recipe::parse("lerning_rate: 1e-5\n", "r.yaml");
  top.get_double("learning_rate", 1e-6);
  EXPECT_SELFRL_ERROR(top.finish(), "r.yaml:1:", "did you mean 'learning_rate'?");
}

TEST(Recipe, WrongTypesAndRangesNameKeyLineAndAllowed) {
  auto r = Recipe::parse("a:\n  beta: lots\n  n: 2.5\n  eps: -1\n  t: grpoo\n  flag: maybe\n", "r.yaml");
  EXPECT_SELFRL_ERROR(r.get_double("a.beta", 0), "r.yaml:2:", "a.beta: expected a number, got 'lots'");
  EXPECT_SELFRL_ERROR(r.get_int("a.n", 0), "r.yaml:3:", "expected an integer, got '2.5'");
  EXPECT_SELFRL_ERROR(r.get_double("a.eps", 0.2, Range{0, 1}), "r.yaml:4:", "out of range; allowed: [0, 1]");
  EXPECT_SELFRL_ERROR(r.get_string("a.t", "grpo", {"grpo", "dapo"}), "not one of: grpo, dapo", "did you mean 'grpo'?");
  EXPECT_SELFRL_ERROR(r.get_bool("a.flag", false), "expected true or false");
  EXPECT_SELFRL_ERROR(Recipe::parse("a: [1, 2\n", "bad.yaml"), "bad.yaml:", "YAML syntax error");
  EXPECT_SELFRL_ERROR(Recipe::parse("a: 1\na: 2\n", "dup.yaml"), "dup.yaml:2:", "'a' appears twice");
}

TEST(Recipe, ExtendsAndOverrides) {
  selfrl::test::TempDir dir;
  selfrl::test::write_bytes(dir.file("base.yaml"),
                            "seed: 1\ngrpo:\n  beta: 0.1\n  epsilon: 0.2\ndata: prompts.jsonl\n");
  selfrl::test::write_bytes(dir.file("prompts.jsonl"), "{}\n");
  selfrl::test::write_bytes(dir.file("child.yaml"), "extends: base.yaml\ngrpo:\n  beta: 0.0\n");
  auto r = Recipe::load(dir.file("child.yaml"), {"grpo.epsilon=0.28", "seed=7", "new.list=[a, b]"});
  EXPECT_DOUBLE_EQ(r.get_double("grpo.beta", 1), 0.0);      // child wins
  EXPECT_DOUBLE_EQ(r.get_double("grpo.epsilon", 1), 0.28);  // override wins
  EXPECT_EQ(r.get_int("seed", 0), 7);
  EXPECT_EQ(r.get_string_list("new.list", {}), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.get_path("data", "", true), dir.file("prompts.jsonl"));  // relative to base.yaml
  EXPECT_NE(r.location_of("grpo.beta").str().find("child.yaml:3"), std::string::npos);
  EXPECT_NE(r.location_of("seed").str().find("command line override 'seed=7'"), std::string::npos);
  r.finish();

  auto bad = Recipe::load(dir.file("child.yaml"), {"grpo.bta=1"});
  bad.get_double("grpo.beta", 0);
  bad.get_double("grpo.epsilon", 0);
  bad.get_int("seed", 0);
  bad.get_path("data", "", true);
  EXPECT_SELFRL_ERROR(bad.finish(), "command line override 'grpo.bta=1'", "did you mean 'grpo.beta'?");
  EXPECT_SELFRL_ERROR(Recipe::load(dir.file("child.yaml"), {"noequals"}), "not of the form key.sub=value");
  EXPECT_SELFRL_ERROR(Recipe::load(dir.file("missing.yaml")), "missing.yaml", "recipe file not found");
  selfrl::test::write_bytes(dir.file("loop.yaml"), "extends: loop.yaml\n");
  EXPECT_SELFRL_ERROR(Recipe::load(dir.file("loop.yaml")), "cycle");
  selfrl::test::write_bytes(dir.file("nofile.yaml"), "data: nowhere.jsonl\n");
  auto nf = Recipe::load(dir.file("nofile.yaml"));
  EXPECT_SELFRL_ERROR(nf.get_path("data", "", true), "nofile.yaml:1:", "does not exist");
}
