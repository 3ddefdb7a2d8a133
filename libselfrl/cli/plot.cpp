// `selfrl plot`: curves of a run's metrics.jsonl (or several runs') as an SVG, or a PNG through
// rsvg-convert. One panel per metric, x = step, one line per run and record kind.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "command.h"
#include "selfrl/core/error.h"
#include "selfrl/io/jsonl.h"
#include "selfrl/metrics/svg_plot.h"

namespace selfrl::cli {
namespace {

namespace fs = std::filesystem;

// What a GRPO / SFT / DPO / loop run logs that is worth a look first (TRL's names).
const std::vector<std::string> kDefaultMetrics = {
    "reward", "loss", "kl", "entropy", "self_certainty", "completions/mean_length",
    "frac_reward_zero_std", "grad_norm", "rewards/accuracies", "eval/accuracy", "eval/maj_at_k"};

struct Run {
  std::string label, path;
  // kind -> metric -> (step, value)
  std::map<std::string, std::map<std::string, std::vector<std::pair<double, double>>>> series;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

Run read_run(const std::string& arg) {
  Run run;
  run.path = fs::is_directory(arg) ? (fs::path(arg) / "metrics.jsonl").string() : arg;
  if (!fs::exists(run.path)) {
    throw Error("no metrics file here").at(run.path).hint("give a run directory holding metrics.jsonl, or the file itself");
  }
  const fs::path p(run.path);
  run.label = (fs::is_directory(arg) ? fs::path(arg) : p.parent_path()).filename().string();
  if (run.label.empty() || run.label == ".") run.label = p.stem().string();
  io::JsonlReader reader(run.path);
  nlohmann::json rec;
  while (reader.next(rec)) {
    if (!rec.is_object() || !rec.contains("step") || !rec["step"].is_number()) {
      throw Error("record has no numeric \"step\"").at(reader.where()).hint("metrics.jsonl lines are {\"step\": N, ...}");
    }
    const double step = rec["step"].get<double>();
    const std::string kind = rec.value("kind", std::string("train"));
    for (auto it = rec.begin(); it != rec.end(); ++it) {
      if (it.key() == "step" || it.key() == "kind") continue;
      // null = a non-finite value was logged: keep the gap.
      if (it->is_number()) run.series[kind][it.key()].push_back({step, it->get<double>()});
      else if (it->is_null()) run.series[kind][it.key()].push_back({step, std::nan("")});
    }
  }
  if (run.series.empty()) throw Error("no metrics in this file").at(run.path).hint("is the run still starting?");
  return run;
}

int run_plot(const std::vector<std::string>& args) {
  ArgParser p("selfrl plot",
              "Plot the metrics of one or more runs (x = step, a panel per metric) to an SVG or PNG file.");
  p.positional("RUNS", "metrics.jsonl files or run directories, comma-separated");
  p.option("--out", "FILE", "output: .svg, or .png (rendered with rsvg-convert)");
  p.option("--metrics", "A,B,...", "metrics to plot (default: the main training metrics the runs have)");
  p.option("--kind", "K", "only records of this kind (train, iteration, eval, ...; default: all)");
  p.option("--title", "TEXT", "title over the panels", "");
  if (!p.parse(args)) return 0;
  const std::string out = p.get("--out");
  const std::string ext = fs::path(out).extension().string();
  if (ext != ".svg" && ext != ".png") {
    throw Error("--out must end in .svg or .png, got \"" + out + "\"").hint("e.g. --out run/curves.svg");
  }
  if (out.find('\'') != std::string::npos) throw Error("--out must not contain a quote character").at(out);
  std::vector<Run> runs;
  for (const auto& a : split_commas(p.get("RUNS"))) runs.push_back(read_run(a));
  const auto kind_filter = p.get_opt("--kind");

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
  if (p.has("--metrics")) {
    wanted = split_commas(p.get("--metrics"));
    for (const auto& m : wanted) {
      if (available.count(m)) continue;
      std::string best;
      size_t best_d = 4;
      for (const auto& a : available) {
        const size_t d = edit_distance(m, a);
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
        if (wanted.size() < 6 && a.rfind("time/", 0) != 0) wanted.push_back(a);
  }

  std::set<std::string> kinds_shown;
  for (const auto& r : runs)
    for (const auto& [kind, metrics] : r.series)
      if (!kind_filter || kind == *kind_filter) kinds_shown.insert(kind);
  std::vector<metrics::PlotPanel> panels;
  for (const auto& m : wanted) {
    metrics::PlotPanel panel;
    panel.title = m;
    panel.x_label = "step";
    for (const auto& r : runs)
      for (const auto& [kind, metrics] : r.series) {
        if (kind_filter && kind != *kind_filter) continue;
        auto it = metrics.find(m);
        if (it == metrics.end()) continue;
        metrics::PlotSeries s;
        s.name = runs.size() > 1 ? r.label + (kinds_shown.size() > 1 ? " " + kind : "") : kind;
        s.points = it->second;
        s.markers = s.points.size() <= 40;
        panel.series.push_back(std::move(s));
      }
    panels.push_back(std::move(panel));
  }
  metrics::PlotOptions opt;
  opt.title = p.get("--title");
  if (ext == ".svg") {
    metrics::write_svg_plot(out, panels, opt);
  } else {
    const std::string svg = out + ".tmp.svg";
    metrics::write_svg_plot(svg, panels, opt);
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
  std::fprintf(stderr, "selfrl plot: %zu panel(s) from %zu run(s) -> %s\n", panels.size(), runs.size(), out.c_str());
  return 0;
}

CommandRegistrar reg({"plot", "plot a run's metrics.jsonl to SVG or PNG", run_plot});

}  // namespace
}  // namespace selfrl::cli
