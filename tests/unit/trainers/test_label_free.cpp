// Label-free diagnostics against values worked out by hand, and the collapse guard on synthetic
// series and on the metrics of real runs: the demo's Intuitor stages (which lost 5–84 points of
// eval_dev accuracy) must fire it, its TTRL stages (which gained) must not.
// tests/data/collapse_guard/*.jsonl are those runs' metrics.jsonl cut to the keys the guard reads;
// docs/demo.md ("The collapse guard on the demo") has the command that wrote them.
#include "selfrl/trainers/label_free.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include "selfrl/loops/guard_replay.h"
#include "test_util.h"

namespace selfrl::trainers {
namespace {

std::optional<std::string> A(const char* s) { return std::string(s); }
const std::optional<std::string> kNone;

TEST(LabelFreeSums, OneGroupByHand) {
  // answers 7 7 7 5 – 5 7 9: majority 7 (4 votes of 8), distinct {7, 5, 9}, one without answer.
  GroupAnswers g;
  g.answers = {A("7"), A("7"), A("7"), A("5"), kNone, A("5"), A("7"), A("9")};
  // certainties: the majority's samples 0.9 0.5 0.3 0.3; the others 0.4 (5), 0.1 (none), 0.3 (5), 0.8 (9)
  g.certainty = {0.9, 0.5, 0.3, 0.4, 0.1, 0.3, 0.3, 0.8};
  g.has_greedy = true;
  g.greedy_answer = A("7");
  LabelFreeSums s;
  s.add(g);
  const auto m = s.scalars();
  EXPECT_DOUBLE_EQ(m.at("label_free/majority_share"), 4.0 / 8);
  EXPECT_DOUBLE_EQ(m.at("label_free/answer_diversity"), 3.0 / 8);
  EXPECT_DOUBLE_EQ(m.at("label_free/no_answer_rate"), 1.0 / 8);
  EXPECT_DOUBLE_EQ(m.at("label_free/greedy_majority_agreement"), 1.0);
  // Pairs (majority sample, other sample): 4 x 4 = 16. Wins (majority more certain; ties ½):
  //   0.9 beats 0.4 0.1 0.3 0.8 → 4;  0.5 beats 0.4 0.1 0.3, loses to 0.8 → 3;
  //   0.3 beats 0.1, ties 0.3, loses 0.4 0.8 → 1.5; twice → 3.   Total 10 / 16.
  EXPECT_DOUBLE_EQ(s.pairs, 16);
  EXPECT_DOUBLE_EQ(m.at("label_free/certainty_agreement_auroc"), 10.0 / 16);
}

TEST(LabelFreeSums, TiesKeepTheFirstAnswerAndGroupsAverage) {
  LabelFreeSums s;
  GroupAnswers tie;  // 3 and 4 have two votes each: the first seen (3) is the majority
  tie.answers = {A("3"), A("4"), A("4"), A("3")};
  tie.has_greedy = true;
  tie.greedy_answer = A("4");
  s.add(tie);
  GroupAnswers none;  // nobody answers: share 0, diversity 0, greedy (no answer) disagrees
  none.answers = {kNone, kNone, kNone, kNone};
  none.has_greedy = true;
  s.add(none);
  const auto m = s.scalars();
  EXPECT_DOUBLE_EQ(m.at("label_free/majority_share"), (2.0 / 4 + 0.0) / 2);
  EXPECT_DOUBLE_EQ(m.at("label_free/answer_diversity"), (2.0 / 4 + 0.0) / 2);
  EXPECT_DOUBLE_EQ(m.at("label_free/no_answer_rate"), 4.0 / 8);
  EXPECT_DOUBLE_EQ(m.at("label_free/greedy_majority_agreement"), 0.0);
  EXPECT_TRUE(std::isnan(m.at("label_free/certainty_agreement_auroc")));  // no certainties given
  // Sums survive the round trip through a reduction's flat vector.
  const auto back = LabelFreeSums::from_values(s.values()).scalars();
  EXPECT_EQ(back.size(), m.size());
  for (const auto& [k, v] : m)
    if (!std::isnan(v)) EXPECT_DOUBLE_EQ(back.at(k), v) << k;
}

TEST(LabelFreeSums, AnchorAgreementOnlyWithAnchors) {
  LabelFreeSums s;
  GroupAnswers g;
  g.answers = {A("1"), A("1")};
  s.add(g);
  EXPECT_EQ(s.scalars().count("label_free/anchor_agreement"), 0u);  // no anchors checked: no metric
  s.anchors = 8, s.anchor_agree = 6;
  EXPECT_DOUBLE_EQ(s.scalars().at("label_free/anchor_agreement"), 0.75);
  // Sums of two ranks add: (6 + 1) / (8 + 4).
  auto v = s.values(), w = LabelFreeSums{}.values();
  const auto names = LabelFreeSums::names();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "anchors") w[i] = 4;
    if (names[i] == "anchor_agree") w[i] = 1;
    v[i] += w[i];
  }
  EXPECT_DOUBLE_EQ(LabelFreeSums::from_values(v).scalars().at("label_free/anchor_agreement"), 7.0 / 12);
}

