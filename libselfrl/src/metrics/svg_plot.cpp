// SVG line plots, written by hand: a grid of panels, each an axis box with ticks, grid lines,
// polylines per series and a legend.
#include "selfrl/metrics/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "selfrl/core/error.h"
#include "selfrl/io/file_util.h"

namespace selfrl::metrics {

namespace {

const char* const kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string tick_label(double v, double step) {
  char buf[32];
  const int decimals = step >= 1 ? 0 : std::min(6, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  std::snprintf(buf, sizeof buf, "%.*f", decimals, std::abs(v) < 1e-12 ? 0.0 : v);
  return buf;
}

struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v), hi = std::max(hi, v);
  }
  void finish(std::optional<double> want_lo, std::optional<double> want_hi, double pad_frac) {
    if (!std::isfinite(lo)) lo = 0, hi = 1;
    if (hi == lo) lo -= 0.5, hi += 0.5;
    const double pad = (hi - lo) * pad_frac;
    lo = want_lo ? *want_lo : lo - pad;
    hi = want_hi ? *want_hi : hi + pad;
    if (hi <= lo) hi = lo + 1;
  }
};

void render_panel(std::ostringstream& os, const PlotPanel& p, double ox, double oy, double w, double h) {
  const double left = 58, right = 12, top = 28, bottom = 44;
  const double legend_w = 0;
  const double pw = w - left - right - legend_w, ph = h - top - bottom;
  const double x0 = ox + left, y0 = oy + top;

  Range xr, yr;
  for (const auto& s : p.series)
    for (const auto& [x, y] : s.points) xr.add(x), yr.add(y);
  for (const auto& [x, label] : p.x_ticks) xr.add(x);
  xr.finish(p.x_min, p.x_max, p.x_ticks.empty() ? 0.02 : 0.06);
  yr.finish(p.y_min, p.y_max, 0.05);
  auto sx = [&](double x) { return x0 + (x - xr.lo) / (xr.hi - xr.lo) * pw; };
  auto sy = [&](double y) { return y0 + ph - (y - yr.lo) / (yr.hi - yr.lo) * ph; };

  os << "<g class=\"panel\">\n";
  os << "<text x=\"" << num(ox + w / 2) << "\" y=\"" << num(oy + 17)
     << "\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">" << xml_escape(p.title) << "</text>\n";
  os << "<rect x=\"" << num(x0) << "\" y=\"" << num(y0) << "\" width=\"" << num(pw) << "\" height=\"" << num(ph)
     << "\" fill=\"#ffffff\" stroke=\"#333333\"/>\n";
  // y ticks and grid.
  const auto yt = nice_ticks(yr.lo, yr.hi, 5);
  const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (double t : yt) {
    os << "<line x1=\"" << num(x0) << "\" y1=\"" << num(sy(t)) << "\" x2=\"" << num(x0 + pw) << "\" y2=\"" << num(sy(t))
       << "\" stroke=\"#dddddd\"/>\n";
    os << "<text x=\"" << num(x0 - 5) << "\" y=\"" << num(sy(t) + 4) << "\" text-anchor=\"end\" font-size=\"10\">"
       << tick_label(t, ystep) << "</text>\n";
  }
  // x ticks.
  std::vector<std::pair<double, std::string>> xt = p.x_ticks;
  if (xt.empty()) {
    const auto ticks = nice_ticks(xr.lo, xr.hi, 6);
    const double xstep = ticks.size() > 1 ? ticks[1] - ticks[0] : 1;
    for (double t : ticks) xt.push_back({t, tick_label(t, xstep)});
  }
  for (const auto& [t, label] : xt) {
    if (t < xr.lo - 1e-12 || t > xr.hi + 1e-12) continue;
    os << "<line x1=\"" << num(sx(t)) << "\" y1=\"" << num(y0 + ph) << "\" x2=\"" << num(sx(t)) << "\" y2=\""
       << num(y0 + ph + 4) << "\" stroke=\"#333333\"/>\n";
    os << "<text x=\"" << num(sx(t)) << "\" y=\"" << num(y0 + ph + 15) << "\" text-anchor=\"middle\" font-size=\"10\">"
       << xml_escape(label) << "</text>\n";
  }
  os << "<text x=\"" << num(x0 + pw / 2) << "\" y=\"" << num(oy + h - 8)
     << "\" text-anchor=\"middle\" font-size=\"11\">" << xml_escape(p.x_label) << "</text>\n";
  os << "<text transform=\"translate(" << num(ox + 14) << "," << num(y0 + ph / 2)
     << ") rotate(-90)\" text-anchor=\"middle\" font-size=\"11\">" << xml_escape(p.y_label) << "</text>\n";
  // Series.
  size_t color_i = 0;
  double legend_y = y0 + 12;
  for (const auto& s : p.series) {
    const std::string color = s.color.empty() ? kPalette[color_i++ % (sizeof kPalette / sizeof *kPalette)] : s.color;
    os << "<g class=\"series\" data-name=\"" << xml_escape(s.name) << "\">\n";
    std::vector<std::string> runs(1);
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) {
        if (!runs.back().empty()) runs.emplace_back();
        continue;
      }
      runs.back() += (runs.back().empty() ? "" : " ") + num(sx(x)) + "," + num(sy(y));
    }
    for (const auto& r : runs)
      if (!r.empty())
        os << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\" points=\"" << r << "\"/>\n";
    if (s.markers)
      for (const auto& [x, y] : s.points)
        if (std::isfinite(x) && std::isfinite(y))
          os << "<circle cx=\"" << num(sx(x)) << "\" cy=\"" << num(sy(y)) << "\" r=\"2.5\" fill=\"" << color
             << "\"/>\n";
    os << "</g>\n";
    if (!s.name.empty()) {
      os << "<line x1=\"" << num(x0 + 8) << "\" y1=\"" << num(legend_y - 4) << "\" x2=\"" << num(x0 + 26) << "\" y2=\""
         << num(legend_y - 4) << "\" stroke=\"" << color << "\" stroke-width=\"2\"/>\n";
      os << "<text x=\"" << num(x0 + 30) << "\" y=\"" << num(legend_y) << "\" font-size=\"10\">" << xml_escape(s.name)
         << "</text>\n";
      legend_y += 13;
    }
  }
  os << "</g>\n";
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || hi <= lo || target < 1) return {lo};
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> out;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) out.push_back(t);
  return out;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string render_svg_plot(const std::vector<PlotPanel>& panels, const PlotOptions& o) {
  if (panels.empty()) throw Error("render_svg_plot: no panels to draw").hint("pass at least one PlotPanel");
  SELFRL_CHECK(o.panel_width >= 100 && o.panel_height >= 80, "plot panels must be at least 100x80 pixels, got ",
               o.panel_width, "x", o.panel_height);
  const int n = static_cast<int>(panels.size());
  const int cols = o.columns > 0 ? std::min(o.columns, n) : std::min(n, 3);
  const int rows = (n + cols - 1) / cols;
  const double head = o.title.empty() ? 0 : 30;
  const double W = cols * o.panel_width, H = rows * o.panel_height + head;
  std::ostringstream os;
  os << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
     << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << num(W) << "\" height=\"" << num(H)
     << "\" viewBox=\"0 0 " << num(W) << " " << num(H) << "\" font-family=\"Helvetica, Arial, sans-serif\">\n"
     << "<rect width=\"100%\" height=\"100%\" fill=\"#fafafa\"/>\n";
  if (!o.title.empty())
    os << "<text x=\"" << num(W / 2) << "\" y=\"20\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">"
       << xml_escape(o.title) << "</text>\n";
  for (int i = 0; i < n; ++i)
    render_panel(os, panels[i], (i % cols) * o.panel_width, head + (i / cols) * o.panel_height, o.panel_width,
                 o.panel_height);
  os << "</svg>\n";
  return os.str();
}

void write_svg_plot(const std::string& path, const std::vector<PlotPanel>& panels, const PlotOptions& options) {
  io::write_text_file_atomic(path, render_svg_plot(panels, options));
}

}  // namespace selfrl::metrics
