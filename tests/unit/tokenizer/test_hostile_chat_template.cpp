// Hostile chat templates (issue 15): deep nesting, self-containing namespaces, runaway loops and
// strings, integer edge cases. Each must end in a selfrl::Error naming the template, the line and
// the limit that was hit (jinja_ast.h: kMaxNesting 200, kMaxValueDepth 200, kMaxLoopIterations
// 1,000,000, kMaxOutputBytes and kMaxStringBytes 64 MiB, kMaxListItems 1,000,000,
// kMaxWorkSteps 20,000,000), never a stack overflow, a hang or "internal error: stoll".
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "selfrl/tokenizer/chat_template.h"
#include "selfrl/tokenizer/tokenizer.h"
#include "test_util.h"

namespace selfrl::test {
namespace {

using tokenizer::ChatMessage;
using tokenizer::ChatTemplate;

const std::vector<ChatMessage> kConv = {{"user", "Hi"}};

std::string render(const std::string& src) { return ChatTemplate(src, "hostile.jinja").render(kConv); }

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(HostileChatTemplate, DeepExpressionsAreParseErrors) {
  const std::string limit = "expression nests deeper than the limit of 200 levels";
  // Each of these overflowed the stack (finding 2).
  EXPECT_SELFRL_ERROR(render("{{ " + repeat("(", 10000) + "1" + repeat(")", 10000) + " }}"),
                      "hostile.jinja: template line 1: " + limit);
  EXPECT_SELFRL_ERROR(render("{{ " + repeat("[", 10000) + repeat("]", 10000) + " }}"), limit);
  EXPECT_SELFRL_ERROR(render("{{ " + repeat("{'a': ", 10000) + "1" + repeat("}", 10000) + " }}"), limit);
  EXPECT_SELFRL_ERROR(render("{{ " + repeat("not ", 100000) + "1 }}"), limit);
  EXPECT_SELFRL_ERROR(render("{{ " + repeat("- ", 100000) + "1 }}"), limit);
  EXPECT_SELFRL_ERROR(render("{{ " + repeat("+ ", 100000) + "1 }}"), limit);
  // Long chains are built without recursion but evaluate and free recursively: limited as well.
  EXPECT_SELFRL_ERROR(render("{{ 1" + repeat(" + 1", 200000) + " }}"), limit);
  EXPECT_SELFRL_ERROR(render("{{ 'a'" + repeat("|trim", 100000) + " }}"), limit);
  EXPECT_SELFRL_ERROR(render("{{ messages" + repeat(".x", 100000) + " }}"), limit);
  EXPECT_SELFRL_ERROR(render("{{ 1" + repeat(" if true else 1", 100000) + " }}"), limit);
  // The line of the tag.
  EXPECT_SELFRL_ERROR(render("a\nb\n{{ " + repeat("(", 500) + "1" + repeat(")", 500) + " }}"),
                      "hostile.jinja: template line 3: " + limit);
  // Real depths work.
  EXPECT_EQ(render("{{ " + repeat("(", 150) + "1" + repeat(")", 150) + " }}"), "1");
  EXPECT_EQ(render("{{ 1" + repeat(" + 1", 150) + " }}"), "151");
  EXPECT_EQ(render("{{ " + repeat("[", 150) + repeat("]", 150) + "|length }}"), "1");
}

TEST(HostileChatTemplate, DeepBlocksAreParseErrors) {
  EXPECT_SELFRL_ERROR(render(repeat("{% if true %}", 10000) + "x" + repeat("{% endif %}", 10000)),
                      "hostile.jinja: template line 1: {% if %}/{% for %} blocks nest deeper than the limit of 200");
  // One tag per line: the message names the line of the first block past the limit.
  EXPECT_SELFRL_ERROR(render(repeat("{% for i in [1] %}\n", 10000) + "x" + repeat("{% endfor %}", 10000)),
                      "hostile.jinja: template line 201: {% if %}/{% for %} blocks nest deeper than the limit of 200");
  EXPECT_EQ(render(repeat("{% if true %}", 200) + "x" + repeat("{% endif %}", 200)), "x");
  EXPECT_EQ(render(repeat("{% for i in [1] %}{% if true %}", 100) + "x" + repeat("{% endif %}{% endfor %}", 100)), "x");
}

TEST(HostileChatTemplate, SelfContainingNamespace) {
  const std::string ns = "{% set ns = namespace(x=1) %}{% set ns.x = ns %}";
  // Printing recursed forever (finding 2).
  EXPECT_SELFRL_ERROR(render(ns + "{{ ns }}"),
                      "hostile.jinja: template line 1: a value nests lists, dicts or namespaces deeper than the "
                      "limit of 200 levels");
  EXPECT_SELFRL_ERROR(render(ns + "{{ [ns, 1] ~ '' }}"), "deeper than the limit of 200 levels");
  // tojson of a namespace fails in Python too (json.dumps: not JSON serializable).
  EXPECT_SELFRL_ERROR(render(ns + "{{ ns|tojson }}"),
                      "hostile.jinja: template line 1: tojson: a namespace() is not "
                      "JSON serializable");
  EXPECT_SELFRL_ERROR(render(ns + "{{ {'a': [ns]}|tojson }}"), "not JSON serializable");
  // Namespaces compare by identity, as jinja2's Namespace does.
  EXPECT_EQ(render(ns + "{{ ns == ns }} {{ ns.x == ns }} {{ ns in [1, ns] }} {{ ns == namespace(x=1) }}"),
            "True True True False");
  // A cycle through a dict.
  EXPECT_SELFRL_ERROR(render("{% set ns = namespace() %}{% set d = {'n': ns} %}{% set ns.d = d %}{{ d }}"),
                      "deeper than the limit");
}

TEST(HostileChatTemplate, DeepValuesBuiltByLoops) {
  // 300 levels of lists: fine to build, an Error to print, compare or serialize.
  const std::string build =
      "{% set ns = namespace(x=0, y=0) %}{% for i in range(300) %}{% set ns.x = [ns.x] %}{% set ns.y = [ns.y] %}"
      "{% endfor %}";
  EXPECT_EQ(render(build + "ok"), "ok");
  EXPECT_SELFRL_ERROR(render(build + "{{ ns.x }}"), "deeper than the limit of 200 levels");
  EXPECT_SELFRL_ERROR(render(build + "{{ ns.x|tojson }}"), "deeper than the limit of 200 levels");
  EXPECT_SELFRL_ERROR(render(build + "{{ ns.x == ns.y }}"), "deeper than the limit of 200 levels");
  // Chains a million links long are freed without recursion (this crashed in ~Value).
  EXPECT_EQ(render("{% set ns = namespace(x=0) %}{% for i in range(500000) %}{% set ns.x = [ns.x] %}{% endfor %}"
                   "done"),
            "done");
  EXPECT_EQ(render("{% set ns = namespace(h=namespace(x=none), t=none) %}{% set ns.t = ns.h %}"
                   "{% for i in range(300000) %}{% set n = namespace(x=none) %}{% set tail = ns.t %}"
                   "{% set tail.x = n %}{% set ns.t = n %}{% endfor %}done"),
            "done");
}

TEST(HostileChatTemplate, FunctionsStayOutOfContainers) {
  EXPECT_SELFRL_ERROR(render("{% set l = ['a'.upper] %}"), "template line 1: a function cannot be stored in a list");
  EXPECT_SELFRL_ERROR(render("{% set d = {'k': messages[0].items} %}"), "a function cannot be stored in a dict");
  EXPECT_SELFRL_ERROR(render("{% set ns = namespace() %}{% set ns.f = range %}"),
                      "a function cannot be stored in a namespace");
  EXPECT_SELFRL_ERROR(render("{% set ns = namespace(f=range) %}"), "a function cannot be stored in a namespace");
  EXPECT_EQ(render("{% set f = 'ab'.upper %}{{ f() }}"), "AB");  // in a variable: fine
}

TEST(HostileChatTemplate, LoopIterationLimit) {
  // Nested range() loops ran for hours (finding 3).
  EXPECT_SELFRL_ERROR(render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
                      "hostile.jinja: template line 1: {% for %} loops ran more than the limit of 1000000 iterations");
  EXPECT_SELFRL_ERROR(render("{% for i in range(1000) %}\n{% for j in range(1001) if j > 5000 %}{% endfor %}"
                             "{% endfor %}"),
                      "template line 2: {% for %} loops ran more than the limit of 1000000 iterations");
  EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for i in range(1000) %}{% for j in range(999) %}"
                   "{% set ns.n = ns.n + 1 %}{% endfor %}{% endfor %}{{ ns.n }}"),
            "999000");
}