metrics::Scalars step(double entropy, double share, double certainty = 10.0, double no_answer = 0.0) {
  return {{"entropy", entropy},
          {"label_free/majority_share", share},
          {"self_certainty", certainty},
          {"label_free/no_answer_rate", no_answer}};
}

TEST(CollapseGuard, DiffusionRuleWithWindowAndPatienceByHand) {
  CollapseGuardConfig c;  // entropy_rise 1.3, agreement_drop 0.03
  c.warmup_steps = 2, c.window = 2, c.patience = 2;
  CollapseGuard g(c);
  // Baseline (steps 0, 1): entropy 0.1, share 0.9.
  auto s0 = step(0.1, 0.9), s1 = step(0.1, 0.9);
  EXPECT_FALSE(g.observe(s0).flagged);
  EXPECT_FALSE(g.observe(s1).flagged);
  // Step 2: window {s1, s2}: entropy (0.1 + 0.2)/2 = 0.15 ≥ 1.3 x 0.1; share (0.9 + 0.82)/2 = 0.86,
  // a drop of 0.04 ≥ 0.03 → flagged (streak 1), not fired.
  auto s2 = step(0.2, 0.82);
  auto v = g.observe(s2);
  EXPECT_TRUE(v.flagged);
  EXPECT_FALSE(v.fired);
  EXPECT_EQ(s2.at("collapse_guard/streak"), 1);
  EXPECT_NE(v.reason.find("entropy rose to 1.5x"), std::string::npos) << v.reason;
  // Step 3: window {s2, s3}: entropy 0.2, share 0.84 → flagged again: fires (patience 2).
  auto s3 = step(0.2, 0.86);
  v = g.observe(s3);
  EXPECT_TRUE(v.fired);
  EXPECT_TRUE(g.fired());
  EXPECT_EQ(g.first_bad_step(), 2);
  // It fires once.
  auto s4 = step(0.2, 0.8);
  EXPECT_FALSE(g.observe(s4).fired);
}

TEST(CollapseGuard, EachHalfOfTheDiffusionRuleAloneDoesNotFlag) {
  CollapseGuardConfig c;
  c.warmup_steps = 1, c.window = 1, c.patience = 1;
  CollapseGuard g(c);
  auto b = step(0.1, 0.9);
  g.observe(b);
  auto hot = step(0.5, 0.9);  // entropy x5, agreement the same: sharper or broader sampling, not collapse
  EXPECT_FALSE(g.observe(hot).flagged);
  auto split = step(0.1, 0.5);  // agreement falls at the same entropy
  EXPECT_FALSE(g.observe(split).flagged);
  auto both = step(0.14, 0.86);  // 1.4x and −0.04: both past the limits
  EXPECT_TRUE(g.observe(both).fired);
}

