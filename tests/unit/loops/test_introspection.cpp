// KnowRL's IntrospectionGenerator with a scripted sampler: writing, dedupe, k judgements,
// consensus labels and agreement; feasibility parsing; accuracy / F1 by hand.
#include <gtest/gtest.h>

#include <fstream>

#include "selfrl/introspection/introspection_generator.h"
#include "test_util.h"

using namespace selfrl;
using namespace selfrl::introspection;

TEST(Introspection, ParsesFeasibilityAndNormalizesTasks) {
  EXPECT_EQ(parse_feasibility(" Infeasible."), "infeasible");
  EXPECT_EQ(parse_feasibility("feasible, not infeasible"), "feasible");
  EXPECT_EQ(parse_feasibility("it is infeasible, not feasible"), "infeasible");
  EXPECT_EQ(parse_feasibility("yes"), std::nullopt);
  EXPECT_EQ(normalize_task("  What is 2+2?? "), "what is 2 2");
}

TEST(Introspection, ConsensusAndScoresByHand) {
  const auto c = consensus({"feasible", "infeasible", "feasible", std::nullopt, "feasible"});
  EXPECT_EQ(c.label, "feasible");
  EXPECT_DOUBLE_EQ(c.agreement, 3.0 / 5);
  EXPECT_FALSE(consensus({"feasible", "infeasible"}).label);  // tie
  // gold F F I I, predicted F I I none: accuracy 2/4; F: tp 1 fp 0 fn 1 → 2/3; I: tp 1 fp 1 fn 1 → 1/2.
  const auto s = binary_scores({"feasible", "infeasible", "infeasible", std::nullopt},
                               {"feasible", "feasible", "infeasible", "infeasible"});
  EXPECT_DOUBLE_EQ(s.accuracy, 0.5);
  EXPECT_NEAR(s.f1_feasible, 2.0 / 3, 1e-12);
  EXPECT_NEAR(s.f1_infeasible, 0.5, 1e-12);
  EXPECT_NEAR(s.macro_f1, (2.0 / 3 + 0.5) / 2, 1e-12);
}

TEST(Introspection, GeneratorWritesDedupesJudgesAndKeepsConsensus) {
  std::vector<SeedTask> seeds = {{"what is 1 + 1?", "feasible", ""}, {"what happens tomorrow?", "infeasible", ""}};
  int write_calls = 0;
  TextSampler sampler = [&](const std::vector<std::string>& prompts, int64_t n, double, int64_t, uint64_t) {
    std::vector<std::vector<std::string>> out;
    if (prompts[0].rfind("Tasks an AI", 0) == 0) {
      ++write_calls;
      EXPECT_EQ(n, 1);
      // 3 per category: feasible ones, a duplicate of a seed, an empty one, infeasible ones.
      const std::vector<std::string> tasks = {" what is 2 + 2?\nmore text", "What is 1 + 1 ?", "",
                                              "who wins in 2090?",          "what is 2+2",     "what is my name?"};
      for (const auto& t : tasks) out.push_back({t});
      EXPECT_EQ(prompts.size(), tasks.size());
      return out;
    }
    for (const auto& p : prompts) {
      EXPECT_EQ(n, 4);
      if (p.find("2 + 2") != std::string::npos)
        out.push_back({"feasible", "feasible", "feasible", "infeasible"});
      else if (p.find("2090") != std::string::npos)
        out.push_back({"infeasible", "infeasible", "feasible", "??"});
      else
        out.push_back({"feasible", "infeasible", "feasible", "infeasible"});  // my name: tie
    }
    return out;
  };
  IntrospectionConfig cfg;
  cfg.tasks_per_category = 3;
  cfg.num_judgements = 4;
  cfg.min_agreement = 0.5;
  IntrospectionGenerator gen(sampler, cfg);
  std::vector<std::string> avoid;
  const auto r = gen.generate(seeds, avoid, 0);
  EXPECT_EQ(write_calls, 1);
  EXPECT_EQ(r.written, 6);
  EXPECT_EQ(r.empty, 1);
  EXPECT_EQ(r.duplicates, 2);  // the seed "what is 1 + 1?" and "what is 2+2" (same key as "what is 2 + 2?")
  EXPECT_EQ(r.judged, 3);
  EXPECT_EQ(r.no_consensus, 1);
  ASSERT_EQ(r.kept.size(), 2u);
  EXPECT_EQ(r.kept[0].task, "what is 2 + 2?");
  EXPECT_EQ(*r.kept[0].consensus.label, "feasible");
  EXPECT_DOUBLE_EQ(r.kept[0].consensus.agreement, 0.75);
  EXPECT_EQ(*r.kept[1].consensus.label, "infeasible");
  EXPECT_DOUBLE_EQ(r.kept[1].consensus.agreement, 0.5);
  EXPECT_NEAR(r.self_consistency, (0.75 + 0.5 + 0.0) / 3, 1e-12);
  EXPECT_EQ(avoid.size(), 2u);
}

TEST(Introspection, SeedFileErrorsNameTheLine) {
  selfrl::test::TempDir d;
  selfrl::test::write_bytes(
      d.file("s.jsonl"), "{\"prompt\": \"a\", \"label\": \"feasible\"}\n{\"prompt\": \"b\", \"label\": \"maybe\"}\n");
  EXPECT_SELFRL_ERROR(load_seed_tasks(d.file("s.jsonl")), "s.jsonl:2", "neither");
  selfrl::test::write_bytes(d.file("t.jsonl"), "{\"prompt\": \"a\", \"label\": \"feasible\"}\n");
  EXPECT_SELFRL_ERROR(load_seed_tasks(d.file("t.jsonl")), "no seed task is labelled \"infeasible\"");
}
