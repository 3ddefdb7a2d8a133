// `selfrl demo --quick` end to end: every file other recipes rely on is written, the stage
// models load back, and the table names every stage. (Tiny sizes: the numbers mean nothing.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "selfrl/io/file_util.h"
#include "selfrl/io/jsonl.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/tokenizer/tokenizer.h"
#include "test_util.h"

using namespace selfrl;
namespace fs = std::filesystem;

TEST(DemoSmoke, QuickRunWritesEverything) {
  test::TempDir dir;
  const std::string out = dir.file("demo");
  const auto r = test::run_command(test::selfrl_cli() + " demo --quick --quiet --seed 3 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* stage : {"base", "ttrl", "intuitor", "rest_em", "introspect", "control"}) {
    EXPECT_NE(r.output.find(std::string("| ") + stage), std::string::npos) << "table lacks " << stage << ":\n"
                                                                           << r.output;
    const std::string sdir = out + "/" + stage;
    for (const char* f :
         {"config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json", "metrics.jsonl"})
      EXPECT_TRUE(fs::exists(sdir + "/" + f)) << sdir << "/" << f;
    const auto rows = io::read_jsonl(sdir + "/metrics.jsonl");
    ASSERT_FALSE(rows.empty());
    EXPECT_EQ(rows.back()["kind"], "eval") << sdir;
    EXPECT_TRUE(rows.back().contains("accuracy"));
    EXPECT_TRUE(rows.back().contains("self_knowledge_f1"));
  }
  // The base model and tokenizer load as a Hugging Face directory and agree on the vocabulary.
  auto model = model::CausalLM::from_pretrained(out + "/base");
  auto tok = tokenizer::Tokenizer::from_pretrained(out + "/base");
  EXPECT_EQ(model->config().vocab_size, tok->vocab_size());
  const auto ids = tok->encode("Q: 12+345 =");
  EXPECT_EQ(tok->decode(ids, true), "Q: 12+345 =");
  // Data splits with the documented fields.
  for (const char* split : {"seed", "unlabelled", "eval_dev", "eval_test"}) {
    const auto rows = io::read_jsonl(out + "/data/" + split + ".jsonl");
    ASSERT_FALSE(rows.empty()) << split;
    for (const char* key : {"prompt", "answer", "difficulty"})
      EXPECT_TRUE(rows[0].contains(key)) << split << " " << key;
  }
  // summary.json and the plot.
  std::ifstream sf(out + "/summary.json");
  const auto summary = nlohmann::json::parse(sf);
  ASSERT_EQ(summary["stages"].size(), 6u);
  EXPECT_EQ(summary["stages"][0]["stage"], "base");
  // intuitor branches from base; the chain base → ttrl → rest_em → introspect; control from base.
  std::map<std::string, std::string> from;
  for (const auto& s : summary["stages"]) from[s["stage"].get<std::string>()] = s["from"].get<std::string>();
  EXPECT_EQ(from["ttrl"], "base");
  EXPECT_EQ(from["intuitor"], "base");
  EXPECT_EQ(from["rest_em"], "ttrl");
  EXPECT_EQ(from["introspect"], "rest_em");
  // The GRPO stages record their collapse guard's verdict: null, or where and why it fired.
  for (const auto& s : summary["stages"]) {
    if (s["stage"] != "ttrl" && s["stage"] != "intuitor") continue;
    ASSERT_TRUE(s["notes"].contains("collapse_guard")) << s["notes"];
    const auto& g = s["notes"]["collapse_guard"];
    if (!g.is_null()) {
      EXPECT_GE(g["fired_at_step"].get<int64_t>(), g["first_flagged_step"].get<int64_t>()) << g;
      EXPECT_FALSE(g["reason"].get<std::string>().empty()) << g;
    }
  }
  EXPECT_EQ(from["control"], "base");
  EXPECT_TRUE(summary.contains("gain_over_base"));
  std::ifstream svg(out + "/curves.svg");
  const std::string text((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("<svg"), std::string::npos);
  EXPECT_NE(text.find("data-name=\"greedy\""), std::string::npos);
  EXPECT_NE(text.find("</svg>"), std::string::npos);
}

TEST(DemoSmoke, KnobsChooseTheStages) {
  test::TempDir dir;
  const std::string out = dir.file("demo");
  const auto r = test::run_command(test::selfrl_cli() + " demo --quick --quiet --seed 4 --out " + out +
                                   " --set stages=rest_em,control --set rest_iterations=2 --set ttrl_in_chain=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream sf(out + "/summary.json");
  const auto summary = nlohmann::json::parse(sf);
  std::vector<std::string> stages;
  for (const auto& s : summary["stages"]) stages.push_back(s["stage"].get<std::string>());
  EXPECT_EQ(stages, (std::vector<std::string>{"base", "rest_em", "rest_em_2", "control"}));
  EXPECT_EQ(summary["stages"][2]["from"], "rest_em");
  // The control trains on as many examples as both ReST-EM iterations together.
  EXPECT_TRUE(summary["stages"][1]["notes"].contains("sft_examples"));
  // Each iteration trains on the seed set (60 items with --quick), its kept pseudo-labels and
  // CAN examples for the first rest_introspect_pool (10 with --quick) of its 40 voted prompts.
  for (int i : {1, 2}) {
    const auto& notes = summary["stages"][i]["notes"];
    EXPECT_EQ(notes["can_examples"].get<int64_t>(), 10) << notes;
    EXPECT_EQ(notes["sft_examples"].get<int64_t>(),
              60 + notes["pseudo_labels_kept"].get<int64_t>() + notes["can_examples"].get<int64_t>())
        << notes;
  }
  EXPECT_FALSE(fs::exists(out + "/ttrl"));

  const auto bad =
      test::run_command(test::selfrl_cli() + " demo --quick --quiet --out " + out + "2 --set rest_epoch=2");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("unknown demo knob \"rest_epoch\""), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("rest_epochs"), std::string::npos) << bad.output;

  // --help shows the documented run's value of each shortcut knob (docs/demo.md: 80 GRPO steps,
  // lr 1e-4), never an empty default.
  const auto help = test::run_command(test::selfrl_cli() + " demo --help");
  ASSERT_EQ(help.exit_code, 0) << help.output;
  EXPECT_NE(help.output.find("steps of each unlabelled GRPO stage (the documented run: 80)"), std::string::npos)
      << help.output;
  EXPECT_NE(help.output.find("learning rate of the GRPO stages (TTRL, Borda; self-certainty: --set "
                             "intuitor_learning_rate) (the documented run: 0.0001)"),
            std::string::npos)
      << help.output;
  EXPECT_NE(help.output.find("intuitor_learning_rate,"), std::string::npos) << help.output;
  EXPECT_EQ(help.output.find("(default: )"), std::string::npos) << help.output;
}

// control_examples fixes the control's length and control_order its batch order: from the same
// base, the same length and order give the same weights, another order other weights.
TEST(DemoSmoke, ControlKnobsSetItsLengthAndBatchOrder) {
  test::TempDir dir;
  const std::string a = dir.file("a"), b = dir.file("b"), c = dir.file("c");
  const std::string demo = test::selfrl_cli() + " demo --quick --quiet --seed 4 --set stages=control";
  auto r = test::run_command(demo + " --out " + a + " --set control_examples=120");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_command(demo + " --out " + b +
                        " --set control_examples=120 --set control_order=1 --set base_from=" + a);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_command(demo + " --out " + c + " --set control_examples=120 --set base_from=" + a);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto control_notes = [](const std::string& run) {
    std::ifstream sf(run + "/summary.json");
    const auto summary = nlohmann::json::parse(sf);
    return summary["stages"].back()["notes"];
  };
  EXPECT_EQ(control_notes(a)["control_examples"], 120);
  EXPECT_EQ(control_notes(b)["control_order"], 1);
  const auto weights = [](const std::string& run) { return io::read_text_file(run + "/control/model.safetensors"); };
  EXPECT_EQ(weights(a), weights(c));
  EXPECT_NE(weights(a), weights(b));
  const auto bad = test::run_command(demo + " --out " + dir.file("d") + " --set control_order=-1");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("control_order: must be >= 0"), std::string::npos) << bad.output;
}

