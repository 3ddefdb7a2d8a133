// The collapse guard in real `selfrl train` runs. A GRPO run rewarded for completions without a
// digit (reward_funcs: [format] with format_pattern ^[^0-9]*$) drives the answer extractor's
// no-answer rate up within a few steps: the degenerate optimum a label-free reward can reach.
// With seeds 3–12 the guard fires at steps 4–8 of 16, so a CPU whose floating point differs
// still sees it fire. The guard (no_answer_rise) must then warn and go on, stop with exit
// status 3 and a checkpoint, or roll back to the newest checkpoint from before the first flagged
// step and save it as final/. The label_free/* metrics are checked against the rollout dump,
// recomputed here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <regex>

#include "loop_fixture.h"
#include "selfrl/io/jsonl.h"
#include "selfrl/io/safetensors.h"
#include "selfrl/rewards/answer_extractor.h"

namespace selfrl::test {
namespace {

namespace fs = std::filesystem;

std::string recipe(const LoopFixture& f, const std::string& out, const std::string& action,
                   const std::string& extra = "") {
  return "trainer: grpo\nmodel: " + f.model + "\noutput_dir: " + out + "\ndata: {train: " + f.unlabelled +
         "}\nthreads: 1\nseed: 5\n"
         "reward_funcs: [format]\nformat_pattern: '^[^0-9]*$'\n"
         "num_generations: 4\nper_device_train_batch_size: 16\nmax_completion_length: 6\ntemperature: 1.0\n"
         "learning_rate: 5.0e-2\nlr_scheduler_type: constant\nmax_steps: 16\ndump_rollouts_steps: 1\n"
         "report_to_tensorboard: false\n"
         "collapse_guard:\n  action: " +
         action + "\n  warmup_steps: 2\n  window: 2\n  patience: 2\n  entropy_rise: 0\n  no_answer_rise: 0.15\n" +
         extra;
}

// Writes the recipe with `action` and runs `selfrl train` on it.
CommandResult run_with(const LoopFixture& f, const TempDir& d, const std::string& action,
                       const std::string& extra = "") {
  write_bytes(d.file("r.yaml"), recipe(f, d.file("out"), action, extra));
  return run_command(selfrl_cli() + " train " + d.file("r.yaml") + " --no-progress 2>&1");
}

std::vector<nlohmann::json> train_lines(const std::string& dir) {
  std::vector<nlohmann::json> out;
  for (const auto& j : io::read_jsonl(dir + "/metrics.jsonl"))
    if (j.value("kind", "") == "grpo") out.push_back(j);
  return out;
}

// The step (1-based) at which collapse_guard/streak first reaches `patience`, or 0.
int64_t fired_at(const std::vector<nlohmann::json>& lines, int64_t patience) {
  for (const auto& j : lines)
    if (j.value("collapse_guard/streak", 0.0) >= static_cast<double>(patience)) return j.at("step").get<int64_t>();
  return 0;
}

TEST(CollapseGuardRun, WarnLogsTheDiagnosticsTheDumpShowsAndGoesOn) {
  auto& f = loop_fixture();
  TempDir d;
  const auto r = run_with(f, d, "warn");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto lines = train_lines(d.file("out"));
  ASSERT_EQ(lines.size(), 16u);
  const int64_t at = fired_at(lines, 2);
  ASSERT_GT(at, 0) << "the no-digit reward did not raise the no-answer rate; the guard never fired";
  EXPECT_NE(r.output.find("collapse_guard: step " + std::to_string(at)), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("training goes on"), std::string::npos);
  EXPECT_TRUE(fs::exists(d.file("out/final/config.json")));
  // Recompute the label-free statistics of every step from its dump: the last number in each
  // completion is its answer.
  const std::regex number("-?[0-9]+(\\.[0-9]+)?");
  for (const auto& m : lines) {
    const int64_t step = m.at("step").get<int64_t>() - 1;
    char name[64];
    std::snprintf(name, sizeof name, "/rollouts/step-%06lld.jsonl", static_cast<long long>(step));
    std::map<int64_t, std::vector<std::string>> groups;  // prompt → answers ("" = none)
    for (const auto& row : io::read_jsonl(d.file("out") + name)) {
      const std::string text = row.at("completion").get<std::string>();
      std::string last;
      for (auto it = std::sregex_iterator(text.begin(), text.end(), number); it != std::sregex_iterator(); ++it)
        last = it->str();
      groups[row.at("prompt_index").get<int64_t>()].push_back(last);
    }
    double share = 0, none = 0, samples = 0;
    for (const auto& [p, answers] : groups) {
      std::map<std::string, int> votes;
      for (const auto& a : answers) {
        samples += 1;
        if (a.empty())
          none += 1;
        else
          votes[a] += 1;
      }
      int best = 0;
      for (const auto& [a, v] : votes) best = std::max(best, v);
      share += static_cast<double>(best) / static_cast<double>(answers.size());
    }
    EXPECT_NEAR(m.at("label_free/majority_share").get<double>(), share / static_cast<double>(groups.size()), 1e-12)
        << "step " << step;
    EXPECT_NEAR(m.at("label_free/no_answer_rate").get<double>(), none / samples, 1e-12) << "step " << step;
  }
}

TEST(CollapseGuardRun, StopEndsTheRunWithStatus3AndACheckpoint) {
  auto& f = loop_fixture();
  TempDir d;
  const auto r = run_with(f, d, "stop");
  ASSERT_EQ(r.exit_code, 3) << r.output;
  const auto lines = train_lines(d.file("out"));
  const int64_t at = fired_at(lines, 2);
  ASSERT_GT(at, 0);
  EXPECT_EQ(static_cast<int64_t>(lines.size()), at);  // no step after the one that fired
  EXPECT_NE(r.output.find("run stopped, state saved in"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no_answer_rate rose"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(d.file("out/checkpoint-" + std::to_string(at) + "/COMPLETE")));
  EXPECT_FALSE(fs::exists(d.file("out/final")));
  // `selfrl guard` replays the run's metrics.jsonl with the recipe's settings: the step it fired at.
  const std::string settings = " warmup_steps=2 window=2 patience=2 entropy_rise=0 no_answer_rise=0.15";
  const auto replay = run_command(selfrl_cli() + " guard " + d.file("out") + settings + " 2>&1");
  ASSERT_EQ(replay.exit_code, 0) << replay.output;
  EXPECT_NE(replay.output.find("the guard fires at step " + std::to_string(at) + " of " + std::to_string(at)),
            std::string::npos)
      << replay.output;
  EXPECT_NE(replay.output.find("no_answer_rate rose"), std::string::npos) << replay.output;
  // Without the rule that fired, it does not; a misspelt key is an error naming it.
  const auto quiet = run_command(selfrl_cli() + " guard " + d.file("out") + settings + " no_answer_rise=0 --json");
  ASSERT_EQ(quiet.exit_code, 0) << quiet.output;
  const auto j = nlohmann::json::parse(quiet.output);
  EXPECT_TRUE(j.at("fired_at_step").is_null());
  EXPECT_EQ(j.at("steps").get<int64_t>(), at);
  const auto bad = run_command(selfrl_cli() + " guard " + d.file("out") + " patienc=2 2>&1");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("did you mean 'collapse_guard.patience'"), std::string::npos) << bad.output;
}

TEST(CollapseGuardRun, RollbackSavesTheLastGoodCheckpointAsFinal) {
  auto& f = loop_fixture();
  TempDir d;
  const auto r = run_with(f, d, "rollback", "save_steps: 1\n");
  ASSERT_EQ(r.exit_code, 3) << r.output;
  const auto lines = train_lines(d.file("out"));
  const int64_t at = fired_at(lines, 2);
  ASSERT_GT(at, 2);
  // The streak that fired began at step at − 1 (patience 2); its rollouts came from the policy
  // after at − 2 updates, so the last good one is checkpoint-(at − 3).
  const std::string good = d.file("out/checkpoint-" + std::to_string(at - 3));
  EXPECT_NE(r.output.find("rolled back to " + good), std::string::npos) << r.output;
  auto a = io::SafeTensorsFile::open(good + "/model.safetensors");
  auto b = io::SafeTensorsFile::open(d.file("out/final/model.safetensors"));
  for (const auto& name : a.names()) EXPECT_TRUE(torch::equal(a.tensor(name), b.tensor(name))) << name;
  // The guard acts before the step's own checkpoint: the newest one is from the step before.
  EXPECT_FALSE(fs::exists(d.file("out/checkpoint-" + std::to_string(at))));
  auto later = io::SafeTensorsFile::open(d.file("out/checkpoint-" + std::to_string(at - 1) + "/model.safetensors"));
  bool differs = false;
  for (const auto& name : a.names()) differs = differs || !torch::equal(a.tensor(name), later.tensor(name));
  EXPECT_TRUE(differs) << "the rolled-back weights equal the flagged steps' weights";
}

// Anchors (collapse_guard.min_anchor_agreement): the prompts whose G samples were unanimous in
// the warm-up steps are kept with their answer, and every later step reports how many of them the
// policy still answers the same way greedily. Both halves are recomputed here: the anchors from
// the rollout dumps, the agreement of step k + 1 by `selfrl generate --temperature 0` on the
// checkpoint saved after step k (the weights step k + 1 decoded with).
TEST(CollapseGuardRun, AnchorsComeFromUnanimousGroupsAndTheirAgreementIsTheGreedyAnswersOfTheCheckpoint) {
  auto& f = loop_fixture();
  TempDir d;
  // The answer is whether a completion holds an "h", and the reward is for completions without
  // one: a cool temperature makes groups unanimous about "h" in the random fixture model (every
  // seed of 3-12 finds anchors), and the reward then takes that answer away.
  std::string text = recipe(f, d.file("out"), "warn", "  min_anchor_agreement: 0.5\n  anchors: 4\nsave_steps: 1\n");
  text.replace(text.find("temperature: 1.0"), 16, "temperature: 0.15\nanswer_extractor: 'regex:(h)'");
  text.replace(text.find("'^[^0-9]*$'"), 11, "'^[^h]*$'");
  text.replace(text.find("warmup_steps: 2"), 15, "warmup_steps: 4");
  write_bytes(d.file("r.yaml"), text);
  const auto r = run_command(selfrl_cli() + " train " + d.file("r.yaml") + " --no-progress 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto lines = train_lines(d.file("out"));
  ASSERT_EQ(lines.size(), 16u);
  // The library's extractor (unit-tested on its own): what is checked here is which prompts
  // become anchors and how their agreement is counted.
  const auto extractor = rewards::AnswerExtractor::create("regex", "(h)");
  auto answer_of = [&](const std::string& text) { return extractor.extract(text).value_or(""); };
  // The anchors, recomputed: warm-up steps 1-4, prompts in order, unanimous and with an answer.
  std::vector<std::pair<std::vector<int64_t>, std::string>> expected;
  std::vector<size_t> known_before(5, 0);  // anchors found before step k + 1 (1-based)
  for (int64_t step = 0; step < 4; ++step) {
    known_before[step] = expected.size();
    char name[64];
    std::snprintf(name, sizeof name, "/rollouts/step-%06lld.jsonl", static_cast<long long>(step));
    std::map<int64_t, std::pair<std::vector<int64_t>, std::vector<std::string>>> groups;
    for (const auto& row : io::read_jsonl(d.file("out") + name)) {
      auto& g = groups[row.at("prompt_index").get<int64_t>()];
      g.first = row.at("prompt_ids").get<std::vector<int64_t>>();
      g.second.push_back(answer_of(row.at("completion").get<std::string>()));
    }
    for (const auto& [p, g] : groups) {
      const bool unanimous =
          !g.second[0].empty() &&
          std::all_of(g.second.begin(), g.second.end(), [&](const std::string& a) { return a == g.second[0]; });
      if (unanimous && expected.size() < 4) expected.push_back({g.first, g.second[0]});
    }
  }
  known_before[4] = expected.size();
  ASSERT_FALSE(expected.empty()) << "no unanimous group in the warm-up steps: the test checks nothing";
  const auto state = nlohmann::json::parse(read_bytes(d.file("out/checkpoint-16/trainer_state.json")));
  const auto& anchors = state.at("extra").at("loop").at("anchors").at("anchors");
  ASSERT_EQ(anchors.size(), expected.size()) << anchors.dump();
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(anchors[i].at("prompt_ids").get<std::vector<int64_t>>(), expected[i].first) << i;
    EXPECT_EQ(anchors[i].at("answer").get<std::string>(), expected[i].second) << i;
  }
  // Step k + 1 checks the anchors found in steps 1 … k (at most the warm-up's 4) with the
  // weights of checkpoint-k; no metric before there is an anchor.
  bool moved = false;  // some step's agreement below 1: the check is not vacuous
  for (int64_t k = 0; k < 16; ++k) {
    const size_t n = known_before[std::min<int64_t>(k, 4)];
    if (n == 0) {
      EXPECT_EQ(lines[k].count("label_free/anchor_agreement"), 0u) << "step " << k + 1;
      continue;
    }
    if (k != 1 && k != 2 && k != 4 && k != 8 && k != 15) continue;  // the generate runs take time
    std::string in;
    for (size_t i = 0; i < n; ++i) in += nlohmann::json{{"input_ids", anchors[i].at("prompt_ids")}}.dump() + "\n";
    write_bytes(d.file("anchors.jsonl"), in);
    const auto g = run_command(selfrl_cli() + " generate --model " + d.file("out/checkpoint-" + std::to_string(k)) +
                               " --in " + d.file("anchors.jsonl") + " --out " + d.file("greedy.jsonl") +
                               " --temperature 0 --max-new-tokens 6 --threads 1 2>&1");
    ASSERT_EQ(g.exit_code, 0) << g.output;
    const auto out = io::read_jsonl(d.file("greedy.jsonl"));
    ASSERT_EQ(out.size(), n);
    double agree = 0;
    for (size_t i = 0; i < n; ++i)
      agree += answer_of(out[i].at("completions").at(0).at("text").get<std::string>()) ==
                       anchors[i].at("answer").get<std::string>()
                   ? 1
                   : 0;
    const double want = agree / static_cast<double>(n);
    EXPECT_DOUBLE_EQ(lines[k].at("label_free/anchor_agreement").get<double>(), want) << "step " << k + 1;
    moved = moved || want < 1;
  }
  EXPECT_TRUE(moved) << "the no-h reward left every anchor's answer unchanged";
  EXPECT_NE(r.output.find("label_free/anchor_agreement is"), std::string::npos) << r.output;
}

TEST(CollapseGuardRun, RollbackWithoutCheckpointsIsARecipeError) {
  auto& f = loop_fixture();
  TempDir d;
  const auto r = run_with(f, d, "rollback");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("rollback needs checkpoints"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace selfrl::test