TEST(CollapseGuard, AnsweredAgreementCatchesALossThatFewerUnansweredSamplesHide) {
  CollapseGuardConfig c;  // entropy_rise 1.3, agreement_drop 0.03, answered_agreement_drop 0.06
  c.warmup_steps = 2, c.window = 1, c.patience = 2;
  // Baseline: entropy 0.1, majority_share 0.6 with 35 % of the samples unanswered: the majority holds
  // 0.6 / 0.65 = 0.923 of the answered samples.
  const auto base = step(0.1, 0.6, 10.0, 0.35);
  // Later: everything is answered (no_answer 0.05), majority_share rose to 0.75, so the plain rule
  // sees no drop; among the answered samples the majority holds 0.75 / 0.95 = 0.789 (−0.134).
  const auto later = step(0.15, 0.75, 10.0, 0.05);
  auto run = [&](CollapseGuardConfig config, metrics::Scalars x) {
    CollapseGuard g(config);
    for (auto b : {base, base}) g.observe(b);
    std::vector<CollapseVerdict> out;
    for (int i = 0; i < 2; ++i) {
      auto m = x;
      out.push_back(g.observe(m));
    }
    return out;
  };
  auto v = run(c, later);
  EXPECT_TRUE(v[0].flagged);
  EXPECT_FALSE(v[0].fired);
  EXPECT_TRUE(v[1].fired);
  EXPECT_NE(v[0].reason.find("entropy rose to 1.5x its baseline 0.1 while the majority's share of the answered "
                             "samples fell from 0.923 to 0.789"),
            std::string::npos)
      << v[0].reason;
  // The same agreement at the baseline's entropy: not diffusion.
  EXPECT_FALSE(run(c, step(0.1, 0.75, 10.0, 0.05))[0].flagged);
  // A smaller loss: 0.84 / 0.95 = 0.884, 0.039 below 0.923 (< 0.06).
  EXPECT_FALSE(run(c, step(0.15, 0.84, 10.0, 0.05))[0].flagged);
  // The measure off: the plain majority_share rose, nothing flags.
  CollapseGuardConfig plain = c;
  plain.answered_agreement_drop = 0;
  EXPECT_FALSE(run(plain, later)[0].flagged);
  // And the plain measure alone still flags a fall of majority_share (0.6 -> 0.55, all answered).
  const auto answered = step(0.1, 0.6), fell = step(0.15, 0.55);
  CollapseGuard g(plain);
  for (auto b : {answered, answered}) g.observe(b);
  auto m = fell;
  EXPECT_TRUE(g.observe(m).flagged);
}

TEST(CollapseGuard, OtherRulesAndStreakReset) {
  CollapseGuardConfig c;
  c.warmup_steps = 1, c.window = 1, c.patience = 2;
  c.entropy_rise = 0;  // diffusion off
  c.no_answer_rise = 0.2;
  c.certainty_rise = 0.5;
  c.agreement_drop = 0.1;
  CollapseGuard g(c);
  auto b = step(0.1, 0.9, 10.0, 0.05);
  g.observe(b);
  auto a = step(0.1, 0.9, 10.0, 0.3);  // no-answer rate +0.25: flagged
  auto v = g.observe(a);
  EXPECT_TRUE(v.flagged);
  EXPECT_NE(v.reason.find("no_answer_rate rose from 0.05 to 0.3"), std::string::npos) << v.reason;
  auto ok = step(0.1, 0.9, 10.0, 0.05);  // streak resets
  EXPECT_FALSE(g.observe(ok).flagged);
  EXPECT_EQ(g.first_bad_step(), -1);
  auto conf = step(0.1, 0.7, 10.5, 0.05);  // certainty +0.5 while share −0.2: confident disagreement
  v = g.observe(conf);
  EXPECT_TRUE(v.flagged);
  EXPECT_FALSE(v.fired);
  EXPECT_NE(v.reason.find("self_certainty rose 0.5"), std::string::npos) << v.reason;
  auto conf2 = step(0.1, 0.7, 10.6, 0.05);
  EXPECT_TRUE(g.observe(conf2).fired);
  EXPECT_EQ(g.first_bad_step(), 3);
}

