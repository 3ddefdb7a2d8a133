// Parity of selfrl's tokenizers with the reference implementation (transformers.js tokenizers
// via @lenml/tokenizers, chat templates via @huggingface/jinja) on the real Qwen3, Llama-3 and
// Llama-2 tokenizer files, fetched into .cache/ by scripts/fetch_test_fixtures.sh. The
// reference ids are produced at test time by tests/reference/tokenizer/reference_tokenize.js.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "selfrl/io/jsonl.h"
#include "selfrl/tokenizer/tokenizer.h"
#include "test_util.h"

namespace selfrl::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string fixtures_dir() { return source_dir() + "/.cache/tokenizers"; }

// The corpus plus inputs generated here: a 10,000-character word and a long mixed line.
std::vector<std::string> corpus() {
  std::vector<std::string> texts;
  for (const auto& rec : io::read_jsonl(source_dir() + "/tests/data/tokenizer/corpus.jsonl"))
    texts.push_back(rec.at("text").get<std::string>());
  std::mt19937 rng(1234);
  std::string word;
  for (int i = 0; i < 10000; ++i) word += static_cast<char>('a' + rng() % 26);
  texts.push_back(word);
  std::string mixed;
  for (int i = 0; i < 200; ++i) mixed += "Mixed 文本 " + std::to_string(i * 37) + " émoji 😀\t";
  texts.push_back(mixed);
  return texts;
}

struct Reference {
  std::vector<json> rows;
};

class TokenizerParity : public ::testing::TestWithParam<std::string> {
 public:
  static void SetUpTestSuite() {
    if (!fs::exists(fixtures_dir())) return;
    texts_ = new std::vector<std::string>(corpus());
    dir_ = new TempDir();
    {
      io::JsonlWriter w(dir_->file("corpus.jsonl"));
      for (const auto& t : *texts_) w.write({{"text", t}});
      w.close();
    }
    // The three references run in parallel: each loads a multi-megabyte tokenizer.json.
    const std::string script = source_dir() + "/tests/reference/tokenizer/reference_tokenize.js";
    std::string cmd;
    for (const char* name : {"qwen3", "llama3", "llama2"}) {
      cmd += "node '" + script + "' '" + fixtures_dir() + "/" + name + "' '" + dir_->file("corpus.jsonl") + "' '" +
             dir_->file(std::string("ref_") + name + ".jsonl") + "' 2>&1 | tail -c 2000 & ";
    }
    cmd += "wait";
    const auto r = run_command(cmd);
    refs_ = new std::map<std::string, Reference>();
    for (const char* name : {"qwen3", "llama3", "llama2"}) {
      const std::string path = dir_->file(std::string("ref_") + name + ".jsonl");
      if (!fs::exists(path)) {
        ref_error_ = new std::string("reference for " + std::string(name) + " failed: " + r.output);
        return;
      }
      (*refs_)[name].rows = io::read_jsonl(path);
    }
  }
  static void TearDownTestSuite() {
    delete texts_;
    delete dir_;
    delete refs_;
    delete ref_error_;
    texts_ = nullptr;
    dir_ = nullptr;
    refs_ = nullptr;
    ref_error_ = nullptr;
  }

 protected:
  void SetUp() override {
    if (!fs::exists(fixtures_dir()))
      GTEST_SKIP() << "\n\n*** TOKENIZER FIXTURES MISSING: " << fixtures_dir()
                   << " does not exist. Run scripts/fetch_test_fixtures.sh (scripts/setup.sh does). ***\n\n";
    ASSERT_EQ(ref_error_, nullptr) << *ref_error_;
    ASSERT_EQ((*refs_)[GetParam()].rows.size(), texts_->size());
  }
  const std::vector<json>& ref() const { return (*refs_)[GetParam()].rows; }

  static std::vector<std::string>* texts_;
  static TempDir* dir_;
  static std::map<std::string, Reference>* refs_;
  static std::string* ref_error_;
};
std::vector<std::string>* TokenizerParity::texts_ = nullptr;
TempDir* TokenizerParity::dir_ = nullptr;
std::map<std::string, Reference>* TokenizerParity::refs_ = nullptr;
std::string* TokenizerParity::ref_error_ = nullptr;

