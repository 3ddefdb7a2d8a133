// Parity with an independent Python forward written from transformers' modeling code
// (tests/python/hf_reference.py, float64): logprobs through `selfrl logprobs` and in-process,
// greedy `selfrl generate` tokens, and Python reading what save_pretrained wrote. Also the
// CLI's errors for bad input files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "selfrl/io/jsonl.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/model/token_logprobs.h"
#include "selfrl/tokenizer/sentencepiece_tokenizer.h"
#include "selfrl/tokenizer/tokenizer.h"
#include "test_util.h"

using nlohmann::json;
using selfrl::test::python;
using selfrl::test::run_command;
using selfrl::test::selfrl_cli;
using selfrl::test::source_dir;
using selfrl::test::TempDir;

namespace {

std::string reference() { return python() + " " + source_dir() + "/tests/python/hf_reference.py"; }

void must_run(const std::string& cmd) {
  auto r = run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream f(path);
  for (const auto& l : lines) f << l << "\n";
}

std::vector<json> read(const std::string& path) { return selfrl::io::read_jsonl(path, true); }

const std::vector<std::string> kSeqs = {
    R"({"input_ids": [1, 5, 9, 22, 40, 3, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 60, 61, 62, 63]})",
    R"({"input_ids": [4, 3]})", R"({"input_ids": [7]})", R"({"input_ids": [96, 0, 95, 1, 94]})"};

double max_abs_diff(const std::vector<json>& a, const std::vector<json>& b) {
  double d = 0;
  EXPECT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    auto x = a[i]["logprobs"].get<std::vector<double>>(), y = b[i]["logprobs"].get<std::vector<double>>();
    EXPECT_EQ(x.size(), y.size()) << "line " << i;
    for (size_t t = 0; t < x.size() && t < y.size(); ++t) d = std::max(d, std::abs(x[t] - y[t]));
  }
  return d;
}

// name → make-model flags
struct Case {
  std::string name, flags;
};
const std::vector<Case> kCases = {
    {"llama", "--arch llama --seed 3"},
    {"llama_bias", "--arch llama --bias --seed 5"},
    {"llama3_tied_sharded", "--arch llama --llama3-rope --tied --shards 3 --seed 4"},
    {"qwen2", "--arch qwen2 --seed 3"},
    {"qwen3", "--arch qwen3 --seed 3 --shards 2"},
};

class HFParity : public ::testing::TestWithParam<Case> {
 protected:
  // CTest runs each test in its own process, so only the parameter's model is made (once per
  // process, in one Python start-up): all five would cost ~10 s per test.
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    write_lines(dir_->file("seqs.jsonl"), kSeqs);
    write_lines(dir_->file("prompts.jsonl"),
                {R"({"input_ids": [1, 5, 9, 22, 40, 3]})", R"({"input_ids": [4, 3]})", R"({"input_ids": [7]})"});
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    const std::string m = model_dir();
    if (std::ifstream(m + "/ref_greedy.jsonl").good()) return;
    must_run(reference() + " prepare " + GetParam().flags + " --out " + m + " --seqs " + dir_->file("seqs.jsonl") +
             " --prompts " + dir_->file("prompts.jsonl") + " --max-new-tokens 10");
  }
  std::string model_dir() const { return dir_->file(GetParam().name); }
  static TempDir* dir_;
};
TempDir* HFParity::dir_ = nullptr;

}  // namespace

TEST_P(HFParity, LogprobsCliMatchesReference) {
  const std::string out = model_dir() + "/ours.jsonl";
  must_run(selfrl_cli() + " logprobs --threads 1 --batch-size 3 --model " + model_dir() + " --in " +
           dir_->file("seqs.jsonl") + " --out " + out);
  const double d = max_abs_diff(read(out), read(model_dir() + "/ref_logprobs.jsonl"));
  EXPECT_LE(d, 1e-4);
  std::cout << "[ parity ] " << GetParam().name << " selfrl logprobs max abs diff " << d << "\n";
}

TEST_P(HFParity, InProcessLogprobsMatchReference) {
  auto m = selfrl::model::CausalLM::from_pretrained(model_dir());
  auto ref = read(model_dir() + "/ref_logprobs.jsonl");
  double d = 0;
  for (size_t i = 0; i < kSeqs.size(); ++i) {
    auto ids_v = json::parse(kSeqs[i])["input_ids"].get<std::vector<int64_t>>();
    if (ids_v.size() < 2) continue;
    auto ids = torch::tensor(ids_v, torch::kLong).unsqueeze(0);
    torch::NoGradGuard g;
    const int64_t n = ids.size(1);
    auto lp = selfrl::model::token_logprobs(m->forward(ids).narrow(1, 0, n - 1), m->lm_head_weight(),
                                            ids.narrow(1, 1, n - 1), 1.0, 4)
                  .logprobs;
    auto r = ref[i]["logprobs"].get<std::vector<double>>();
    for (int64_t t = 0; t < n - 1; ++t) d = std::max(d, std::abs(lp[0][t].item<double>() - r[t]));
  }
  EXPECT_LE(d, 1e-4);
  std::cout << "[ parity ] " << GetParam().name << " in-process max abs diff " << d << "\n";
}