TEST(CollapseGuard, AnchorRuleUsesTheWindowMeanOfStepsThatCheckedAnchors) {
  CollapseGuardConfig c;
  c.warmup_steps = 2, c.window = 3, c.patience = 2;
  c.min_anchor_agreement = 0.8;
  CollapseGuard g(c);
  // Entropy falls and the majority sharpens: rule 1 (diffusion) cannot flag this run.
  auto with = [](double entropy, double share, std::optional<double> anchors) {
    auto m = step(entropy, share);
    if (anchors) m["label_free/anchor_agreement"] = *anchors;
    return m;
  };
  std::vector<metrics::Scalars> run = {
      with(0.05, 0.8, std::nullopt),  // 1: anchors collected, none checked yet
      with(0.05, 0.8, 1.0),           // 2: warm-up
      with(0.04, 0.9, 0.9),           // 3: steps 1-3, step 1 checked none: (1.0 + 0.9) / 2 = 0.95
      with(0.03, 0.9, 0.6),           // 4: window steps 2-4: (1.0 + 0.9 + 0.6) / 3 = 0.833 — not below 0.8
      with(0.02, 0.95, 0.5),          // 5: steps 3-5: (0.9 + 0.6 + 0.5) / 3 = 0.667 → flagged
      with(0.02, 0.95, 0.9),          // 6: steps 4-6: (0.6 + 0.5 + 0.9) / 3 = 0.667 → flagged again: fires
  };
  std::vector<bool> flagged, fired;
  std::string reason;
  for (auto& m : run) {
    const auto v = g.observe(m);
    flagged.push_back(v.flagged), fired.push_back(v.fired);
    if (v.flagged) reason = v.reason;
  }
  EXPECT_EQ(flagged, (std::vector<bool>{false, false, false, false, true, true}));
  EXPECT_EQ(fired, (std::vector<bool>{false, false, false, false, false, true}));
  EXPECT_NE(reason.find("label_free/anchor_agreement is 0.667 (< 0.8)"), std::string::npos) << reason;
  EXPECT_EQ(g.first_bad_step(), 4);
  // Off (0): the same run never flags.
  CollapseGuardConfig off = c;
  off.min_anchor_agreement = 0;
  CollapseGuard quiet(off);
  for (auto m : run) EXPECT_FALSE(quiet.observe(m).flagged);
}

TEST(CollapseGuard, StateRoundTripContinuesTheSameWay) {
  CollapseGuardConfig c;
  c.warmup_steps = 2, c.window = 3, c.patience = 3;
  CollapseGuard a(c), b(c);
  const std::vector<metrics::Scalars> series = {step(0.1, 0.9), step(0.1, 0.9), step(0.2, 0.8),
                                                step(0.2, 0.8), step(0.2, 0.8), step(0.2, 0.8)};
  for (size_t i = 0; i < 4; ++i) {
    auto m = series[i];
    a.observe(m);
  }
  b.restore(nlohmann::json::parse(a.state().dump()));  // through text, as in a checkpoint
  for (size_t i = 4; i < series.size(); ++i) {
    auto ma = series[i], mb = series[i];
    const auto va = a.observe(ma), vb = b.observe(mb);
    EXPECT_EQ(va.flagged, vb.flagged);
    EXPECT_EQ(va.fired, vb.fired);
    EXPECT_EQ(ma, mb);
  }
  EXPECT_TRUE(b.fired());
}

TEST(CollapseGuard, OffNeverFlagsAndBadSettingsAreRefused) {
  CollapseGuardConfig c;
  c.action = CollapseAction::kOff;
  c.warmup_steps = 1, c.window = 1, c.patience = 1;
  CollapseGuard g(c);
  auto b = step(0.1, 0.9), x = step(1.0, 0.1, 10.0, 1.0);
  g.observe(b);
  EXPECT_FALSE(g.observe(x).flagged);
  EXPECT_EQ(x.count("collapse_guard/flagged"), 0u);
  CollapseGuardConfig bad;
  bad.patience = 0;
  EXPECT_SELFRL_ERROR(CollapseGuard{bad}, "patience");
  EXPECT_EQ(parse_collapse_action("rollback"), CollapseAction::kRollback);
  EXPECT_SELFRL_ERROR(parse_collapse_action("halt"), "unknown action 'halt'");
}

// The first step (1-based, as in metrics.jsonl) at which the default guard fires on a recorded
// run, or 0; and the run's eval accuracy before and after.
struct Replay {
  int64_t fired_at = 0;
  double first_accuracy = -1, last_accuracy = -1;
};

Replay replay(const std::string& name, CollapseGuardConfig config = {}) {
  const std::string path = test::source_dir() + "/tests/data/collapse_guard/" + name + ".jsonl";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  CollapseGuard g(config);  // the defaults unless given
  Replay r;
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j.at("kind") == "iteration") {
      const double acc = j.at("eval/accuracy").get<double>();
      if (r.first_accuracy < 0) r.first_accuracy = acc;
      r.last_accuracy = acc;
      continue;
    }
    metrics::Scalars m;
    for (const auto& [k, v] : j.items())
      if (v.is_number() && k != "step") m[k] = v.get<double>();
    if (g.observe(m).fired) r.fired_at = j.at("step").get<int64_t>();
  }
  return r;
}

