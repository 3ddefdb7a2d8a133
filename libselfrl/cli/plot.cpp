// `selfrl plot`: curves of a run's metrics.jsonl (or several runs') as an SVG, or a PNG through
// rsvg-convert. One panel per metric, x = step, one line per run and record kind.
#include <cstdio>
#include <sstream>

#include "command.h"
#include "selfrl/metrics/metrics_plot.h"

namespace selfrl::cli {
namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
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
  metrics::MetricsPlotOptions opt;
  if (p.has("--metrics")) opt.metrics = split_commas(p.get("--metrics"));
  opt.kind = p.get_opt("--kind");
  opt.title = p.get("--title");
  const auto runs = split_commas(p.get("RUNS"));
  const size_t panels = metrics::plot_metrics(runs, p.get("--out"), opt);
  std::fprintf(stderr, "selfrl plot: %zu panel(s) from %zu run(s) -> %s\n", panels, runs.size(),
               p.get("--out").c_str());
  return 0;
}

CommandRegistrar reg({"plot", "plot a run's metrics.jsonl to SVG or PNG", run_plot});

}  // namespace
}  // namespace selfrl::cli
