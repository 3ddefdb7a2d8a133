// Curves of runs' metrics.jsonl files: one panel per metric (x = step), one line per run and
// record kind. What `selfrl plot` draws and what `selfrl train` writes as RUN_DIR/curves.svg.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace selfrl::metrics {

struct MetricsPlotOptions {
  std::vector<std::string> metrics;  // empty = the main training metrics the runs have
  std::optional<std::string> kind;   // only records of this kind (train, iteration, ...)
  std::string title;
};

// `runs`: metrics.jsonl files or run directories holding one. `out` ends in .svg, or .png
// (rendered with rsvg-convert). Returns the number of panels drawn. Throws selfrl::Error for a
// missing or malformed file (with file:line), an unknown metric (did-you-mean) or a bad `out`.
size_t plot_metrics(const std::vector<std::string>& runs, const std::string& out,
                    const MetricsPlotOptions& options = {});

}  // namespace selfrl::metrics