TEST(CollapseGuard, FiresOnTheDemosCollapsingIntuitorRuns) {
  // seed: (accuracy 0.673 → 0.307, fires at step 14), (0.737 → 0.687, 10), (0.887 → 0.050, 13).
  for (const auto& [run, at] :
       std::vector<std::pair<std::string, int64_t>>{{"intuitor_s0", 14}, {"intuitor_s1", 10}, {"intuitor_s2", 13}}) {
    const auto r = replay(run);
    EXPECT_LT(r.last_accuracy, r.first_accuracy) << run;
    EXPECT_EQ(r.fired_at, at) << run;
  }
}

TEST(CollapseGuard, StaysQuietOnTheDemosTtrlRuns) {
  for (const char* run : {"ttrl_s0", "ttrl_s2"}) {
    const auto r = replay(run);
    EXPECT_GT(r.last_accuracy, r.first_accuracy) << run;  // these runs gained
    EXPECT_EQ(r.fired_at, 0) << run;
  }
}

// The demo's GRPO stages on an AMD EPYC (2026-12-01, `selfrl demo --seed S`, 40 steps, eval_test
// accuracy before and after, label_free/anchor_agreement logged; docs/demo.md, "On an AMD EPYC"):
// with 2 BLAS threads (amd_*: TTRL, Intuitor with self-certainty and with Borda, seeds 0-4) and
// with 1 (amd1t_*: OPENBLAS_NUM_THREADS=1, TTRL and self-certainty Intuitor, seeds 0-4). The
// demo's guard (the defaults) must fire on every stage that lost more than 10 points and on none
// that did not. Without the answered-agreement measure, rule 1 misses the confident collapses of
// seeds 1 and 4 with 1 BLAS thread (-62 and -22 points: majority_share stays high because the
// policy stops leaving samples unanswered); with it they fire at steps 29 and 32. The anchor rule
// alone (0.45, the demo's guard until 2026-12-02) never fires on these healthy stages (they keep at
// least 0.47 of their anchors, Borda seed 4 the fewest: a weak base's unanimous errors are the ones
// that go) and catches every collapse but the latest (2 threads, seed 3, down to 0.42 only in its
// last steps); on the 80-step runs below it fires on a healthy Borda stage.
struct DemoRun {
  const char* name;
  bool self_certainty_intuitor;
};
const DemoRun kAmdRuns[] = {
    {"amd_ttrl_s0", false},      {"amd_ttrl_s1", false},      {"amd_ttrl_s2", false},      {"amd_ttrl_s3", false},
    {"amd_ttrl_s4", false},      {"amd_intuitor_s0", true},   {"amd_intuitor_s1", true},   {"amd_intuitor_s2", true},
    {"amd_intuitor_s3", true},   {"amd_intuitor_s4", true},   {"amd_borda_s0", false},     {"amd_borda_s1", false},
    {"amd_borda_s2", false},     {"amd_borda_s3", false},     {"amd_borda_s4", false},     {"amd1t_ttrl_s0", false},
    {"amd1t_ttrl_s1", false},    {"amd1t_ttrl_s2", false},    {"amd1t_ttrl_s3", false},    {"amd1t_ttrl_s4", false},
    {"amd1t_intuitor_s0", true}, {"amd1t_intuitor_s1", true}, {"amd1t_intuitor_s2", true}, {"amd1t_intuitor_s3", true},
    {"amd1t_intuitor_s4", true}};

