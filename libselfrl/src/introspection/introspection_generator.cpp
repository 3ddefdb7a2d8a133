// KnowRL's introspection: write tasks, judge feasibility k times, keep the consensus.
#include "selfrl/introspection/introspection_generator.h"

#include <algorithm>
#include <cctype>
#include <random>
#include <set>

#include "selfrl/core/error.h"
#include "selfrl/core/seed.h"
#include "selfrl/io/jsonl.h"

namespace selfrl::introspection {

std::vector<SeedTask> load_seed_tasks(const std::string& path, const std::string& label_field) {
  io::JsonlReader reader(path);
  std::vector<SeedTask> out;
  nlohmann::json row;
  while (reader.next(row)) {
    if (!row.contains("prompt") || !row["prompt"].is_string())
      throw Error("seed task has no \"prompt\" string").at(reader.where());
    if (!row.contains(label_field) || !row[label_field].is_string())
      throw Error("seed task has no \"" + label_field + "\" string")
          .at(reader.where())
          .hint("label it \"feasible\" or \"infeasible\"");
    const std::string label = row[label_field].get<std::string>();
    if (label != kFeasible && label != kInfeasible)
      throw Error("label '" + label + "' is neither \"feasible\" nor \"infeasible\"").at(reader.where());
    out.push_back({row["prompt"].get<std::string>(), label, reader.where()});
  }
  if (out.empty()) throw Error("seed task file is empty").at(path + ":1");
  for (const char* c : {kFeasible, kInfeasible})
    if (std::none_of(out.begin(), out.end(), [&](const SeedTask& s) { return s.label == c; }))
      throw Error(std::string("no seed task is labelled \"") + c + "\"")
          .at(path)
          .hint("give the writer examples of both categories");
  return out;
}

std::string judge_prompt(const std::string& task) {
  return "Task: " + task + "\nCan you solve this task correctly and reliably? Reply feasible or infeasible.\nReply:";
}

std::string writer_prompt(const std::string& label, const std::vector<std::string>& examples) {
  std::string p = label == kFeasible
                      ? "Tasks an AI assistant can solve correctly and reliably:\n"
                      : "Tasks an AI assistant cannot solve reliably (missing information, unknowable or "
                        "unanswerable):\n";
  for (const auto& e : examples) p += "- " + e + "\n";
  return p + "-";
}

std::optional<std::string> parse_feasibility(const std::string& text) {
  std::string low;
  for (char ch : text) low += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const auto inf = low.find(kInfeasible);
  auto fea = low.find(kFeasible);
  if (fea != std::string::npos && inf != std::string::npos && fea == inf + 2) fea = low.find(kFeasible, inf + 10);
  if (inf == std::string::npos && fea == std::string::npos) return std::nullopt;
  if (fea == std::string::npos || (inf != std::string::npos && inf < fea)) return std::string(kInfeasible);
  return std::string(kFeasible);
}

std::string normalize_task(const std::string& task) {
  std::string out;
  bool space = false;
  for (char ch : task) {
    const auto u = static_cast<unsigned char>(ch);
    if (std::isalnum(u) || u >= 0x80) {
      if (space && !out.empty()) out += ' ';
      out += static_cast<char>(std::tolower(u));
      space = false;
    } else {
      space = true;
    }
  }
  return out;
}

Consensus consensus(const std::vector<std::optional<std::string>>& judgements) {
  Consensus c;
  for (const auto& j : judgements) {
    if (!j) continue;
    (*j == kFeasible ? c.feasible : c.infeasible) += 1;
  }
  if (judgements.empty() || c.feasible == c.infeasible) return c;
  c.label = c.feasible > c.infeasible ? kFeasible : kInfeasible;
  c.agreement = static_cast<double>(std::max(c.feasible, c.infeasible)) / static_cast<double>(judgements.size());
  return c;
}

BinaryScores binary_scores(const std::vector<std::optional<std::string>>& pred, const std::vector<std::string>& gold) {
  SELFRL_CHECK(pred.size() == gold.size(), "binary_scores: ", pred.size(), " predictions for ", gold.size(), " labels");
  BinaryScores s;
  s.n = static_cast<int64_t>(gold.size());
  auto f1 = [&](const std::string& pos) {
    double tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < gold.size(); ++i) {
      const bool p = pred[i] && *pred[i] == pos, g = gold[i] == pos;
      tp += p && g, fp += p && !g, fn += !p && g;
    }
    return tp == 0 ? 0.0 : 2 * tp / (2 * tp + fp + fn);
  };
  double correct = 0;
  for (size_t i = 0; i < gold.size(); ++i) correct += pred[i] && *pred[i] == gold[i];
  s.accuracy = gold.empty() ? 0.0 : correct / static_cast<double>(gold.size());
  s.f1_feasible = f1(kFeasible);
  s.f1_infeasible = f1(kInfeasible);
  s.macro_f1 = (s.f1_feasible + s.f1_infeasible) / 2;
  return s;
}

