// Curves of metrics.jsonl files (see metrics_plot.h).
#include "selfrl/metrics/metrics_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "selfrl/core/error.h"
#include "selfrl/io/jsonl.h"
#include "selfrl/metrics/svg_plot.h"
#include "selfrl/recipe/recipe.h"

namespace selfrl::metrics {
namespace {

namespace fs = std::filesystem;

// What a GRPO / SFT / DPO / loop run logs that is worth a look first (TRL's names).
const std::vector<std::string> kDefaultMetrics = {"reward",
                                                  "loss",
                                                  "kl",
                                                  "entropy",
                                                  "self_certainty",
                                                  "completions/mean_length",
                                                  "frac_reward_zero_std",
                                                  "grad_norm",
                                                  "rewards/accuracies",
                                                  "eval/accuracy",
                                                  "eval/maj_at_k"};

struct Run {
  std::string label, path;
  // kind -> metric -> (step, value)
  std::map<std::string, std::map<std::string, std::vector<std::pair<double, double>>>> series;
};

Run read_run(const std::string& arg) {
  Run run;
  run.path = fs::is_directory(arg) ? (fs::path(arg) / "metrics.jsonl").string() : arg;
  if (!fs::exists(run.path)) {
    throw Error("no metrics file here")
        .at(run.path)
        .hint("give a run directory holding metrics.jsonl, or the file itself");
  }
  const fs::path p(run.path);
  run.label = (fs::is_directory(arg) ? fs::path(arg) : p.parent_path()).filename().string();
  if (run.label.empty() || run.label == ".") run.label = p.stem().string();
  io::JsonlReader reader(run.path);
  nlohmann::json rec;
  while (reader.next(rec)) {
    if (!rec.is_object() || !rec.contains("step") || !rec["step"].is_number()) {
      throw Error("record has no numeric \"step\"")
          .at(reader.where())
          .hint("metrics.jsonl lines are {\"step\": N, ...}");
    }
    const double step = rec["step"].get<double>();
    const std::string kind = rec.value("kind", std::string("train"));
    for (auto it = rec.begin(); it != rec.end(); ++it) {
      if (it.key() == "step" || it.key() == "kind") continue;
      // null = a non-finite value was logged: keep the gap.
      if (it->is_number())
        run.series[kind][it.key()].push_back({step, it->get<double>()});
      else if (it->is_null())
        run.series[kind][it.key()].push_back({step, std::nan("")});
    }
  }
  if (run.series.empty()) throw Error("no metrics in this file").at(run.path).hint("is the run still starting?");
  return run;
}

}  // namespace

size_t plot_metrics(const std::vector<std::string>& run_paths, const std::string& out,
                    const MetricsPlotOptions& options) {
  const std::string ext = fs::path(out).extension().string();
  if (ext != ".svg" && ext != ".png") {
    throw Error("the plot file must end in .svg or .png, got \"" + out + "\"").hint("e.g. --out run/curves.svg");
  }
  if (run_paths.empty()) throw Error("no runs to plot").hint("give metrics.jsonl files or run directories");
  if (out.find('\'') != std::string::npos) throw Error("the plot file name must not contain a quote character").at(out);
  std::vector<Run> runs;
  for (const auto& a : run_paths) runs.push_back(read_run(a));
  const auto& kind_filter = options.kind;

  std::set<std::string> available;
  for (const auto& r : runs)
    for (const auto& [kind, metrics] : r.series)
      if (!kind_filter || kind == *kind_filter)
        for (const auto& [name, pts] : metrics) available.insert(name);
  if (available.empty()) {
    throw Error("no records of kind \"" + kind_filter.value_or("") + "\" in " + runs.front().path)
        .hint("drop --kind, or pick a kind the file has");
  }

  std::vector<std::string> wanted;
  if (!options.metrics.empty()) {
    wanted = options.metrics;
    for (const auto& m : wanted) {
      if (available.count(m)) continue;
      std::string best;
      size_t best_d = 4;
      for (const auto& a : available) {
        const size_t d = recipe::edit_distance(m, a);
        if (d < best_d) best_d = d, best = a;
      }
      std::string list;
      for (const auto& a : available) list += (list.empty() ? "" : ", ") + a;
      throw Error("metric \"" + m + "\" is not in the runs")
          .hint(best.empty() ? "the runs have: " + list : "did you mean \"" + best + "\"? The runs have: " + list);
    }
  } else {
    for (const auto& m : kDefaultMetrics)
      if (available.count(m)) wanted.push_back(m);
    if (wanted.empty())  // not a training run we know: the first few metrics it has
      for (const auto& a : available)
        if (wanted.size() < 6 && a.rfind("time/", 0) != 0 && a.rfind("perf/", 0) != 0) wanted.push_back(a);
  }

  std::set<std::string> kinds_shown;
  for (const auto& r : runs)
    for (const auto& [kind, metrics] : r.series)
      if (!kind_filter || kind == *kind_filter) kinds_shown.insert(kind);
  std::vector<PlotPanel> panels;
  for (const auto& m : wanted) {
    PlotPanel panel;
    panel.title = m;
    panel.x_label = "step";
    for (const auto& r : runs)
      for (const auto& [kind, metrics] : r.series) {
        if (kind_filter && kind != *kind_filter) continue;
        auto it = metrics.find(m);
        if (it == metrics.end()) continue;
        PlotSeries s;
        s.name = runs.size() > 1 ? r.label + (kinds_shown.size() > 1 ? " " + kind : "") : kind;
        s.points = it->second;
        s.markers = s.points.size() <= 40;
        panel.series.push_back(std::move(s));
      }
    panels.push_back(std::move(panel));
  }
  PlotOptions opt;
  opt.title = options.title;
  if (ext == ".svg") {
    write_svg_plot(out, panels, opt);
  } else {
    const std::string svg = out + ".tmp.svg";
    write_svg_plot(svg, panels, opt);
    const std::string cmd = "rsvg-convert --background-color=white -o '" + out + "' '" + svg + "' 2>&1";
    const int rc = std::system(cmd.c_str());
    std::error_code ec;
    fs::remove(svg, ec);
    if (rc != 0) {
      throw Error("rsvg-convert could not render the PNG (exit " + std::to_string(rc) + ")")
          .at(out)
          .hint("install librsvg2-bin (scripts/setup.sh does), or write an .svg");
    }
  }
  return panels.size();
}

}  // namespace selfrl::metrics
