// The `selfrl` program: `eval` writes the promised JSON; `train` rejects a mistyped key with
// its line and a suggestion, and runs a tiny recipe whose final model `eval` then scores.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../loops/loop_fixture.h"

namespace selfrl::test {
namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST(CliEval, WritesAccuracyMajAndPassAtK) {
  auto& f = loop_fixture();
  TempDir d;
  const auto r =
      run_command(selfrl_cli() + " eval --model " + f.model + " --data " + f.eval +
                  " --samples 3 --max-new-tokens 4 --extractor last_number --per-example --out " + d.file("e.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = read_json(d.file("e.json"));
  EXPECT_EQ(j["num_examples"], 4);
  EXPECT_EQ(j["k"], 3);
  for (const char* k : {"accuracy", "maj@3", "pass@3"}) {
    ASSERT_TRUE(j.contains(k)) << j.dump();
    EXPECT_GE(j[k].get<double>(), 0.0);
    EXPECT_LE(j[k].get<double>(), 1.0);
  }
  // The aggregates agree with the per-example records.
  double acc = 0, maj = 0;
  for (const auto& e : j["examples"]) acc += e["greedy_correct"].get<bool>(), maj += e["majority_correct"].get<bool>();
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), acc / 4);
  EXPECT_DOUBLE_EQ(j["maj@3"].get<double>(), maj / 4);
  const auto bad =
      run_command(selfrl_cli() + " eval --model " + f.model + " --data " + f.eval + " --extractor lastnum");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("unknown answer extractor"), std::string::npos) << bad.output;
}

TEST(CliTrain, MistypedKeyFailsWithLineAndSuggestion) {
  auto& f = loop_fixture();
  TempDir d;
  write_bytes(d.file("r.yaml"), "loop: rest_em\nmodel: " + f.model + "\noutput_dir: out\ndata:\n  train: " + f.train +
                                    "\nrest_em:\n  num_samples: 2\n  max_per_promt: 1\n");
  const auto r = run_command(selfrl_cli() + " train " + d.file("r.yaml"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("r.yaml:8"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean 'rest_em.max_per_prompt'"), std::string::npos) << r.output;
  const auto o = run_command(selfrl_cli() + " train " + d.file("r.yaml") + " rest_em.max_per_promt=1");
  EXPECT_NE(o.output.find("command line"), std::string::npos) << o.output;
}

TEST(CliTrain, RunsARecipeAndEvalScoresTheFinalModel) {
  auto& f = loop_fixture();
  TempDir d;
  const auto r = run_command(selfrl_cli() + " train " + source_dir() + "/recipes/tiny/rest_em.yaml model=" + f.model +
                             " data.train=" + f.train + " data.eval=" + f.eval + " output_dir=" + d.file("run") +
                             " iterations=1 rest_em.num_samples=2 rest_em.reward_threshold=-1 max_completion_length=4"
                             " eval.samples=1 num_train_epochs=1 threads=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("final model:"), std::string::npos) << r.output;
  const auto e = run_command(selfrl_cli() + " eval --model " + d.file("run/final") + " --data " + f.eval +
                             " --max-new-tokens 4 --out " + d.file("e.json"));
  ASSERT_EQ(e.exit_code, 0) << e.output;
  EXPECT_TRUE(read_json(d.file("e.json")).contains("accuracy"));
}

// A model with a small context (the demo's is 64 tokens): without --max-new-tokens, eval uses
// what the context leaves after the longest prompt; an explicit value that leaves no room is an
// error naming the model's config.
TEST(CliEval, DefaultCompletionLengthFitsASmallContext) {
  namespace fs = std::filesystem;
  auto& f = loop_fixture();
  TempDir d;
  fs::create_directories(d.file("small"));
  for (const char* file : {"tokenizer.model"}) fs::copy_file(f.model + "/" + file, d.file("small/") + file);
  auto cfg = nlohmann::json::parse(std::ifstream(f.model + "/config.json"));
  cfg["max_position_embeddings"] = 16;
  model::CausalLM::from_config(io::ModelConfig::from_json(cfg, "test"), 3)->save_pretrained(d.file("small"));
  const auto e = run_command(selfrl_cli() + " eval --model " + d.file("small") + " --data " + f.eval + " --out " +
                             d.file("e.json"));
  ASSERT_EQ(e.exit_code, 0) << e.output;
  const auto j = read_json(d.file("e.json"));
  EXPECT_EQ(j["num_examples"], 4);
  EXPECT_GT(j["mean_completion_tokens"].get<double>(), 0.0);
  EXPECT_LE(j["mean_completion_tokens"].get<double>(), 16.0);
  const auto bad =
      run_command(selfrl_cli() + " eval --model " + d.file("small") + " --data " + f.eval + " --max-new-tokens 256");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("config.json"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("16-token context"), std::string::npos) << bad.output;
}

TEST(CliTrain, ListsEveryKeyAsMarkdown) {
  const auto r = run_command(selfrl_cli() + " train --list-keys");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("| `bstar.reward_thresholds` |"), std::string::npos);
  EXPECT_NE(r.output.find("| `epsilon_high` |"), std::string::npos);
}

}  // namespace
}  // namespace selfrl::test
