// Hostile recipes (issue 15): every one ends in a selfrl::Error naming the file / key / line and
// what to do -- no stack overflow, hang, silent acceptance or internal error.
#include <sys/stat.h>
#include <sys/types.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "selfrl/loops/train_config.h"
#include "selfrl/recipe/recipe.h"
#include "test_util.h"

using namespace selfrl;
using recipe::Recipe;

namespace {

// A valid GRPO recipe (model, data, output_dir) plus `body`, written to DIR/r.yaml; `body`
// starts at line 6.
struct Files {
  test::TempDir d;
  Files() {
    std::filesystem::create_directories(d.file("model"));
    test::write_bytes(d.file("train.jsonl"), "{\"prompt\": \"1 + 1 =\"}\n");
  }
  std::string write(const std::string& name, const std::string& text) {
    test::write_bytes(d.file(name), text);
    return d.file(name);
  }
  std::string recipe(const std::string& body) {
    return write("r.yaml", "model: model\noutput_dir: out\ndata:\n  train: train.jsonl\ntrainer: grpo\n" + body);
  }
};

loops::TrainConfig read(const std::string& path, const std::vector<std::string>& overrides = {}) {
  auto r = Recipe::load(path, overrides);
  return loops::read_train_config(r);
}

std::string nested_lists(int depth) { return "x: " + std::string(depth, '[') + std::string(depth, ']') + "\n"; }

}  // namespace

// ---- 1. recursive aliases and nesting depth ---------------------------------------------------

TEST(HostileRecipe, RecursiveAliasIsRejectedWithFileAndLine) {
  Files f;
  EXPECT_SELFRL_ERROR(read(f.recipe("foo: &a [*a]\n")), "r.yaml:6:", "recursive YAML alias");
  EXPECT_SELFRL_ERROR(Recipe::load(f.write("m.yaml", "seed: 1\nfoo: &a {b: *a}\n")),
                      "m.yaml:2:", "recursive YAML alias");
  EXPECT_SELFRL_ERROR(Recipe::parse("a: &x [1, [2, *x]]\n", "p.yaml"), "p.yaml:1:", "recursive YAML alias");
  EXPECT_SELFRL_ERROR(Recipe::load(f.recipe(""), {"foo=&a [*a]"}), "command line override 'foo=&a [*a]'",
                      "recursive YAML alias");
  // A non-recursive alias is fine.
  auto ok = Recipe::parse("a: &x [1, 2]\nb: *x\n");
  EXPECT_EQ(ok.get_int_list("b", {}), (std::vector<int64_t>{1, 2}));
}

TEST(HostileRecipe, NestingDeeperThanTheLimitIsRejected) {
  Files f;
  EXPECT_SELFRL_ERROR(Recipe::load(f.write("deep.yaml", nested_lists(200))),
                      "deep.yaml:1:", "nested deeper than 64 levels");
  EXPECT_SELFRL_ERROR(Recipe::parse(nested_lists(recipe::kMaxRecipeDepth), "p.yaml"), "nested deeper than 64 levels");
  EXPECT_NO_THROW(Recipe::parse(nested_lists(recipe::kMaxRecipeDepth - 1)));  // the root mapping is a level
  // Far past yaml-cpp's own guard: still a clean error.
  EXPECT_SELFRL_ERROR(Recipe::load(f.write("deeper.yaml", nested_lists(100000))),
                      "deeper.yaml:1:", "nested deeper than 64 levels");
  std::string dotted = "a";
  for (int i = 0; i < 100; ++i) dotted += ".a";
  EXPECT_SELFRL_ERROR(Recipe::load(f.recipe(""), {dotted + "=1"}), "nested deeper than 64 levels");
}

// ---- 2. alias bombs -------------------------------------------------------------------------