TEST(CollapseGuard, DemoGuardSeparatesTheAmdDemoRuns) {
  const CollapseGuardConfig demo;
  CollapseGuardConfig plain = demo;  // rule 1 without the answered-agreement measure
  plain.answered_agreement_drop = 0;
  CollapseGuardConfig anchors_only = demo;
  anchors_only.entropy_rise = 0;
  anchors_only.no_answer_rise = 0;
  anchors_only.min_anchor_agreement = 0.45;
  int collapsed = 0, healthy = 0, caught_by_anchors = 0, collapsed_intuitor = 0;
  for (const DemoRun& run : kAmdRuns) {
    const auto r = replay(run.name, demo);
    const auto a = replay(run.name, anchors_only);
    ASSERT_GE(r.first_accuracy, 0) << run.name;
    const bool collapse = r.last_accuracy < r.first_accuracy - 0.1;
    (collapse ? collapsed : healthy) += 1;
    collapsed_intuitor += collapse && run.self_certainty_intuitor;
    EXPECT_EQ(r.fired_at > 0, collapse) << run.name << ": " << r.first_accuracy << " -> " << r.last_accuracy;
    if (!collapse) EXPECT_EQ(a.fired_at, 0) << run.name << ": anchors alone";
    if (collapse && a.fired_at > 0) caught_by_anchors += 1;
  }
  EXPECT_EQ(collapsed, 9);  // every self-certainty Intuitor stage but seed 1's with 2 threads (-3.4)
  EXPECT_EQ(collapsed_intuitor, 9);
  EXPECT_EQ(healthy, 16);
  EXPECT_EQ(caught_by_anchors, 8);  // all but 2 threads' seed 3, whose late collapse rule 1 catches
  for (const auto& [run, at] :
       std::vector<std::pair<std::string, int64_t>>{{"amd1t_intuitor_s1", 29}, {"amd1t_intuitor_s4", 32}}) {
    EXPECT_EQ(replay(run, demo).fired_at, at) << run;
    EXPECT_EQ(replay(run, plain).fired_at, 0) << run;
  }
}

// The demo's 80-step GRPO stages from the same ten AMD bases (2026-12-01/02, docs/demo.md, "The
// collapse guard on the 80-step runs"; tests/data/collapse_guard/runs80.jsonl, written by
// scripts/collapse_guard_fixture.py --runs): TTRL, Borda and self-certainty Intuitor at learning
// rates 1e-4, 2e-5 and 5e-6, 1 and 2 BLAS threads, seeds 0-4. The default guard fires on all 14
// stages that lost more than 10 points of eval_test accuracy — among them the slow collapse of
// 2 threads seed 0 at 2e-5 (-12.6), which only the answered-agreement measure sees, at step 77 of
// 80 — and on none of the 34 that lost less than 3 (it fires late, at steps 73 and 74, on the two
// self-certainty runs at 2e-5 that lost 3.0 and 4.2). The anchor rule at 0.45 fires on Borda with
// 2 threads, seed 4, which gained 6 points (its weak base's unanimous errors are fixed).
struct Run80 {
  std::string name;
  double before = 0, after = 0;
  std::vector<metrics::Scalars> steps;
};

std::vector<Run80> runs80() {
  const std::string path = test::source_dir() + "/tests/data/collapse_guard/runs80.jsonl";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::vector<Run80> runs;
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    Run80 r{j.at("name").get<std::string>(), j.at("before").get<double>(), j.at("after").get<double>(), {}};
    for (const auto& [key, values] : j.at("signals").items()) {
      r.steps.resize(values.size());
      for (size_t i = 0; i < values.size(); ++i)
        if (!values[i].is_null()) r.steps[i][key] = values[i].get<double>();
    }
    runs.push_back(std::move(r));
  }
  return runs;
}

// The 1-based step at which `config` fires on the run, or 0.
int64_t fires_at(const Run80& run, const CollapseGuardConfig& config) {
  CollapseGuard g(config);
  for (size_t i = 0; i < run.steps.size(); ++i) {
    auto m = run.steps[i];
    if (g.observe(m).fired) return static_cast<int64_t>(i) + 1;
  }
  return 0;
}