// Prints the first few mismatches and returns the number of matching rows.
template <typename F>
size_t count_equal(const std::vector<std::string>& texts, F&& same, const char* what) {
  size_t ok = 0, shown = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::string detail;
    if (same(i, &detail)) {
      ++ok;
    } else if (shown++ < 5) {
      ADD_FAILURE() << what << " mismatch on line " << i << ": " << json(texts[i]).dump().substr(0, 200) << "\n"
                    << detail;
    }
  }
  std::printf("[ parity ] %s: %zu/%zu equal\n", what, ok, texts.size());
  return ok;
}

TEST_P(TokenizerParity, EncodeMatchesReference) {
  const auto tok = tokenizer::Tokenizer::from_pretrained(fixtures_dir() + "/" + GetParam());
  const auto plain = tok->encode_batch(*texts_, false);
  const auto special = tok->encode_batch(*texts_, true);
  auto cmp = [&](const char* key, const std::vector<std::vector<int>>& got) {
    return [&, key](size_t i, std::string* d) {
      const auto want = ref()[i].at(key).get<std::vector<int>>();
      if (want == got[i]) return true;
      *d = std::string("want ") + json(want).dump().substr(0, 300) + "\n got " + json(got[i]).dump().substr(0, 300);
      return false;
    };
  };
  EXPECT_EQ(count_equal(*texts_, cmp("ids", plain), (GetParam() + " encode").c_str()), texts_->size());
  EXPECT_EQ(count_equal(*texts_, cmp("ids_special", special), (GetParam() + " encode+special").c_str()),
            texts_->size());
}

TEST_P(TokenizerParity, DecodeMatchesReference) {
  const auto tok = tokenizer::Tokenizer::from_pretrained(fixtures_dir() + "/" + GetParam());
  size_t lossless = 0;
  auto same = [&](size_t i, std::string* d) {
    const auto ids = ref()[i].at("ids").get<std::vector<int>>();
    const std::string got = tok->decode(ids, false);
    lossless += got == (*texts_)[i];
    const std::string want = ref()[i].at("decoded").get<std::string>();
    if (got == want) return true;
    *d = "want " + json(want).dump().substr(0, 300) + "\n got " + json(got).dump().substr(0, 300);
    return false;
  };
  EXPECT_EQ(count_equal(*texts_, same, (GetParam() + " decode").c_str()), texts_->size());
  std::printf("[ parity ] %s: decode(encode(x)) == x for %zu/%zu\n", GetParam().c_str(), lossless, texts_->size());
  // Lossless where HF is: plain ASCII text without clean-up patterns round-trips exactly.
  EXPECT_EQ(tok->decode(tok->encode("Hello world\n\tcode  x = 1;", false)), "Hello world\n\tcode  x = 1;");
}

TEST_P(TokenizerParity, ChatTemplateMatchesReference) {
  const auto tok = tokenizer::Tokenizer::from_pretrained(fixtures_dir() + "/" + GetParam());
  if (!tok->config().chat_template) {
    EXPECT_TRUE(ref()[0].at("chat_ids").is_null());
    return;
  }
  auto same = [&](size_t i, std::string* d) {
    const std::string prompt = tok->apply_chat_template({{"user", (*texts_)[i]}}, true);
    const std::string want_prompt = ref()[i].at("chat_prompt").get<std::string>();
    if (prompt != want_prompt) {
      *d = "prompt want " + json(want_prompt).dump().substr(0, 300) + "\n prompt got " +
           json(prompt).dump().substr(0, 300);
      return false;
    }
    const auto ids = tok->encode(prompt, false);
    if (ids == ref()[i].at("chat_ids").get<std::vector<int>>()) return true;
    *d = "chat ids differ";
    return false;
  };
  EXPECT_EQ(count_equal(*texts_, same, (GetParam() + " chat").c_str()), texts_->size());
}