TEST(HostileRecipe, AliasBombIsRefusedQuicklyNamingTheLimit) {
  Files f;
  // "Billion laughs": 9^9 values from a few hundred bytes.
  std::string bomb = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    const char p = static_cast<char>(c - 1);
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 9; ++i) bomb += std::string(i ? ", " : "") + "*" + p;
    bomb += "]\n";
  }
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_SELFRL_ERROR(read(f.recipe(bomb)), "r.yaml:", "more than 100000 values once its YAML aliases are expanded",
                      "hint:");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  // Few values, each a long string repeated through aliases: the byte limit.
  std::string wide = "s: &s " + std::string(1 << 20, 'x') + "\nt: [";
  for (int i = 0; i < 40; ++i) wide += std::string(i ? ", " : "") + "*s";
  wide += "]\n";
  EXPECT_SELFRL_ERROR(Recipe::load(f.write("wide.yaml", wide)), "wide.yaml:", "16 MiB of keys and values");
  // Wide mappings within the limits load fast (no quadratic duplicate-key search).
  std::string many = "m:\n";
  for (int i = 0; i < 50000; ++i) many += "  k" + std::to_string(i) + ": 1\n";
  EXPECT_NO_THROW(Recipe::load(f.write("many.yaml", many)));
}

// ---- 3. files that are not regular, too large, extends chains --------------------------------

TEST(HostileRecipe, RecipePathMustBeARegularFileOfBoundedSize) {
  Files f;
  EXPECT_SELFRL_ERROR(Recipe::load(f.d.file("model")), f.d.file("model"), "is a directory, not a recipe file");
  EXPECT_SELFRL_ERROR(Recipe::load("/dev/zero"), "/dev/zero", "is a device, not a regular file");
  ASSERT_EQ(mkfifo(f.d.file("fifo.yaml").c_str(), 0600), 0);
  EXPECT_SELFRL_ERROR(Recipe::load(f.d.file("fifo.yaml")), "fifo.yaml", "is a FIFO (named pipe), not a regular file");
  const std::string big = f.write("big.yaml", "# " + std::string(recipe::kMaxRecipeBytes, 'x') + "\n");
  EXPECT_SELFRL_ERROR(Recipe::load(big), "big.yaml", "too large for a recipe", "the limit is 4 MiB");
  EXPECT_SELFRL_ERROR(Recipe::parse(std::string(recipe::kMaxRecipeBytes + 1, ' '), "t.yaml"), "t.yaml", "too large");
  EXPECT_SELFRL_ERROR(Recipe::load(f.d.file("absent.yaml")), "absent.yaml", "recipe file not found");
}

TEST(HostileRecipe, ExtendsMustNameRegularFilesAndChainsAreBounded) {
  Files f;
  EXPECT_SELFRL_ERROR(Recipe::load(f.write("z.yaml", "extends: /dev/zero\n")),
                      "z.yaml:1:", "extends: base recipe '/dev/zero' is a device, not a regular file");
  EXPECT_SELFRL_ERROR(Recipe::load(f.write("dir.yaml", "seed: 1\nextends: model\n")),
                      "dir.yaml:2:", "extends: base recipe", "model' is a directory");
  ASSERT_EQ(mkfifo(f.d.file("pipe").c_str(), 0600), 0);
  EXPECT_SELFRL_ERROR(Recipe::load(f.write("p.yaml", "extends: [pipe]\n")), "p.yaml:1:", "is a FIFO");
  EXPECT_SELFRL_ERROR(Recipe::load(f.write("e.yaml", "extends: [{a: 1}]\n")),
                      "e.yaml:1:", "extends: each entry must be a recipe file name");
  EXPECT_SELFRL_ERROR(Recipe::load(f.write("e2.yaml", "extends: ['']\n")), "e2.yaml:1:", "each entry");
  EXPECT_SELFRL_ERROR(Recipe::load(f.write("e3.yaml", "extends: {a: 1}\n")), "e3.yaml:1:", "must be a file name");
  EXPECT_SELFRL_ERROR(Recipe::load(f.write("e4.yaml", "extends: nowhere.yaml\n")), "e4.yaml:1:", "extends: base recipe",
                      "nowhere.yaml' not found");
  // A long chain: c0 extends c1 extends ... c29.
  for (int i = 0; i < 30; ++i)
    f.write("c" + std::to_string(i) + ".yaml",
            i == 29 ? "seed: 1\n" : "extends: c" + std::to_string(i + 1) + ".yaml\n");
  EXPECT_SELFRL_ERROR(Recipe::load(f.d.file("c0.yaml")), "extends: chain longer than 16 recipes");
  // A wide diamond: 8 x 8 x 8 reads of the same leaf.
  f.write("leaf.yaml", "seed: 1\n");
  f.write("w2.yaml",
          "extends: [leaf.yaml, leaf.yaml, leaf.yaml, leaf.yaml, leaf.yaml, leaf.yaml, leaf.yaml, leaf.yaml]\n");
  f.write("w1.yaml", "extends: [w2.yaml, w2.yaml, w2.yaml, w2.yaml, w2.yaml, w2.yaml, w2.yaml, w2.yaml]\n");
  f.write("w0.yaml", "extends: [w1.yaml, w1.yaml, w1.yaml, w1.yaml, w1.yaml, w1.yaml, w1.yaml, w1.yaml]\n");
  EXPECT_SELFRL_ERROR(Recipe::load(f.d.file("w0.yaml")), "more than 64 recipe files read");
}