// The easy-to-hard curriculum: the seed set stops at 2 digits, so ReST-EM iteration 1 votes on
// 3-digit items only and iteration 2 on 3- and 4-digit ones, as many as rest_pool allows, no
// item twice; with grpo_levels=1 the GRPO stages draw from the 3-digit level only.
TEST(DemoSmoke, CurriculumVotesOnOneMoreLevelPerIteration) {
  test::TempDir dir;
  const std::string out = dir.file("demo");
  const std::string knobs =
      " --set task.max_digits=4 --set task.difficulty_weights=1,1,1,1 --set task.seed_difficulty_weights=1,1,0,0"
      " --set curriculum=1 --set stages=rest_em,ttrl --set rest_iterations=2 --set rest_pool=30 --set grpo_levels=1";
  const auto r = test::run_command(test::selfrl_cli() + " demo --quick --quiet --seed 5 --out " + out + knobs);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream sf(out + "/summary.json");
  const auto summary = nlohmann::json::parse(sf);
  ASSERT_EQ(summary["stages"].size(), 4u) << summary.dump();
  // Count the unlabelled items per level from the data the run wrote.
  std::map<int, int64_t> per_level;
  std::ifstream rows(out + "/data/unlabelled.jsonl");
  for (std::string line; std::getline(rows, line);) {
    const auto row = nlohmann::json::parse(line);
    per_level[static_cast<int>(
        std::max(std::to_string(row["a"].get<int64_t>()).size(), std::to_string(row["b"].get<int64_t>()).size()))]++;
  }
  const auto& first = summary["stages"][1]["notes"];
  const auto& second = summary["stages"][2]["notes"];
  EXPECT_EQ(first["curriculum_levels"], nlohmann::json({3, 3})) << first;
  EXPECT_EQ(second["curriculum_levels"], nlohmann::json({3, 4})) << second;
  EXPECT_EQ(first["voted_prompts"].get<int64_t>(), std::min<int64_t>(30, per_level[3])) << first;
  EXPECT_EQ(second["voted_prompts"].get<int64_t>(), std::min<int64_t>(30, per_level[3] + per_level[4])) << second;
  // grpo_levels=1: TTRL draws its prompts from the next level only.
  const auto& ttrl = summary["stages"][3];
  ASSERT_EQ(ttrl["stage"], "ttrl");
  EXPECT_EQ(ttrl["notes"]["prompt_levels"], nlohmann::json({3, 3})) << ttrl;
  EXPECT_EQ(ttrl["notes"]["prompt_pool"].get<int64_t>(), per_level[3]) << ttrl;

  // A seed set that already covers every level leaves nothing harder to self-label.
  const auto bad = test::run_command(
      test::selfrl_cli() + " demo --quick --quiet --out " + out +
      "2 --set task.max_digits=3 --set task.difficulty_weights=1,1,1 --set task.seed_difficulty_weights=1,1,1");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("curriculum"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("task.seed_difficulty_weights"), std::string::npos) << bad.output;

  // No unlabelled item above the seed's levels: an error naming the knob, not a crash.
  const auto empty =
      test::run_command(test::selfrl_cli() + " demo --quick --quiet --out " + out + "3 --set task.num_unlabelled=0");
  EXPECT_EQ(empty.exit_code, 1) << empty.output;
  EXPECT_NE(empty.output.find("nothing to learn from"), std::string::npos) << empty.output;
  EXPECT_NE(empty.output.find("task.num_unlabelled"), std::string::npos) << empty.output;
}

