// The SVG plot writer: well-formed XML (checked by a minimal tag parser), one group per series
// with its escaped name, explicit ticks, broken lines at non-finite points, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "selfrl/metrics/svg_plot.h"
#include "test_util.h"

using namespace selfrl;

namespace {

struct Tag {
  std::string name;
  std::string attrs;
};

// A minimal XML well-formedness check: tags nest and close, attributes are quoted, text holds
// no raw '<' or '&' outside entities. Returns the start tags in document order.
std::vector<Tag> parse_xml(const std::string& doc) {
  std::vector<Tag> stack, all;
  size_t i = 0;
  if (doc.rfind("<?xml", 0) == 0) i = doc.find("?>") + 2;
  while (i < doc.size()) {
    if (doc[i] == '<') {
      const size_t end = doc.find('>', i);
      if (end == std::string::npos) throw std::runtime_error("unterminated tag");
      std::string body = doc.substr(i + 1, end - i - 1);
      if (body.empty()) throw std::runtime_error("empty tag");
      if (body[0] == '/') {
        if (stack.empty() || stack.back().name != body.substr(1))
          throw std::runtime_error("mismatched </" + body.substr(1) + ">");
        stack.pop_back();
      } else {
        const bool self_closing = body.back() == '/';
        if (self_closing) body.pop_back();
        const size_t sp = body.find_first_of(" \n\t");
        Tag t{body.substr(0, sp), sp == std::string::npos ? "" : body.substr(sp)};
        int quotes = 0;
        for (char c : t.attrs) quotes += c == '"';
        if (quotes % 2) throw std::runtime_error("unbalanced quotes in <" + t.name + ">");
        if (t.attrs.find('<') != std::string::npos) throw std::runtime_error("raw '<' in attributes");
        all.push_back(t);
        if (!self_closing) stack.push_back(t);
      }
      i = end + 1;
    } else {
      if (doc[i] == '&') {
        const size_t semi = doc.find(';', i);
        const std::string ent = doc.substr(i, semi - i + 1);
        if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&apos;")
          throw std::runtime_error("bad entity " + ent);
      }
      ++i;
    }
  }
  if (!stack.empty()) throw std::runtime_error("unclosed <" + stack.back().name + ">");
  return all;
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace

TEST(SvgPlot, WellFormedWithEverySeries) {
  metrics::PlotPanel a;
  a.title = "accuracy <by> stage & seed";
  a.x_label = "stage";
  a.y_label = "fraction";
  a.x_ticks = {{0, "base"}, {1, "ttrl"}, {2, "rest_em"}};
  a.y_min = 0, a.y_max = 1;
  a.series.push_back({"greedy", {{0, 0.2}, {1, 0.4}, {2, 0.5}}, "", true});
  a.series.push_back({"maj@8 \"vote\"", {{0, 0.3}, {1, 0.45}, {2, 0.55}}, "#000000", false});
  metrics::PlotPanel b;
  b.title = "reward";
  b.series.push_back({"ttrl", {{0, 0.1}, {1, NAN}, {2, 0.3}, {3, 0.35}}, "", false});
  metrics::PlotOptions o;
  o.title = "demo";
  const std::string svg = metrics::render_svg_plot({a, b}, o);

  std::vector<Tag> tags;
  ASSERT_NO_THROW(tags = parse_xml(svg)) << svg;
  ASSERT_FALSE(tags.empty());
  EXPECT_EQ(tags[0].name, "svg");
  EXPECT_NE(tags[0].attrs.find("xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  std::vector<std::string> names;
  for (const auto& t : tags)
    if (t.name == "g" && t.attrs.find("class=\"series\"") != std::string::npos) {
      const size_t p = t.attrs.find("data-name=\"") + 11;
      names.push_back(t.attrs.substr(p, t.attrs.find('"', p) - p));
    }
  EXPECT_EQ(names, (std::vector<std::string>{"greedy", "maj@8 &quot;vote&quot;", "ttrl"}));
  EXPECT_EQ(count(svg, "class=\"panel\""), 2u);
  // The NaN splits the ttrl line in two polylines; 2 + 1 + 2 polylines in total.
  EXPECT_EQ(count(svg, "<polyline"), 4u);
  EXPECT_EQ(count(svg, "<circle"), 3u);  // markers only for "greedy"
  EXPECT_NE(svg.find(">rest_em</text>"), std::string::npos);
  EXPECT_NE(svg.find("accuracy &lt;by&gt; stage &amp; seed"), std::string::npos);
  EXPECT_NE(svg.find("stroke=\"#000000\""), std::string::npos);
}

TEST(SvgPlot, WritesAFileAndRejectsNoPanels) {
  test::TempDir dir;
  metrics::PlotPanel p;
  p.series.push_back({"s", {{0, 1}}, "", true});  // a single point: degenerate ranges are padded
  metrics::write_svg_plot(dir.file("x.svg"), {p});
  std::ifstream in(dir.file("x.svg"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NO_THROW(parse_xml(text));
  EXPECT_EQ(text.find("nan"), std::string::npos);
  EXPECT_SELFRL_ERROR(metrics::render_svg_plot({}), "no panels");
}

TEST(SvgPlot, NiceTicks) {
  const auto u = metrics::nice_ticks(0, 1, 5);
  ASSERT_EQ(u.size(), 6u);
  for (size_t i = 0; i < u.size(); ++i) EXPECT_NEAR(u[i], 0.2 * i, 1e-12);
  const auto t = metrics::nice_ticks(0, 37, 5);
  ASSERT_GE(t.size(), 4u);
  EXPECT_DOUBLE_EQ(t[1] - t[0], 10);
  EXPECT_EQ(metrics::xml_escape("a<b&'\""), "a&lt;b&amp;&apos;&quot;");
}