// ---- 4. unknown keys before the errors they cause ---------------------------------------------

TEST(HostileRecipe, MisspeltKeysAreNamedBeforeTheirConsequences) {
  Files f;
  const std::string head = "model: model\noutput_dir: out\ntrainer: grpo\n";
  EXPECT_SELFRL_ERROR(read(f.write("t.yaml", head + "data:\n  trian: train.jsonl\n")),
                      "t.yaml:5:", "data.trian: unknown key", "did you mean 'data.train'?");
  EXPECT_SELFRL_ERROR(read(f.write("t.yaml", "model: model\nouput_dir: out\ntrainer: grpo\ndata: {train: x}\n")),
                      "t.yaml:2:", "ouput_dir: unknown key", "did you mean 'output_dir'?");
  EXPECT_SELFRL_ERROR(read(f.write("t.yaml", "model: model\noutput_dir: out\ntrainr: grpo\ndata: {train: x}\n")),
                      "t.yaml:3:", "trainr: unknown key", "did you mean 'trainer'?");
  EXPECT_SELFRL_ERROR(read(f.write("t.yaml", head + "data: {train: train.jsonl}\ndta:\n  eval: x\n")),
                      "t.yaml:6:", "dta: unknown key", "did you mean 'data'?");
  EXPECT_SELFRL_ERROR(read(f.write("t.yaml", head + "\"data.train\": train.jsonl\n")),
                      "t.yaml:4:", "'data.train' is not a key name (it contains '.')", "data: {train: PATH}");
  EXPECT_SELFRL_ERROR(read(f.write("t.yaml", head), {"data.trian=train.jsonl"}),
                      "command line override 'data.trian=train.jsonl'", "did you mean 'data.train'?");
  EXPECT_SELFRL_ERROR(read(f.write("t.yaml", head), {"data..train=x"}), "not a key", "no empty parts");
}

// ---- 5. non-finite numbers ------------------------------------------------------------------

