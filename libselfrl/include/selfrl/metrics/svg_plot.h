// A small, dependency-free SVG line-plot writer: one or more panels, each with named series of
// (x, y) points, a title, axis labels, ticks and a legend. Used by `selfrl demo` (curves.svg)
// and `selfrl plot`. The output is standalone SVG 1.1 that browsers and GitHub render.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace selfrl::metrics {

struct PlotSeries {
  std::string name;                               // legend entry ("" = no entry)
  std::vector<std::pair<double, double>> points;  // (x, y); non-finite points break the line
  std::string color;                              // CSS color; "" = next of the default palette
  bool markers = true;                            // a dot at every point
};

struct PlotPanel {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<PlotSeries> series;
  // Explicit x ticks (position, label), e.g. stage names; empty = "nice" numeric ticks.
  std::vector<std::pair<double, std::string>> x_ticks;
  // Axis ranges; unset = the data's range (padded).
  std::optional<double> x_min, x_max, y_min, y_max;
};

struct PlotOptions {
  std::string title;      // over all panels ("" = none)
  int panel_width = 460;  // pixels per panel
  int panel_height = 300;
  int columns = 0;  // panels per row; 0 = all in one row up to 3, then 3 per row
};

// The SVG document. Throws selfrl::Error when there are no panels.
std::string render_svg_plot(const std::vector<PlotPanel>& panels, const PlotOptions& options = {});
// Renders and writes it atomically to `path`.
void write_svg_plot(const std::string& path, const std::vector<PlotPanel>& panels, const PlotOptions& options = {});

// "Nice" tick positions covering [lo, hi] (1-2-5 steps), about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);
// Escapes &, <, >, " and ' for XML text and attributes.
std::string xml_escape(const std::string& text);

}  // namespace selfrl::metrics
