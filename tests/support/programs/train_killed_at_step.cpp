// A test program: `selfrl train` that SIGKILLs itself right after train step N, for the
// crash-and-resume tests (tests/distributed/test_train_cli.cpp). The kill switch lives here,
// in a RunHooks::on_log callback, not in the library.
//
//   selfrl_test_train_killed_at_step N RECIPE.yaml [key=value ...] [--no-progress]
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "selfrl/core/error.h"
#include "selfrl/core/progress.h"
#include "selfrl/loops/run.h"
#include "selfrl/loops/train_config.h"
#include "selfrl/recipe/recipe.h"

int main(int argc, char** argv) try {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s STEP RECIPE.yaml [key=value ...]\n", argv[0]);
    return 2;
  }
  const long long kill_at = std::atoll(argv[1]);
  selfrl::ProgressBar::set_enabled_override(0);
  std::vector<std::string> overrides;
  for (int i = 3; i < argc; ++i)
    if (std::string(argv[i]) != "--no-progress") overrides.push_back(argv[i]);  // no bars anyway
  auto recipe = selfrl::recipe::Recipe::load(argv[2], overrides);
  const auto cfg = selfrl::loops::read_train_config(recipe);
  selfrl::loops::RunHooks hooks;
  hooks.on_log = [kill_at](int64_t step, const std::string& kind, const selfrl::metrics::Scalars&) {
    if (kind != "iteration" && step == kill_at) {
      std::fprintf(stderr, "killing myself (SIGKILL) after step %lld\n", kill_at);
      std::raise(SIGKILL);
    }
  };
  selfrl::loops::Run(cfg, std::move(hooks)).train();
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