// base_from: a later run starts from an earlier run's base instead of training one, and its
// stages then reproduce the earlier run's exactly; a base made from other data is refused.
TEST(DemoSmoke, BaseFromReusesAnEarlierRunsBase) {
  test::TempDir dir;
  const std::string first = dir.file("first"), second = dir.file("second");
  const std::string cmd = test::selfrl_cli() + " demo --quick --quiet --seed 6 --set stages=rest_em";
  const auto a = test::run_command(cmd + " --out " + first);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  const auto b = test::run_command(cmd + " --out " + second + " --set base_from=" + first);
  ASSERT_EQ(b.exit_code, 0) << b.output;
  auto summary = [](const std::string& out) {
    std::ifstream f(out + "/summary.json");
    return nlohmann::json::parse(f);
  };
  const auto sa = summary(first), sb = summary(second);
  EXPECT_EQ(sb["stages"][0]["train_seconds"].get<double>(), 0.0);
  for (int i : {0, 1}) {
    EXPECT_EQ(sa["stages"][i]["accuracy"], sb["stages"][i]["accuracy"]) << i;
    EXPECT_EQ(sa["stages"][i]["self_knowledge_f1"], sb["stages"][i]["self_knowledge_f1"]) << i;
  }
  const std::string weights = test::read_bytes(first + "/rest_em/model.safetensors");
  EXPECT_FALSE(weights.empty());
  EXPECT_EQ(weights, test::read_bytes(second + "/rest_em/model.safetensors"));

  const auto bad = test::run_command(test::selfrl_cli() + " demo --quick --quiet --seed 7 --out " + dir.file("third") +
                                     " --set base_from=" + first);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("base_from"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("differs"), std::string::npos) << bad.output;
  const auto missing = test::run_command(test::selfrl_cli() + " demo --quick --quiet --out " + dir.file("fourth") +
                                         " --set base_from=" + dir.file("nowhere"));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("base_from"), std::string::npos) << missing.output;
  EXPECT_NE(missing.output.find("is not a directory"), std::string::npos) << missing.output;
}