TEST(HostileRecipe, NonFiniteNumbersAreRejectedForEveryFloatKey) {
  Files f;
  for (const std::string v : {".inf", ".Inf", "-.inf", ".nan", ".NaN", "inf", "nan", "1e999", "-1e999"}) {
    SCOPED_TRACE(v);
    EXPECT_SELFRL_ERROR(read(f.recipe("learning_rate: " + v + "\n")), "r.yaml:6:", "learning_rate: '" + v + "'",
                        "is not a finite number", "allowed: a number in (0, inf)");
    EXPECT_SELFRL_ERROR(read(f.recipe("max_grad_norm: " + v + "\n")), "r.yaml:6:", "max_grad_norm", "not a finite");
  }
  EXPECT_SELFRL_ERROR(read(f.recipe("beta: .inf\n")), "r.yaml:6:", "beta", "not a finite number");
  EXPECT_SELFRL_ERROR(read(f.recipe("reward_funcs: [consensus, self_certainty]\nreward_weights: [1, .nan]\n")),
                      "r.yaml:7:", "reward_weights", "not a finite number");
  EXPECT_SELFRL_ERROR(read(f.recipe("epsilon_high: .inf\n")), "r.yaml:6:", "epsilon_high", "not a finite number");
  EXPECT_SELFRL_ERROR(read(f.recipe(""), {"temperature=.inf"}), "command line override 'temperature=.inf'",
                      "not a finite number");
  EXPECT_SELFRL_ERROR(read(f.write("b.yaml",
                                   "model: model\noutput_dir: out\ndata: {train: train.jsonl}\nloop: bstar\n"
                                   "bstar:\n  temperatures: [0.5, .inf]\n")),
                      "b.yaml:6:", "bstar.temperatures", "not a finite number");
}

// ---- 6. regular expressions are compiled when the recipe is read ------------------------------

TEST(HostileRecipe, BadRegexIsReportedAtLoadWithKeyAndLine) {
  Files f;
  EXPECT_SELFRL_ERROR(read(f.recipe("reward_funcs: [format]\nformat_pattern: \"(unclosed\"\n")),
                      "r.yaml:7:", "format_pattern: invalid answer pattern '(unclosed'", "hint:");
  EXPECT_SELFRL_ERROR(read(f.recipe("answer_extractor: \"regex:(bad\"\n")), "r.yaml:6:", "answer_extractor",
                      "invalid answer pattern '(bad'");
  EXPECT_SELFRL_ERROR(read(f.recipe("answer_extractor: \"regex:\"\n")), "r.yaml:6:", "answer_extractor",
                      "needs a pattern");
  const auto ok = read(f.recipe("reward_funcs: [format]\nformat_pattern: \"<answer>.*</answer>\"\n"));
  EXPECT_EQ(ok.format_pattern, "<answer>.*</answer>");
  EXPECT_SELFRL_ERROR(read(f.write("b.yaml",
                                   "model: model\noutput_dir: out\ndata: {train: train.jsonl}\nloop: bstar\n"
                                   "bstar:\n  selection_funcs: [consensu]\n")),
                      "b.yaml:6:", "consensu");
}

// ---- 7. integers: overflow, negatives, type limits ------------------------------------------

TEST(HostileRecipe, IntegerOverflowAndNegativesNameKeyAndRange) {
  Files f;
  EXPECT_SELFRL_ERROR(read(f.recipe("save_steps: 99999999999999999999\n")), "r.yaml:6:",
                      "save_steps: value 99999999999999999999 is out of range: it does not fit a 64-bit integer",
                      "allowed: an integer in [0, inf)");
  EXPECT_SELFRL_ERROR(read(f.recipe("seed: -99999999999999999999\n")), "r.yaml:6:", "seed", "64-bit integer");
  for (const std::string key : {"save_steps", "max_steps", "save_total_limit", "eval_steps", "top_k",
                                "dump_rollouts_steps", "warmup_steps", "max_resample_rounds"}) {
    SCOPED_TRACE(key);
    EXPECT_SELFRL_ERROR(read(f.recipe(key + ": -1\n")), "r.yaml:6:", key + ": value -1 is out of range",
                        "allowed: [0, inf)");
  }
  EXPECT_SELFRL_ERROR(read(f.recipe("num_generations: -8\n")), "r.yaml:6:", "num_generations", "[2, inf)");
  EXPECT_SELFRL_ERROR(read(f.recipe("threads: 10000000000\n")),
                      "r.yaml:6:", "threads: value 10000000000 is out of range; allowed: [0, 65536]");
  EXPECT_SELFRL_ERROR(read(f.recipe("ddp_timeout: 9223372036854775807\n")), "r.yaml:6:", "ddp_timeout",
                      "allowed: [1, 31536000]");
  EXPECT_SELFRL_ERROR(read(f.recipe("stop_token_ids: [1, 99999999999999999999]\n")), "r.yaml:6:", "stop_token_ids",
                      "does not fit a 64-bit integer");
  EXPECT_SELFRL_ERROR(read(f.recipe("stop_token_ids: [1, -2]\n")), "r.yaml:6:", "stop_token_ids", "out of range");
  EXPECT_SELFRL_ERROR(read(f.recipe("max_steps: 0x10\n")), "r.yaml:6:", "expected an integer, got '0x10'");
  EXPECT_SELFRL_ERROR(read(f.recipe("max_steps: [1]\n")), "r.yaml:6:", "max_steps: expected an integer");
  EXPECT_EQ(read(f.recipe("max_steps: 9223372036854775807\n")).max_steps, INT64_MAX);
}

