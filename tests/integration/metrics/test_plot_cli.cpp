// `selfrl plot`: the SVG it writes parses as XML (checked with Python's xml.etree) and holds one
// panel per requested metric with one polyline per run; PNG output is a PNG; bad input is a
// clear error.
#include <gtest/gtest.h>

#include <fstream>

#include "selfrl/metrics/metrics.h"
#include "test_util.h"

using selfrl::test::python;
using selfrl::test::run_command;
using selfrl::test::selfrl_cli;
using selfrl::test::TempDir;

namespace {

void write_run(const std::string& dir, double scale) {
  selfrl::metrics::MetricsLogger log(dir, /*tensorboard=*/false);
  for (int s = 1; s <= 5; ++s) log.log(s, {{"reward", scale * s}, {"loss", 1.0 / s}, {"time/step", 0.1}});
  log.log(5, {{"eval/accuracy", 0.5 * scale}}, "iteration");
}

}  // namespace

TEST(PlotCli, SvgHasAPanelPerMetricAndALinePerRun) {
  TempDir d;
  write_run(d.file("a"), 1.0);
  write_run(d.file("b"), 2.0);
  auto r = run_command(selfrl_cli() + " plot " + d.file("a") + "," + d.file("b/metrics.jsonl") +
                       " --metrics reward,loss --kind train --out " + d.file("c.svg"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Independent check: parse the XML, count polylines, collect the texts.
  const std::string check = python() +
                            " -c \"import sys, xml.etree.ElementTree as E; t = E.parse(sys.argv[1]); "
                            "ns = '{http://www.w3.org/2000/svg}'; "
                            "print(len(list(t.iter(ns + 'polyline'))), "
                            "'|' + '|'.join(sorted(set(x.text or '' for x in t.iter(ns + 'text')))) + '|')\" " +
                            d.file("c.svg");
  r = run_command(check);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.substr(0, 2), "4 ") << r.output;  // 2 panels x 2 runs
  for (const std::string s : {"reward", "loss", "a", "b", "step"})
    EXPECT_NE(r.output.find("|" + s + "|"), std::string::npos) << s << " in " << r.output;
  EXPECT_EQ(r.output.find("time/step"), std::string::npos);  // not requested
}

TEST(PlotCli, DefaultMetricsAndPng) {
  TempDir d;
  write_run(d.file("a"), 1.0);
  auto r = run_command(selfrl_cli() + " plot " + d.file("a") + " --out " + d.file("c.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream f(d.file("c.png"), std::ios::binary);
  char magic[8] = {};
  f.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
  EXPECT_NE(r.output.find("3 panel(s)"), std::string::npos) << r.output;  // reward, loss, eval/accuracy
}

TEST(PlotCli, BadInputIsAClearError) {
  TempDir d;
  write_run(d.file("a"), 1.0);
  auto r = run_command(selfrl_cli() + " plot " + d.file("a") + " --metrics rewrd --out " + d.file("c.svg"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("did you mean \"reward\""), std::string::npos) << r.output;
  r = run_command(selfrl_cli() + " plot " + d.file("nope") + " --out " + d.file("c.svg"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("nope"), std::string::npos) << r.output;
  r = run_command(selfrl_cli() + " plot " + d.file("a") + " --out " + d.file("c.pdf"));
  EXPECT_NE(r.output.find(".svg or .png"), std::string::npos) << r.output;
  std::ofstream(d.file("bad.jsonl")) << "{\"step\": 1, \"loss\": 2}\n{not json\n";
  r = run_command(selfrl_cli() + " plot " + d.file("bad.jsonl") + " --out " + d.file("c.svg"));
  EXPECT_NE(r.output.find("bad.jsonl:2"), std::string::npos) << r.output;
}