TEST(HostileChatTemplate, StringAndListSizeLimits) {
  const std::string limit = "more than the limit of 67108864 bytes (64 MiB)";
  // String doubling exhausted memory (finding 3).
  EXPECT_SELFRL_ERROR(render("{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}"
                             "{% endfor %}"),
                      "hostile.jinja: template line 1: a string value would be 134217728 bytes, " + limit);
  EXPECT_SELFRL_ERROR(render("{% set ns = namespace(s='ab') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}"
                             "{% endfor %}"),
                      "a string value would be 134217728 bytes");
  EXPECT_SELFRL_ERROR(render("{{ ('a' * 100000000000)|length }}"), "a string value would be 100000000000 bytes");
  EXPECT_SELFRL_ERROR(render("{{ 'ab' * 9223372036854775807 }}"), limit);
  EXPECT_SELFRL_ERROR(render("{% set s = 'a' * 60000000 %}{{ [s, s]|join(',') }}"), limit);
  EXPECT_SELFRL_ERROR(render("{% set s = 'a' * 1000 %}{{ s.replace('a', s * 1000) }}"), limit);
  EXPECT_SELFRL_ERROR(render("{% set s = 'a' * 1000 %}{{ s|replace('a', s * 1000) }}"), limit);
  EXPECT_SELFRL_ERROR(render("{{ [1, [2]]|tojson(indent=2000000000) }}"), limit);
  EXPECT_SELFRL_ERROR(render("{% set s = 'a' * 60000000 %}{{ [s, s]|string }}"), limit);
  // Lists.
  EXPECT_SELFRL_ERROR(render("{{ range(10000000000)|length }}"),
                      "template line 1: a list would have 10000000000 items, more than the limit of 1000000");
  EXPECT_SELFRL_ERROR(render("{{ range(0, 9223372036854775807, 2)|length }}"), "more than the limit of 1000000");
  EXPECT_SELFRL_ERROR(render("{% set ns = namespace(l=[1]) %}{% for i in range(30) %}{% set ns.l = ns.l + ns.l %}"
                             "{% endfor %}"),
                      "a list would have 1048576 items, more than the limit of 1000000");
  EXPECT_SELFRL_ERROR(render("{{ ('a ' * 2000000).split()|length }}"), "more than the limit of 1000000");
  EXPECT_SELFRL_ERROR(render("{{ ('a' * 2000000)|list|length }}"), "more than the limit of 1000000");
  EXPECT_SELFRL_ERROR(render("{% for c in 'a' * 2000000 %}{% endfor %}"), "more than the limit of 1000000");
  EXPECT_EQ(render("{{ range(1000000)|length }} {{ ('x' * 1000000)|length }}"), "1000000 1000000");
}

