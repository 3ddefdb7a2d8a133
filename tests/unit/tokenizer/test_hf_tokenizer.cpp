// HfTokenizer on hand-made tokenizer.json files: BPE merge order, byte-level and
// sentencepiece-style pipelines, byte fallback, added-token flags, NFC, from_pretrained, and
// malformed files that must fail with a message naming the problem.
#include <gtest/gtest.h>

#include <chrono>

#include <nlohmann/json.hpp>

#include "selfrl/tokenizer/hf_tokenizer.h"
#include "selfrl/tokenizer/sentencepiece_tokenizer.h"
#include "test_util.h"

namespace selfrl::test {
namespace {

using json = nlohmann::json;
using tokenizer::HfTokenizer;
using Ids = std::vector<int>;

const std::string kMeta = "\xE2\x96\x81";  // ▁

// A Llama-2 style tokenizer: Prepend("▁") + Replace(" ", "▁"), byte fallback, fused unk.
json sp_style() {
  json vocab = {{"<unk>", 0}, {"<s>", 1},        {"</s>", 2}, {kMeta, 3},     {"a", 4},       {"b", 5}, {"c", 6},
                {"ab", 7},    {kMeta + "ab", 8}, {"bc", 9},   {"<0xC9>", 10}, {"<0x91>", 11}, {"z", 12}};
  return {{"version", "1.0"},
          {"added_tokens", json::array({{{"id", 0}, {"content", "<unk>"}, {"special", true}, {"normalized", false}},
                                        {{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
                                        {{"id", 2}, {"content", "</s>"}, {"special", true}, {"normalized", false}}})},
          {"normalizer",
           {{"type", "Sequence"},
            {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", kMeta}},
                                         {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kMeta}}})}}},
          {"pre_tokenizer", nullptr},
          {"post_processor",
           {{"type", "TemplateProcessing"},
            {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                    {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
            {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
          {"decoder",
           {{"type", "Sequence"},
            {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", kMeta}}}, {"content", " "}},
                                      {{"type", "ByteFallback"}},
                                      {{"type", "Fuse"}},
                                      {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}},
          {"model",
           {{"type", "BPE"},
            {"unk_token", "<unk>"},
            {"fuse_unk", true},
            {"byte_fallback", true},
            {"vocab", vocab},
            {"merges", json::array({"b c", "a b", kMeta + " ab"})}}}};
}

std::unique_ptr<HfTokenizer> load(const json& j) { return HfTokenizer::from_json_string(j.dump(), {}, "test.json"); }

// GPT-2's bytes_to_unicode, written out again so the test does not share the library's table.
std::string byte_char(int b) {
  static std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    int n = 0;
    for (int c = 0; c < 256; ++c) {
      const bool printable = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174;
      const int cp = printable ? c : 256 + n++;
      std::string s;
      if (cp < 0x80)
        s += static_cast<char>(cp);
      else {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      }
      t[c] = s;
    }
    return t;
  }();
  return table[b];
}

// A byte-level tokenizer with every byte, a few merges and an NFC normalizer.
json byte_level(bool nfc = false) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  vocab["hi"] = 256;
  vocab[byte_char(' ') + "hi"] = 257;
  vocab["aa"] = 258;
  vocab["aaaa"] = 259;
  return {
      {"added_tokens", json::array({{{"id", 300}, {"content", "<|end|>"}, {"special", true}, {"normalized", false}}})},
      {"normalizer", nfc ? json{{"type", "NFC"}} : json(nullptr)},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", {{"type", "ByteLevel"}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        // both merge spellings: "a b" strings and ["a", "b"] pairs
        {"merges", json::array({json::array({"h", "i"}), byte_char(' ') + " hi", "a a", "aa aa"})}}}};
}

TEST(TokenizerBpe, MergesApplyInRankOrder) {
  auto tok = load(sp_style());
  // "abc": rank 0 is "b c", so a + bc, and "a bc" is no merge.
  EXPECT_EQ(tok->encode("abc", false), (Ids{3, 4, 9}));
  EXPECT_EQ(tok->encode("ab ab", false), (Ids{8, 8}));
  EXPECT_EQ(tok->encode("ab", true), (Ids{1, 8}));  // TemplateProcessing adds <s>
  EXPECT_EQ(tok->encode("", true), (Ids{1}));
  EXPECT_EQ(tok->encode("", false), (Ids{}));
  EXPECT_EQ(tok->decode({1, 8, 8}, true), "ab ab");
  EXPECT_EQ(tok->decode({1, 8, 8}, false), "<s> ab ab");
  EXPECT_EQ(tok->vocab_size(), 13);
  EXPECT_EQ(tok->id_to_token(8), kMeta + "ab");
  EXPECT_EQ(tok->token_to_id("bc"), 9);
  EXPECT_FALSE(tok->token_to_id("nope").has_value());
  EXPECT_TRUE(tok->is_special(1));
  EXPECT_FALSE(tok->is_special(4));
}

TEST(TokenizerBpe, ByteFallbackAndFusedUnk) {
  auto tok = load(sp_style());
  // U+0251 is C9 91: both byte tokens exist, so byte fallback; "xy" has neither: one fused <unk>.
  EXPECT_EQ(tok->encode("\xC9\x91", false), (Ids{3, 10, 11}));
  EXPECT_EQ(tok->encode("axyb", false), (Ids{3, 4, 0, 5}));
  EXPECT_EQ(tok->decode({3, 10, 11}), "\xC9\x91");
  EXPECT_EQ(tok->decode({10}), "\xEF\xBF\xBD");  // a lone lead byte decodes to U+FFFD
}

TEST(TokenizerBpe, ByteLevelPipeline) {
  auto tok = load(byte_level());
  EXPECT_EQ(tok->encode("hi hi", false), (Ids{256, 257}));
  EXPECT_EQ(tok->id_to_token(257), byte_char(' ') + "hi");
  EXPECT_EQ(tok->token_to_id(byte_char(' ') + "hi"), 257);
  EXPECT_EQ(tok->decode(tok->encode("hi hi\n\t\xE4\xBD\xA0 <|end|>")), "hi hi\n\t\xE4\xBD\xA0 <|end|>");
  EXPECT_EQ(tok->encode("x<|end|>y", true), (Ids{'x', 300, 'y'}));
  EXPECT_EQ(tok->decode({'x', 300, 'y'}, true), "xy");
  // Half of a multi-byte character decodes lossily, as HF does.
  EXPECT_EQ(tok->decode({0xE4, 0xBD}), "\xEF\xBF\xBD");
}

TEST(TokenizerBpe, LongWordIsNotQuadratic) {
  auto tok = load(byte_level());
  const std::string word(10000, 'a');
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok->encode(word, false);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(ids, Ids(2500, 259));
  EXPECT_LT(s, 0.5) << "10,000-byte word took " << s << " s";
}

TEST(TokenizerBpe, NfcNormalizerComposes) {
  auto tok = load(byte_level(true));
  // e + COMBINING ACUTE -> U+00E9; Hangul jamo -> syllable; A + RING -> U+00C5; U+212B -> U+00C5.
  EXPECT_EQ(tok->encode("e\xCC\x81", false), tok->encode("\xC3\xA9", false));
  EXPECT_EQ(tok->encode("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", false), tok->encode("\xEA\xB0\x81", false));
  EXPECT_EQ(tok->encode("A\xCC\x8A", false), tok->encode("\xC3\x85", false));
  EXPECT_EQ(tok->encode("\xE2\x84\xAB", false), tok->encode("\xC3\x85", false));
  // Canonical reordering: dot below (ccc 220) before circumflex (ccc 230) -> U+1ED9.
  EXPECT_EQ(tok->encode("o\xCC\x82\xCC\xA3", false), tok->encode("\xE1\xBB\x99", false));
}

TEST(TokenizerAddedTokens, FlagsAreHonoured) {
  json j = sp_style();
  j["added_tokens"].push_back(
      {{"id", 13}, {"content", "<x>"}, {"special", true}, {"lstrip", true}, {"normalized", false}});
  j["added_tokens"].push_back(
      {{"id", 14}, {"content", "[y]"}, {"special", false}, {"rstrip", true}, {"normalized", false}});
  j["added_tokens"].push_back(
      {{"id", 15}, {"content", "zz"}, {"special", false}, {"single_word", true}, {"normalized", false}});
  auto tok = load(j);
  EXPECT_EQ(tok->encode("a <x>b", false), (Ids{3, 4, 13, 3, 5}));        // lstrip eats the space
  EXPECT_EQ(tok->encode("[y]   a", false), (Ids{14, 3, 4}));             // rstrip eats the spaces
  EXPECT_EQ(tok->encode("a zz b", false), (Ids{3, 4, 3, 15, 3, 3, 5}));  // a whole word: matched
  EXPECT_EQ(tok->encode("azz", false), (Ids{3, 4, 12, 12}));             // inside a word: not
  EXPECT_EQ(tok->decode({4, 13, 14}, true), "a[y]");                     // only special ones skipped
  EXPECT_EQ(tok->vocab_size(), 16);
}

TEST(TokenizerErrors, MalformedFilesNameTheProblem) {
  EXPECT_SELFRL_ERROR(HfTokenizer::from_json_string("{\"model\": {", {}, "bad.json"), "bad.json:1:", "invalid JSON");
  json j = sp_style();
  j["model"]["type"] = "WordPiece";
  EXPECT_SELFRL_ERROR(load(j), "test.json", "model.type \"WordPiece\" is not supported");
  j = sp_style();
  j["model"]["merges"] = json::array({"a q"});
  EXPECT_SELFRL_ERROR(load(j), "model.merges[0]", "\"q\" is not in model.vocab");
  j["model"]["merges"] = json::array({"abc"});
  EXPECT_SELFRL_ERROR(load(j), "model.merges[0]", "is not \"left right\"");
  j = sp_style();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  EXPECT_SELFRL_ERROR(load(j), "unsupported pre_tokenizer type \"Whitespace\"", "supported pre-tokenizers");
  j = sp_style();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  EXPECT_SELFRL_ERROR(load(j), "cannot compile regex /(unclosed/");
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Sideways"}};
  EXPECT_SELFRL_ERROR(load(j), "unsupported Split behavior \"Sideways\"");
  j = sp_style();
  j["normalizer"] = {{"type", "NFKD"}};
  EXPECT_SELFRL_ERROR(load(j), "unsupported normalizer type \"NFKD\"");
  j = sp_style();
  j["model"]["vocab"]["a"] = "four";
  EXPECT_SELFRL_ERROR(load(j), "model.vocab[\"a\"]");
  auto tok = load(sp_style());
  EXPECT_SELFRL_ERROR(tok->encode("ok \xFF", false), "not valid UTF-8 at byte 3");
  EXPECT_SELFRL_ERROR(tok->decode({4, 999}), "token id 999 is not in the vocabulary");
}

TEST(TokenizerFromPretrained, ReadsConfigAndSpecialTokens) {
  TempDir d;
  EXPECT_SELFRL_ERROR(tokenizer::Tokenizer::from_pretrained(d.path()), "no tokenizer.json or tokenizer.model");
  write_bytes(d.file("tokenizer.json"), sp_style().dump());
  write_bytes(d.file("special_tokens_map.json"), R"({"pad_token": "</s>"})");
  write_bytes(d.file("tokenizer_config.json"),
              R"({"bos_token": {"content": "<s>", "__type": "AddedToken"}, "eos_token": "</s>",
                  "chat_template": [{"name": "default",
                    "template": "{{ bos_token }}{% for m in messages %}[{{ m.content }}]{% endfor %}"}]})");
  auto tok = tokenizer::Tokenizer::from_pretrained(d.path());
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->pad_id(), 2);
  EXPECT_EQ(tok->apply_chat_template({{"user", "ab"}}), "<s>[ab]");
  const auto batch = tok->encode_batch({"ab", "abc", "", "ab ab"}, false, 3);
  EXPECT_EQ(batch, (std::vector<Ids>{{8}, {3, 4, 9}, {}, {8, 8}}));
  write_bytes(d.file("tokenizer_config.json"), "{\"chat_template\": 5}");
  EXPECT_SELFRL_ERROR(tokenizer::Tokenizer::from_pretrained(d.path()), "tokenizer_config.json",
                      "chat_template must be");
}

TEST(TokenizerSentencePiece, TrainsAndLoadsInProcess) {
  SELFRL_SKIP_WITHOUT_SENTENCEPIECE();
  TempDir d;
  std::vector<std::string> lines;
  for (int a = 0; a < 40; ++a)
    for (int b = 0; b < 10; ++b)
      lines.push_back(std::to_string(a) + " + " + std::to_string(b) + " = " + std::to_string(a + b));
  tokenizer::SentencePieceTrainOptions opt;
  opt.vocab_size = 40;
  const std::string model = tokenizer::train_sentencepiece(lines, d.file("tok"), opt);
  EXPECT_EQ(model, d.file("tok.model"));
  std::filesystem::create_directories(d.file("m"));
  std::filesystem::copy_file(model, d.file("m/tokenizer.model"));
  auto tok = tokenizer::Tokenizer::from_pretrained(d.file("m"));
  const auto ids = tok->encode("12 + 7 = 19", true);
  ASSERT_TRUE(tok->bos_id().has_value());
  EXPECT_EQ(ids.front(), *tok->bos_id());
  EXPECT_EQ(tok->decode(ids, true), "12 + 7 = 19");
  EXPECT_LE(tok->vocab_size(), 40);
  opt.model_type = "wordpiece";
  EXPECT_SELFRL_ERROR(tokenizer::train_sentencepiece(lines, d.file("t2"), opt), "model_type \"wordpiece\"");
}

}  // namespace
}  // namespace selfrl::test
