// The real-model recipes use only known keys with valid values (their placeholder paths are
// replaced by existing ones here; nothing runs).
#include <gtest/gtest.h>

#include <filesystem>

#include "selfrl/loops/train_config.h"
#include "selfrl/recipe/recipe.h"
#include "test_util.h"

namespace selfrl::test {

TEST(RealRecipes, ParseAndValidate) {
  namespace fs = std::filesystem;
  int n = 0;
  for (const auto& e : fs::directory_iterator(source_dir() + "/recipes/real")) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() != ".yaml" || name == "base.yaml") continue;
    std::vector<std::string> ov = {"model=/", "data.train=/"};
    if (name.find("knowrl") != std::string::npos) ov.push_back("knowrl.seed_file=/");
    auto r = recipe::Recipe::load(e.path().string(), ov);
    try {
      const auto c = loops::read_train_config(r);
      EXPECT_EQ(c.device, "cuda") << name;
      ++n;
    } catch (const Error& err) {
      ADD_FAILURE() << name << ": " << err.what();
    }
  }
  EXPECT_GE(n, 10);
}

}  // namespace selfrl::test

namespace selfrl::test {

// `selfrl train RECIPE --check`: the real recipes validate through the program with stand-in
// paths, print every effective key with where it came from, and nothing is trained.
TEST(RealRecipes, CheckFlagValidatesWithoutTraining) {
  const std::string recipe = source_dir() + "/recipes/real/ttrl_qwen2.5-7b.yaml";
  TempDir out;
  const auto r =
      run_command(selfrl_cli() + " train " + recipe + " --check model=/ data.train=/ output_dir=" + out.file("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ok (trainer grpo)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("reward_funcs: [consensus]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("model: /    # command line"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ttrl_qwen2.5-7b.yaml:"), std::string::npos) << r.output;  // a key set in the file
  EXPECT_NE(r.output.find("# default"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(out.file("run")));  // nothing ran
  const auto bad = run_command(selfrl_cli() + " train " + recipe + " --check model=/ data.train=/ num_generatoins=4");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("did you mean 'num_generations'"), std::string::npos) << bad.output;
}

}  // namespace selfrl::test