// ---- other hostile text -------------------------------------------------------------------------

TEST(HostileRecipe, BinaryMultiDocumentAndHugeValuesGiveShortClearErrors) {
  Files f;
  EXPECT_SELFRL_ERROR(Recipe::load(f.write("nul.yaml", std::string("seed: 1\ntrainer: grpo\0\n", 22))), "nul.yaml:2",
                      "a NUL byte: this is not a text file");
  EXPECT_SELFRL_ERROR(Recipe::load(f.write("two.yaml", "trainer: grpo\n---\nseed: 2\n")),
                      "two.yaml:3:", "a recipe is one YAML document, this text has 2");
  // A multi-megabyte value is quoted clipped, not in full.
  try {
    read(f.recipe("lr_scheduler_type: " + std::string(3 << 20, 'x') + "\n"));
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("r.yaml:6:"), std::string::npos) << what.substr(0, 300);
    EXPECT_NE(what.find("... (3145728 bytes)"), std::string::npos) << what.substr(0, 300);
    EXPECT_LT(what.size(), 1000u);
  }
  try {
    read(f.write("k.yaml", "model: model\noutput_dir: out\ndata: {train: train.jsonl}\nloop: " +
                               std::string(3 << 20, 'y') + "\n"));
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("loop: unknown kind 'yyy"), std::string::npos) << what.substr(0, 300);
    EXPECT_NE(what.find("use one of the allowed kinds"), std::string::npos) << what.substr(0, 300);
    EXPECT_LT(what.size(), 1000u);
  }
}

// ---- findings of the hostile sweep (tests/hostile/sweep.py) ------------------------------------

// sweep: recipe/output_dir='' trained in the recipe's own directory ('' relative to the recipe).
TEST(HostileRecipe, EmptyPathIsNotTheRecipeDirectory) {
  Files f;
  const auto path = f.write("r.yaml", "model: model\noutput_dir: ''\ndata:\n  train: train.jsonl\ntrainer: grpo\n");
  EXPECT_SELFRL_ERROR(read(path), "r.yaml", "output_dir: required");
  const auto model_empty =
      f.write("m.yaml", "model: ''\noutput_dir: out\ndata:\n  train: train.jsonl\ntrainer: grpo\n");
  EXPECT_SELFRL_ERROR(read(model_empty), "m.yaml:1:", "model", "is empty");
}

// sweep: recipe/reward_funcs=[] passed --check and failed in the run with "GRPOTrainer: the reward
// pipeline is empty", naming neither the key nor the file.
TEST(HostileRecipe, EmptyRewardFuncsAreRefusedAtLoad) {
  Files f;
  EXPECT_SELFRL_ERROR(read(f.recipe("reward_funcs: []\n")), "r.yaml:6:", "reward_funcs is empty",
                      "at least one reward");
}