// grpo_max_resample_rounds turns on DAPO's dynamic sampling in the GRPO stages (the untrained
// --quick model's groups are unanimous, so steps drop groups); rest_introspect_balance keeps as
// many "no" CAN examples as "yes" ones. Off (the defaults): nothing dropped, all 10 CAN examples.
TEST(DemoSmoke, DynamicSamplingAndBalancedCanKnobs) {
  test::TempDir dir;
  const std::string plain = dir.file("plain"), knobs = dir.file("knobs");
  const std::string cmd =
      test::selfrl_cli() + " demo --quick --quiet --seed 4 --set stages=ttrl,rest_em --set rest_iterations=1";
  auto r = test::run_command(cmd + " --out " + plain);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = test::run_command(cmd + " --out " + knobs + " --set base_from=" + plain +
                        " --set grpo_max_resample_rounds=2 --set rest_introspect_balance=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto dropped = [](const std::string& out) {
    double sum = 0;
    int64_t steps = 0;
    for (const auto& row : io::read_jsonl(out + "/ttrl/metrics.jsonl"))
      if (row["kind"] == "train") sum += row["dropped_groups"].get<double>(), ++steps;
    EXPECT_GT(steps, 0) << out;
    return sum;
  };
  EXPECT_EQ(dropped(plain), 0.0);
  EXPECT_GT(dropped(knobs), 0.0);
  auto rest_notes = [](const std::string& out) {
    std::ifstream f(out + "/summary.json");
    return nlohmann::json::parse(f)["stages"].back()["notes"];
  };
  const auto a = rest_notes(plain), b = rest_notes(knobs);
  EXPECT_EQ(a["can_examples"].get<int64_t>(), 10) << a;
  const int64_t yes = b["can_yes"].get<int64_t>();
  EXPECT_EQ(b["can_examples"].get<int64_t>(), 2 * std::min<int64_t>(yes, 10 - yes)) << b;
  for (const auto& n : {a, b})
    EXPECT_EQ(n["sft_examples"].get<int64_t>(),
              60 + n["pseudo_labels_kept"].get<int64_t>() + n["can_examples"].get<int64_t>())
        << n;
}
