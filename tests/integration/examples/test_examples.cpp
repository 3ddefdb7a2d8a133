// The programs in examples/ run on the loop fixture's tiny model and do what they say: generate,
// a GRPO binary with a C++ reward, a hand-written best-of-N loop, and a recipe naming a reward
// the program registered — in one process and under `mpirun -np 2`.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "../../distributed/dist_test_util.h"
#include "../loops/loop_fixture.h"
#include "test_util.h"

namespace selfrl::test {
namespace {

std::string example(const std::string& name) { return std::string(SELFRL_EXAMPLES_DIR) + "/example_" + name; }

int count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

TEST(Examples, GenerateGreedyAndSampled) {
  auto& f = loop_fixture();
  const auto r = run_command(example("generate") + " " + f.model + " '3 + 4 =' 6");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count(r.output, "greedy: "), 1) << r.output;
  EXPECT_EQ(count(r.output, "sample "), 3) << r.output;
  EXPECT_NE(r.output.find("self-certainty"), std::string::npos);
  const auto bad = run_command(example("generate") + " /nonexistent 'x'");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("/nonexistent"), std::string::npos) << bad.output;
}

TEST(Examples, GrpoWithACppRewardTrainsAndSaves) {
  auto& f = loop_fixture();
  TempDir out;
  const auto r =
      run_command(example("grpo_custom_reward") + " " + f.model + " " + f.unlabelled + " " + out.path() + " 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count(r.output, "brevity "), 3) << r.output;
  // brevity = -tokens/16 with at most 8 tokens: in [-0.5, 0].
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("brevity (-?[0-9.e-]+)")));
  EXPECT_LE(std::stod(m[1]), 0.0);
  EXPECT_GE(std::stod(m[1]), -0.5);
  EXPECT_TRUE(std::ifstream(out.file("final/model.safetensors")).good());
  EXPECT_TRUE(std::ifstream(out.file("metrics.jsonl")).good());
}

TEST(Examples, BestOfNSelfDistillationLoop) {
  auto& f = loop_fixture();
  const auto r = run_command(example("custom_loop") + " " + f.model + " " + f.unlabelled + " 2 4");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count(r.output, "best-of-4 self-certainty"), 2) << r.output;
  EXPECT_EQ(count(r.output, "SFT loss"), 2);
}

std::string plugin_recipe(const LoopFixture& f, const std::string& out) {
  const std::string path = out + ".yaml";
  std::ofstream(path) << "trainer: grpo\nmodel: " << f.model << "\noutput_dir: " << out
                      << "\ndata: {train: " << f.unlabelled
                      << "}\nreward_funcs: [shorter_is_better, self_certainty]\nreward_weights: [1.0, 0.1]\n"
                         "num_generations: 4\nper_device_train_batch_size: 8\nmax_completion_length: 8\nmax_steps: 2\n"
                         "learning_rate: 1.0e-3\nseed: 3\n";
  return path;
}

TEST(Examples, RecipeWithAProgramRegisteredReward) {
  auto& f = loop_fixture();
  TempDir dir;
  const auto ok =
      run_command("OMP_NUM_THREADS=1 " + example("recipe_with_plugin") + " " + plugin_recipe(f, dir.file("one")));
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("done: 2 steps"), std::string::npos) << ok.output;
  const auto lines = lines_of(dir.file("one/metrics.jsonl"), "grpo");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(lines[0].contains("rewards/shorter_is_better/mean"));
  // The CLI does not know the program's reward: a clear error with the known names.
  const auto cli = run_command(selfrl_cli() + " train " + plugin_recipe(f, dir.file("cli")));
  EXPECT_NE(cli.exit_code, 0);
  EXPECT_NE(cli.output.find("unknown reward 'shorter_is_better'"), std::string::npos) << cli.output;
  EXPECT_NE(cli.output.find("register_reward"), std::string::npos) << cli.output;

  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed";
  const auto mpi = run_command(
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout -k 5 60 mpirun "
      "--oversubscribe --bind-to none -np 2 -x OMP_NUM_THREADS=1 -x MASTER_PORT=" +
      std::to_string(free_port()) + " " + example("recipe_with_plugin") + " " + plugin_recipe(f, dir.file("two")) +
      " per_device_train_batch_size=4");
  ASSERT_EQ(mpi.exit_code, 0) << mpi.output;
  const auto two = lines_of(dir.file("two/metrics.jsonl"), "grpo");
  ASSERT_EQ(two.size(), 2u);
  // Two ranks of 4 completions hold the global batch of 8 one process trains on: the same
  // samples (per-prompt seeds), so the same length reward; self-certainty may differ in the last
  // float bits between batch shapes.
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_NEAR(two[i]["rewards/shorter_is_better/mean"].get<double>(),
                lines[i]["rewards/shorter_is_better/mean"].get<double>(), 1e-12);
    EXPECT_NEAR(two[i]["reward"].get<double>(), lines[i]["reward"].get<double>(), 1e-6);
    EXPECT_NEAR(two[i]["loss"].get<double>(), lines[i]["loss"].get<double>(), 1e-5);
  }
}

}  // namespace
}  // namespace selfrl::test