TEST_P(HFParity, GreedyGenerateMatchesReference) {
  const std::string out = model_dir() + "/ours_greedy.jsonl";
  must_run(selfrl_cli() + " generate --threads 1 --temperature 0 --max-new-tokens 10 --num-samples 2 --model " +
           model_dir() + " --in " + dir_->file("prompts.jsonl") + " --out " + out);
  auto ours = read(out), ref = read(model_dir() + "/ref_greedy.jsonl");
  ASSERT_EQ(ours.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_EQ(ours[i]["completions"].size(), 2u);
    for (const auto& c : ours[i]["completions"]) {
      EXPECT_EQ(c["token_ids"], ref[i]["token_ids"])
          << "prompt " << i << " (reference min top-2 margin " << ref[i]["min_margin"] << ")";
      EXPECT_EQ(c["logprobs"].size(), c["token_ids"].size());
    }
  }
}

TEST_P(HFParity, PythonReadsWhatWeSave) {
  auto m = selfrl::model::CausalLM::from_pretrained(model_dir());
  TempDir saved;
  m->save_pretrained(saved.path(), /*max_shard_bytes=*/60000);
  must_run(reference() + " logprobs --model " + saved.path() + " --in " + dir_->file("seqs.jsonl") + " --out " +
           saved.file("ref.jsonl"));
  EXPECT_LE(max_abs_diff(read(saved.file("ref.jsonl")), read(model_dir() + "/ref_logprobs.jsonl")), 1e-9);
  auto back = selfrl::model::CausalLM::from_pretrained(saved.path());
  auto a = m->hf_state_dict(), b = back->hf_state_dict();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
}