// The CLI end to end: --chat output equals the reference's chat ids, --decode inverts ids.
TEST_P(TokenizerParity, CliMatchesReference) {
  const std::string dir = fixtures_dir() + "/" + GetParam();
  const auto tok = tokenizer::Tokenizer::from_pretrained(dir);
  const bool chat = tok->config().chat_template.has_value();
  const std::string out = dir_->file("cli_" + GetParam() + ".jsonl");
  const auto r = run_command(selfrl_cli() + " tokenize --tokenizer '" + dir + "' --in '" + dir_->file("corpus.jsonl") +
                             "' --out '" + out + "'" + (chat ? " --chat" : " --add-special-tokens"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto rows = io::read_jsonl(out);
  ASSERT_EQ(rows.size(), texts_->size());
  size_t ok = 0;
  for (size_t i = 0; i < rows.size(); ++i)
    ok += rows[i].at("input_ids") == ref()[i].at(chat ? "chat_ids" : "ids_special");
  EXPECT_EQ(ok, rows.size());
  const std::string decoded = dir_->file("cli_dec_" + GetParam() + ".jsonl");
  const auto d = run_command(selfrl_cli() + " tokenize --tokenizer '" + dir +
                             "' --decode --skip-special-tokens --in '" + out + "' --out '" + decoded + "'");
  ASSERT_EQ(d.exit_code, 0) << d.output;
  EXPECT_EQ(io::read_jsonl(decoded).size(), rows.size());
}

INSTANTIATE_TEST_SUITE_P(Tokenizer, TokenizerParity, ::testing::Values("qwen3", "llama3", "llama2"),
                         [](const auto& info) { return info.param; });

TEST(TokenizerCli, BadInputsAreClearErrors) {
  TempDir d;
  auto r = run_command(selfrl_cli() + " tokenize --tokenizer '" + d.path() + "' --text hi");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no tokenizer.json or tokenizer.model"), std::string::npos) << r.output;
  if (!fs::exists(fixtures_dir())) GTEST_SKIP() << "tokenizer fixtures missing (scripts/fetch_test_fixtures.sh)";
  write_bytes(d.file("in.jsonl"), "{\"text\": \"ok\"}\n{\"txt\": 1}\n");
  r = run_command(selfrl_cli() + " tokenize --tokenizer '" + fixtures_dir() + "/qwen3' --in '" + d.file("in.jsonl") +
                  "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("in.jsonl:2"), std::string::npos) << r.output;
  write_bytes(d.file("ids.jsonl"), "{\"input_ids\": [1, 99999999]}\n");
  r = run_command(selfrl_cli() + " tokenize --tokenizer '" + fixtures_dir() + "/qwen3' --decode --in '" +
                  d.file("ids.jsonl") + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("99999999"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace selfrl::test

namespace selfrl::test {
namespace {

// Multi-turn conversations (system prompts, <think> reasoning in assistant turns, tool
// responses, enable_thinking) through the real Qwen3 and Llama-3 templates vs @huggingface/jinja.
TEST(TokenizerChatTemplate, MultiTurnMatchesReference) {
  if (!fs::exists(fixtures_dir())) GTEST_SKIP() << "tokenizer fixtures missing (scripts/fetch_test_fixtures.sh)";
  const std::string conv_path = source_dir() + "/tests/data/tokenizer/conversations.json";
  std::ifstream in(conv_path);
  const json convs = json::parse(in);
  for (const char* name : {"qwen3", "llama3"}) {
    TempDir d;
    const std::string dir = fixtures_dir() + "/" + name;
    const auto r = run_command("node '" + source_dir() + "/tests/reference/tokenizer/reference_chat.js' '" + dir +
                               "' '" + conv_path + "' '" + d.file("out.json") + "'");
    ASSERT_EQ(r.exit_code, 0) << r.output.substr(r.output.size() > 2000 ? r.output.size() - 2000 : 0);
    std::ifstream rin(d.file("out.json"));
    const json want = json::parse(rin);
    const auto tok = tokenizer::Tokenizer::from_pretrained(dir);
    tokenizer::ChatTemplate tpl(*tok->config().chat_template, name);
    ASSERT_EQ(want.size(), convs.size());
    for (size_t i = 0; i < convs.size(); ++i) {
      std::vector<tokenizer::ChatMessage> msgs;
      for (const auto& m : convs[i]["messages"]) msgs.push_back({m["role"], m["content"]});
      tokenizer::ChatTemplateOptions opt;
      opt.add_generation_prompt = convs[i]["add_generation_prompt"];
      opt.bos_token = tok->config().bos_token.value_or("");
      opt.eos_token = tok->config().eos_token.value_or("");
      if (convs[i].contains("enable_thinking")) opt.bool_vars["enable_thinking"] = convs[i]["enable_thinking"];
      EXPECT_EQ(tpl.render(msgs, opt), want[i].get<std::string>()) << name << " conversation " << i;
    }
  }
}

}  // namespace
}  // namespace selfrl::test