TEST(HostileChatTemplate, OutputLimit) {
  EXPECT_SELFRL_ERROR(render("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}"),
                      "hostile.jinja: template line 1: the rendered output would be 67109000 bytes, more than the "
                      "limit of 67108864 bytes (64 MiB)");
}

TEST(HostileChatTemplate, WorkLimit) {
  // Under every other limit, but each iteration compares two million-item lists.
  EXPECT_SELFRL_ERROR(render("{% set a = range(1000000) %}{% set b = range(1000000) %}\n"
                             "{% for i in range(1000) %}{% if a == b %}{% endif %}{% endfor %}"),
                      "hostile.jinja: template line 2: rendering exceeded the work limit of 20000000 steps");
  EXPECT_SELFRL_ERROR(render("{% set s = 'a' * 60000000 %}{% for i in range(1000) %}{% set t = s ~ '' %}{% endfor %}"),
                      "exceeded the work limit of 20000000 steps");
  EXPECT_SELFRL_ERROR(render("{% set a = range(1000000) %}{% for i in range(1000) %}{% set t = a|tojson %}"
                             "{% endfor %}"),
                      "exceeded the work limit of 20000000 steps");
}

TEST(HostileChatTemplate, IntegerAndFloatEdgeCases) {
  // std::stoll / std::stod threw out_of_range: "internal error: stoll".
  EXPECT_SELFRL_ERROR(render("{{ 99999999999999999999999 }}"),
                      "hostile.jinja: template line 1: integer literal 99999999999999999999999 is out of range");
  EXPECT_SELFRL_ERROR(render("{{ " + repeat("9", 400) + ".5 }}"), "template line 1: float literal 9999",
                      "out of range");
  // INT64_MIN // -1 raised SIGFPE.
  EXPECT_SELFRL_ERROR(render("{{ (-9223372036854775807 - 1) // -1 }}"),
                      "integer overflow in -9223372036854775808 // -1");
  EXPECT_EQ(render("{{ (-9223372036854775807 - 1) % -1 }}"), "0");
  EXPECT_SELFRL_ERROR(render("{{ 9223372036854775807 + 1 }}"), "integer overflow in 9223372036854775807 + 1");
  EXPECT_SELFRL_ERROR(render("{{ 9223372036854775807 * 2 }}"), "integer overflow");
  EXPECT_SELFRL_ERROR(render("{{ -(-9223372036854775807 - 1) }}"), "integer overflow in unary '-'");
  EXPECT_SELFRL_ERROR(render("{{ (-9223372036854775807 - 1)|abs }}"), "integer overflow in abs()");
  EXPECT_SELFRL_ERROR(render("{{ 1.5 // 0 }}"), "float division or modulo by zero");
  // Large ints stay exact (they went through double before).
  EXPECT_EQ(render("{{ 9007199254740993 + 0 }}"), "9007199254740993");
  // Slices and ranges with huge steps (the index overflowed).
  EXPECT_EQ(render("{{ 'abc'[1::9223372036854775807] }}|{{ 'abc'[::-9223372036854775807] }}|"
                   "{{ [1, 2, 3][::-(9223372036854775807)]|length }}"),
            "b|c|1");
  EXPECT_EQ(render("{{ range(0, 9223372036854775807, 4611686018427387904)|list }}"), "[0, 4611686018427387904]");
  EXPECT_EQ(render("{{ range(9223372036854775807, -9223372036854775807 - 1, -9223372036854775807)|length }}"), "3");
  const std::string f = "{% set f = " + repeat("9", 300) + ".0 %}";
  EXPECT_EQ(render(f + "{{ (f * f)|int }} {{ 'x'|int }} {{ f|int }} {{ 2.9|int }}"), "0 0 0 2");
}

TEST(HostileChatTemplate, ErrorsNameTheConfigFile) {
  // Through from_pretrained, the message names tokenizer_config.json, the template and its line.
  TempDir d;
  nlohmann::json vocab = {{"<unk>", 0}, {"a", 1}};
  write_bytes(
      d.file("tokenizer.json"),
      nlohmann::json{
          {"model", {{"type", "BPE"}, {"unk_token", "<unk>"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}}}
          .dump());
  write_bytes(d.file("tokenizer_config.json"),
              nlohmann::json{{"chat_template",
                              "x\n{% for i in range(100000) %}{% for j in range(100000) %}"
                              "{% endfor %}{% endfor %}"}}
                  .dump());
  const auto tok = tokenizer::Tokenizer::from_pretrained(d.path());
  EXPECT_SELFRL_ERROR(tok->apply_chat_template({{"user", "a"}}),
                      d.file("tokenizer_config.json") +
                          ": chat_template: template line 2: {% for %} loops ran more "
                          "than the limit of 1000000 iterations");
}

}  // namespace
}  // namespace selfrl::test