INSTANTIATE_TEST_SUITE_P(Model, HFParity, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

TEST(ModelCli, GenerateStopsAtEosLikeTheReference) {
  TempDir dir;
  // With EOS = the 3rd greedy token of this model, both stop there.
  must_run(reference() + " make-model --arch llama --seed 3 --eos 74 --out " + dir.file("m"));
  write_lines(dir.file("p.jsonl"), {R"({"input_ids": [4, 3]})"});
  must_run(reference() + " greedy --model " + dir.file("m") + " --in " + dir.file("p.jsonl") +
           " --max-new-tokens 10 --out " + dir.file("ref.jsonl"));
  must_run(selfrl_cli() + " generate --temperature 0 --max-new-tokens 10 --model " + dir.file("m") + " --in " +
           dir.file("p.jsonl") + " --out " + dir.file("ours.jsonl"));
  auto ref = read(dir.file("ref.jsonl"));
  auto ours = read(dir.file("ours.jsonl"));
  EXPECT_EQ(ours[0]["completions"][0]["token_ids"], ref[0]["token_ids"]);
  EXPECT_EQ(ref[0]["token_ids"].back(), 74);  // the reference stopped early too
  EXPECT_LT(ref[0]["token_ids"].size(), 10u);
  EXPECT_EQ(ours[0]["completions"][0]["finish_reason"], "stop");
}

TEST(ModelCli, SampledGenerateIsReproducibleAndHasStats) {
  TempDir dir;
  must_run(reference() + " make-model --arch llama --seed 1 --out " + dir.file("m"));
  write_lines(dir.file("p.jsonl"), {R"({"input_ids": [4, 3]})", R"({"input_ids": [1, 2, 3]})"});
  const std::string cmd = selfrl_cli() +
                          " generate --temperature 0.9 --top-p 0.95 --top-k 40 --min-p 0.01 "
                          "--num-samples 3 --max-new-tokens 6 --seed 7 --with-stats --model " +
                          dir.file("m") + " --in " + dir.file("p.jsonl") + " --out ";
  must_run(cmd + dir.file("a.jsonl"));
  must_run(cmd + dir.file("b.jsonl"));
  auto a = read(dir.file("a.jsonl")), b = read(dir.file("b.jsonl"));
  EXPECT_EQ(a, b);
  ASSERT_EQ(a[1]["completions"].size(), 3u);
  EXPECT_EQ(a[1]["completions"][2]["entropy"].size(), a[1]["completions"][2]["token_ids"].size());
}

TEST(ModelCli, BadInputsNameFileAndLine) {
  TempDir dir;
  must_run(reference() + " make-model --arch llama --seed 1 --out " + dir.file("m"));
  write_lines(dir.file("oov.jsonl"), {R"({"input_ids": [1, 2]})", R"({"input_ids": [1, 97]})"});
  write_lines(dir.file("empty.jsonl"), {R"({"input_ids": []})"});
  std::string longline = R"({"input_ids": [)";
  for (int i = 0; i < 300; ++i) longline += (i ? ", " : "") + std::to_string(i % 90);
  write_lines(dir.file("long.jsonl"), {longline + "]}"});
  for (const std::string cmd : {"logprobs", "generate"}) {
    auto r = run_command(selfrl_cli() + " " + cmd + " --model " + dir.file("m") + " --in " + dir.file("oov.jsonl"));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("oov.jsonl:2"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("token id 97 is outside the vocabulary [0, 97)"), std::string::npos) << r.output;
    r = run_command(selfrl_cli() + " " + cmd + " --model " + dir.file("m") + " --in " + dir.file("empty.jsonl"));
    EXPECT_NE(r.output.find("empty.jsonl:1"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("input_ids is empty"), std::string::npos) << r.output;
    r = run_command(selfrl_cli() + " " + cmd + " --model " + dir.file("m") + " --in " + dir.file("long.jsonl"));
    EXPECT_NE(r.output.find("long.jsonl:1"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("max_position_embeddings 256"), std::string::npos) << r.output;
  }
  auto r = run_command(selfrl_cli() + " logprobs --model " + dir.file("nope") + " --in " + dir.file("oov.jsonl"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("nope"), std::string::npos) << r.output;
}

TEST(ModelCli, GenerateAcceptsPromptTextThroughTheTokenizer) {
  TempDir dir;
  must_run(reference() + " make-model --arch llama --seed 2 --out " + dir.file("m"));
  std::vector<std::string> lines;
  for (int a = 0; a < 40; ++a)
    for (int b = 0; b < 10; ++b)
      lines.push_back(std::to_string(a) + " + " + std::to_string(b) + " = " + std::to_string(a + b));
  selfrl::tokenizer::SentencePieceTrainOptions opt;
  opt.vocab_size = 40;  // < the model's 97 ids
  std::filesystem::copy_file(selfrl::tokenizer::train_sentencepiece(lines, dir.file("tok"), opt),
                             dir.file("m/tokenizer.model"));
  auto tok = selfrl::tokenizer::Tokenizer::from_pretrained(dir.file("m"));

  // The same prompt as text and as the ids our tokenizer gives: identical greedy completions.
  const std::string text = "12 + 7 =";
  const auto ids = tok->encode(text, false);
  write_lines(dir.file("text.jsonl"), {json{{"prompt", text}}.dump()});
  write_lines(dir.file("ids.jsonl"), {json{{"input_ids", ids}}.dump()});
  const std::string gen =
      selfrl_cli() + " generate --temperature 0 --max-new-tokens 6 --ignore-eos --model " + dir.file("m");
  must_run(gen + " --in " + dir.file("text.jsonl") + " --out " + dir.file("a.jsonl"));
  must_run(gen + " --in " + dir.file("ids.jsonl") + " --out " + dir.file("b.jsonl"));
  auto a = read(dir.file("a.jsonl")), b = read(dir.file("b.jsonl"));
  const auto& ca = a[0]["completions"][0];
  EXPECT_EQ(ca["token_ids"], b[0]["completions"][0]["token_ids"]);
  std::vector<int> known;  // ids >= the tokenizer's 40 are skipped in the text, as HF does
  for (int id : ca["token_ids"].get<std::vector<int>>())
    if (id < tok->vocab_size()) known.push_back(id);
  EXPECT_EQ(ca["text"], tok->decode(known, true));

  // --chat renders the prompt through a chat format first: a different, longer prompt.
  must_run(gen + " --chat --chat-format plain --in " + dir.file("text.jsonl") + " --out " + dir.file("c.jsonl"));
  EXPECT_EQ(read(dir.file("c.jsonl"))[0]["completions"][0]["token_ids"].size(), 6u);

  // Without a tokenizer, a "prompt" line is a clear error naming the line.
  std::filesystem::remove(dir.file("m/tokenizer.model"));
  auto r = run_command(gen + " --in " + dir.file("text.jsonl"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("text.jsonl:1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"prompt\""), std::string::npos) << r.output;
  r = run_command(gen + " --chat --in " + dir.file("text.jsonl"));
  EXPECT_NE(r.output.find("--tokenizer"), std::string::npos) << r.output;
}