// Found by tests/fuzz (tests/fuzz/regressions/recipe): invalid UTF-8 reached JSON, which threw
// type_error.316 later; a document starting with ',' made yaml-cpp 0.7 loop forever.
namespace selfrl::recipe {
namespace {
TEST(HostileRecipe, FuzzFindingsInvalidUtf8AndLeadingComma) {
  EXPECT_SELFRL_ERROR(Recipe::parse("data:\n  train: \xff\n", "u.yaml"), "u.yaml:2:10", "invalid UTF-8");
  for (const char* text : {",\n", "  ,\n", "# c\n,\n", "---\n,\n", "--- ,\n"})
    EXPECT_SELFRL_ERROR(Recipe::parse(text, "c.yaml"), "c.yaml:", "cannot start with ','");
  EXPECT_NO_THROW(Recipe::parse("a: [1, 2]\n"));
  const std::string bad_key = "se\xffed=1";
  EXPECT_SELFRL_ERROR(Recipe::load(test::source_dir() + "/recipes/tiny/sft.yaml", {bad_key}),
                      "command line override is not valid UTF-8 (byte 3)");
}

// Fuzz finding 5 (the 1-hour recipe run, tests/fuzz/regressions/recipe/tag-then-comma.yaml):
// yaml-cpp 0.7 loops forever when ',' follows node properties or a complete node at document
// level, and on a later document that starts with ','. Each is now an error at the ','.
TEST(HostileRecipe, FuzzFindingCommaAfterANodeAtDocumentLevel) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"!,\"\"dd", "c.yaml:1:2"},         // the fuzzer's input: a tag, then ','
      {"&a ,", "c.yaml:1:4"},             // an anchor, then ','
      {"[1] ,", "c.yaml:1:5"},            // a complete flow sequence, then ','
      {"a: 1\n---\n,\n", "c.yaml:3:1"}};  // a second document that starts with ','
  for (const auto& [text, where] : cases)
    EXPECT_SELFRL_ERROR(Recipe::parse(text, "c.yaml"), where, "',' outside a [ ] or { } collection");
  EXPECT_SELFRL_ERROR(Recipe::parse("a: 1\n---\nb: 2\n---\nc: 3\n", "m.yaml"), "m.yaml:3:1",
                      "a recipe is one YAML document, this text has 3");
  EXPECT_NO_THROW(Recipe::parse("a: ',x'\nb: [1, 2]\nc: {d: 1, e: 2}\n"));
}

// Fuzz finding 7 (the second recipe hour, tests/fuzz/regressions/recipe/nbsp-escape.yaml):
// yaml-cpp 0.7 decodes the escapes \_ (U+00A0) and \N (U+0085) to single Latin-1 bytes, so a
// valid UTF-8 recipe gave a value that is not UTF-8, and dumping it as JSON threw
// json type_error.316. They are now decoded to UTF-8.
TEST(HostileRecipe, FuzzFindingEscapesDecodeToUtf8) {
  auto r = Recipe::parse("data:\n  system_prompt: \"a\\_b\\Nc\\u00e9\"\n\"k\\_\": 1\n", "e.yaml");
  r.allow("data");
  r.allow("k");
  const auto j = r.section_json("data");
  EXPECT_EQ(j["system_prompt"].get<std::string>(), "a\u00a0b\u0085c\u00e9");
  EXPECT_EQ(j.dump(), "{\"system_prompt\":\"a\u00a0b\u0085c\u00e9\"}");  // type_error.316 before
  EXPECT_EQ(r.section_json("k\u00a0").get<int>(), 1);                    // keys too
  // A surrogate or a code point above U+10FFFF: yaml-cpp refuses those itself, at the value.
  EXPECT_SELFRL_ERROR(Recipe::parse("a: 1\nb: \"x\\uD800\"\n", "s.yaml"), "s.yaml:2:", "invalid unicode");
  EXPECT_SELFRL_ERROR(Recipe::parse("a: 1\nb: \"x\\U00110000\"\n", "s.yaml"), "s.yaml:2:", "invalid unicode");
}
}  // namespace
}  // namespace selfrl::recipe
