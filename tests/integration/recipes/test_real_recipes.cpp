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