TEST(CollapseGuard, SeparatesThe80StepRuns) {
  const auto runs = runs80();
  ASSERT_EQ(runs.size(), 50u);
  const CollapseGuardConfig defaults;
  CollapseGuardConfig plain = defaults;
  plain.answered_agreement_drop = 0;
  CollapseGuardConfig with_anchors = defaults;
  with_anchors.min_anchor_agreement = 0.45;
  int collapsed = 0, healthy = 0, between = 0;
  std::map<std::string, int64_t> fired;
  for (const auto& run : runs) {
    ASSERT_EQ(run.steps.size(), 80u) << run.name;
    const int64_t at = fires_at(run, defaults);
    fired[run.name] = at;
    // Accuracy lost, in tenths of a point (eval_test has 500 items: multiples of 2).
    const auto lost = std::lround((run.before - run.after) * 1000);
    if (lost > 100) {
      ++collapsed;
      EXPECT_GT(at, 0) << run.name << ": " << run.before << " -> " << run.after;
    } else if (lost < 30) {
      ++healthy;
      EXPECT_EQ(at, 0) << run.name << ": " << run.before << " -> " << run.after;
    } else {
      ++between;
    }
  }
  EXPECT_EQ(collapsed, 14);
  EXPECT_EQ(healthy, 34);
  EXPECT_EQ(between, 2);
  EXPECT_EQ(fired["certainty_2e-5_2t_s0"], 77);  // the slow collapse
  EXPECT_EQ(fired["certainty_2e-5_1t_s2"], 73);
  EXPECT_EQ(fired["certainty_2e-5_2t_s3"], 74);
  for (const auto& run : runs) {
    if (run.name == "certainty_2e-5_2t_s0") EXPECT_EQ(fires_at(run, plain), 0);  // seen by the new measure only
    if (run.name == "borda_2t_s4") EXPECT_EQ(fires_at(run, with_anchors), 17);   // the anchor rule's false alarm
  }
}

// loops::replay_collapse_guard (selfrl guard, selfrl.replay_collapse_guard) on the slow collapse
// as metrics.jsonl rows: the demo's eval and iteration lines and rows without entropy are not
// steps; settings go through the recipe reader ("collapse_guard." optional).
TEST(GuardReplay, ReplaysMetricsRowsWithRecipeSettings) {
  const auto runs = runs80();
  const auto it =
      std::find_if(runs.begin(), runs.end(), [](const Run80& r) { return r.name == "certainty_2e-5_2t_s0"; });
  ASSERT_NE(it, runs.end());
  std::vector<nlohmann::json> rows = {{{"step", 0}, {"kind", "iteration"}, {"eval/accuracy", 0.7}}};
  for (size_t i = 0; i < it->steps.size(); ++i) {
    nlohmann::json row = {{"step", i}, {"kind", "train"}, {"learning_rate", 2e-5}};
    for (const auto& [k, v] : it->steps[i]) row[k] = v;
    rows.push_back(row);
    if (i == 40) rows.push_back({{"step", i}, {"kind", "eval"}, {"entropy", 9.0}, {"eval/accuracy", 0.5}});
  }
  const auto r = loops::replay_collapse_guard(rows, loops::collapse_guard_settings({}));
  EXPECT_EQ(r.steps, 80);
  ASSERT_TRUE(r.fired_at_step.has_value());
  EXPECT_EQ(*r.fired_at_step, 77);
  EXPECT_EQ(*r.first_flagged_step, 75);
  EXPECT_EQ(r.flagged_steps, (std::vector<int64_t>{75, 76, 77, 78, 79, 80}));
  EXPECT_NE(r.reason.find("answered samples fell from 0.97"), std::string::npos) << r.reason;
  const auto j = loops::to_json(r);
  EXPECT_EQ(j.at("fired_at_step"), 77);
  // Settings: with and without the prefix; the measure off, the guard stays quiet.
  const auto off = loops::replay_collapse_guard(rows, loops::collapse_guard_settings({"answered_agreement_drop=0"}));
  EXPECT_FALSE(off.fired_at_step.has_value());
  EXPECT_TRUE(loops::to_json(off).at("fired_at_step").is_null());
  EXPECT_EQ(loops::collapse_guard_settings({"collapse_guard.patience=7"}).patience, 7);
  EXPECT_EQ(loops::collapse_guard_settings({}).answered_agreement_drop, 0.06);
  EXPECT_SELFRL_ERROR(loops::collapse_guard_settings({"patienc=2"}), "did you mean 'collapse_guard.patience'");
  EXPECT_SELFRL_ERROR(loops::collapse_guard_settings({"patience=0"}), "collapse_guard.patience", "[1, inf)");
  EXPECT_SELFRL_ERROR(loops::collapse_guard_settings({"patience"}), "not KEY=VALUE");
  EXPECT_SELFRL_ERROR(loops::replay_collapse_guard({{{"kind", "eval"}, {"loss", 1.0}}}, {}), "no GRPO step");
}

}  // namespace
}  // namespace selfrl::trainers