IntrospectionGenerator::IntrospectionGenerator(TextSampler sampler, IntrospectionConfig config)
    : sample_(std::move(sampler)), cfg_(std::move(config)) {}

IntrospectionResult IntrospectionGenerator::generate(const std::vector<SeedTask>& seeds,
                                                     std::vector<std::string>& avoid, uint64_t round) {
  IntrospectionResult r;
  std::mt19937_64 rng(derive_seed(cfg_.seed, {0x1a7, round}));
  std::set<std::string> seen;
  for (const auto& s : seeds) seen.insert(normalize_task(s.task));
  for (const auto& a : avoid) seen.insert(normalize_task(a));

  // 1. Write: tasks_per_category prompts per category, each with `shots` random seeds of it.
  std::vector<std::string> prompts, intended;
  for (const char* label : {kFeasible, kInfeasible}) {
    std::vector<std::string> pool;
    for (const auto& s : seeds)
      if (s.label == label) pool.push_back(s.task);
    for (int64_t t = 0; t < cfg_.tasks_per_category; ++t) {
      std::vector<std::string> shots = pool;
      std::shuffle(shots.begin(), shots.end(), rng);
      shots.resize(std::min<size_t>(shots.size(), static_cast<size_t>(cfg_.shots)));
      prompts.push_back(writer_prompt(label, shots));
      intended.push_back(label);
    }
  }
  const auto written =
      sample_(prompts, 1, cfg_.temperature, cfg_.max_task_tokens, derive_seed(cfg_.seed, {0x1a8, round}));
  // 2. Dedupe.
  std::vector<GeneratedTask> candidates;
  for (size_t i = 0; i < written.size(); ++i) {
    ++r.written;
    std::string task = written[i].empty() ? "" : written[i][0];
    if (auto nl = task.find('\n'); nl != std::string::npos) task = task.substr(0, nl);
    while (!task.empty() && std::isspace(static_cast<unsigned char>(task.front()))) task.erase(task.begin());
    while (!task.empty() && std::isspace(static_cast<unsigned char>(task.back()))) task.pop_back();
    const std::string key = normalize_task(task);
    if (key.empty()) {
      ++r.empty;
      continue;
    }
    if (!seen.insert(key).second) {
      ++r.duplicates;
      continue;
    }
    candidates.push_back({task, intended[i], {}});
  }
  // 3. Judge k times; 4. keep the consensus.
  std::vector<std::string> jp;
  for (const auto& c : candidates) jp.push_back(judge_prompt(c.task));
  const auto judgements = jp.empty() ? std::vector<std::vector<std::string>>{}
                                     : sample_(jp, cfg_.num_judgements, cfg_.judge_temperature, cfg_.max_judge_tokens,
                                               derive_seed(cfg_.seed, {0x1a9, round}));
  double agreement = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    std::vector<std::optional<std::string>> labels;
    for (const auto& j : judgements[i]) labels.push_back(parse_feasibility(j));
    candidates[i].consensus = consensus(labels);
    ++r.judged;
    agreement += candidates[i].consensus.agreement;
    if (!candidates[i].consensus.label) {
      ++r.no_consensus;
      continue;
    }
    if (candidates[i].consensus.agreement >= cfg_.min_agreement) {
      avoid.push_back(candidates[i].task);
      r.kept.push_back(candidates[i]);
    }
  }
  r.self_consistency = r.judged > 0 ? agreement / static_cast<double>(r.judged) : 0.0;
  return r;
}

}  // namespace selfrl::introspection
