// Hostile tokenizer.json files and decode inputs (issue 15): each must end in a selfrl::Error
// naming the file and the limit that was hit, never a crash, a hang or "internal error: stoi".
// The limits: JSON nesting 256 (io::check_json_depth), Sequence components 64 levels, token ids
// <= 16,777,215 with at most 1,048,576 ids left without a token, text growth through
// Replace/Prepend chains 16x + 1 MiB, PCRE2 match limit 10,000,000 steps.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "selfrl/io/model_config.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/tokenizer/hf_tokenizer.h"
#include "test_util.h"

namespace selfrl::test {
namespace {

using json = nlohmann::json;
using tokenizer::HfTokenizer;
using Ids = std::vector<int>;

const std::string kMeta = "\xE2\x96\x81";  // ▁

// A small sentencepiece-style BPE tokenizer (ids 0..12, all used).
json small() {
  json vocab = {{"<unk>", 0}, {"<s>", 1},        {"</s>", 2}, {kMeta, 3},     {"a", 4},       {"b", 5}, {"c", 6},
                {"ab", 7},    {kMeta + "ab", 8}, {"bc", 9},   {"<0xC9>", 10}, {"<0x91>", 11}, {"z", 12}};
  return {{"added_tokens", json::array({{{"id", 0}, {"content", "<unk>"}, {"special", true}, {"normalized", false}},
                                        {{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
                                        {{"id", 2}, {"content", "</s>"}, {"special", true}, {"normalized", false}}})},
          {"normalizer", nullptr},
          {"pre_tokenizer", nullptr},
          {"post_processor", nullptr},
          {"decoder",
           {{"type", "Sequence"},
            {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", kMeta}}}, {"content", " "}},
                                      {{"type", "ByteFallback"}},
                                      {{"type", "Fuse"}}})}}},
          {"model",
           {{"type", "BPE"},
            {"unk_token", "<unk>"},
            {"fuse_unk", true},
            {"byte_fallback", true},
            {"vocab", vocab},
            {"merges", json::array({"b c", "a b", kMeta + " ab"})}}}};
}

std::unique_ptr<HfTokenizer> load(const json& j) { return HfTokenizer::from_json_string(j.dump(), {}, "test.json"); }
std::unique_ptr<HfTokenizer> load_text(const std::string& text) {
  return HfTokenizer::from_json_string(text, {}, "test.json");
}

// A Sequence component nested `depth` levels around `leaf`, as JSON text (built without
// recursion, as a hostile file would be).
std::string nested_sequence(const std::string& key, int depth, const std::string& leaf) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "{\"type\": \"Sequence\", \"" + key + "\": [";
  s += leaf;
  for (int i = 0; i < depth; ++i) s += "]}";
  return s;
}

// small() with `field` replaced by raw JSON text.
std::string with_field(const std::string& field, const std::string& raw) {
  json j = small();
  j[field] = "@@";
  std::string text = j.dump();
  const size_t at = text.find("\"@@\"");
  return text.replace(at, 4, raw);
}

struct Component {
  const char* field;  // tokenizer.json key
  const char* key;    // the Sequence's list
  const char* leaf;
};
const Component kComponents[] = {{"pre_tokenizer", "pretokenizers", R"({"type": "Metaspace"})"},
                                 {"normalizer", "normalizers", R"({"type": "NFC"})"},
                                 {"decoder", "decoders", R"({"type": "Fuse"})"},
                                 {"post_processor", "processors", R"({"type": "ByteLevel"})"}};

TEST(HostileTokenizer, DeeplyNestedJsonIsRejectedBeforeParsing) {
  // 30,000 nested Sequences overflowed the stack (finding 1); the raw-text scan stops them first.
  for (const auto& c : kComponents) {
    SCOPED_TRACE(c.field);
    EXPECT_SELFRL_ERROR(load_text(with_field(c.field, nested_sequence(c.key, 30000, c.leaf))),
                        "test.json:1:", "JSON nests deeper than the limit of 256 levels");
  }
  // Deep nesting anywhere in the file, even where nothing reads it.
  EXPECT_SELFRL_ERROR(load_text(with_field("extra", std::string(30000, '[') + std::string(30000, ']'))),
                      "test.json:1:", "JSON nests deeper than the limit of 256 levels");
  // Brackets inside strings do not count.
  json j = small();
  j["extra"] = std::string(30000, '[');
  EXPECT_NO_THROW(load(j));
}

TEST(HostileTokenizer, SequenceNestingLimit) {
  // 100 levels is within the JSON limit (2 JSON levels per Sequence) but past the pipeline's 64.
  for (const auto& c : kComponents) {
    SCOPED_TRACE(c.field);
    EXPECT_SELFRL_ERROR(load_text(with_field(c.field, nested_sequence(c.key, 100, c.leaf))), "test.json",
                        std::string(c.field) + ": Sequence nests deeper than the limit of 64 levels");
    EXPECT_NO_THROW(load_text(with_field(c.field, nested_sequence(c.key, 64, c.leaf))));
  }
  auto tok = load_text(with_field("pre_tokenizer", nested_sequence("pretokenizers", 64, R"({"type": "Metaspace"})")));
  EXPECT_EQ(tok->encode("ab", false), (Ids{8}));
  EXPECT_SELFRL_ERROR(load_text(with_field("normalizer", R"({"type": "Sequence", "normalizers": "NFC"})")),
                      "normalizer Sequence: \"normalizers\" must be an array");
}

TEST(HostileTokenizer, ByteFallbackPiecesThatAreNotHexAreOrdinaryTokens) {
  // "<0xZZ>" made the ByteFallback decoder throw "internal error: stoi" (finding 4).
  json j = small();
  j["model"]["vocab"]["<0xZZ>"] = 13;
  j["model"]["vocab"]["<0x-1>"] = 14;
  j["model"]["vocab"]["<0x 1>"] = 15;
  j["model"]["vocab"]["<0x+F>"] = 16;
  j["model"]["vocab"]["<0x4a>"] = 17;  // lower-case hex is a byte, as in HF
  auto tok = load(j);
  EXPECT_EQ(tok->decode({13}), "<0xZZ>");
  EXPECT_EQ(tok->decode({4, 14, 15, 16}), "a<0x-1><0x 1><0x+F>");
  EXPECT_EQ(tok->decode({17, 10, 11}), "J\xC9\x91");
}

TEST(HostileTokenizer, TokenIdsBeyondTheLimitAreRejected) {
  // id 2147483647 made pieces.resize(id + 1) throw length_error / bad_alloc (finding 4).
  json j = small();
  j["model"]["vocab"]["big"] = 2147483647;
  EXPECT_SELFRL_ERROR(load(j), "test.json: model.vocab[\"big\"]: id 2147483647 is larger than the limit of 16777215");
  j = small();
  j["model"]["vocab"]["big"] = 16777216;
  EXPECT_SELFRL_ERROR(load(j), "model.vocab[\"big\"]: id 16777216 is larger than the limit of 16777215");
  j = small();
  j["model"]["vocab"]["big"] = 18446744073709551615ull;
  EXPECT_SELFRL_ERROR(load(j), "model.vocab[\"big\"]: id 18446744073709551615 is larger than the limit");
  j = small();
  j["model"]["vocab"]["neg"] = -5;
  EXPECT_SELFRL_ERROR(load(j), "model.vocab[\"neg\"] must be a non-negative integer id, got -5");
  j = small();
  j["model"]["vocab"]["half"] = 13.5;
  EXPECT_SELFRL_ERROR(load(j), "model.vocab[\"half\"] must be a non-negative integer id, got 13.5");
  j = small();
  j["added_tokens"].push_back({{"id", 2147483647}, {"content", "<big>"}, {"special", true}});
  EXPECT_SELFRL_ERROR(load(j), "test.json: added_tokens[3] (\"<big>\").id: id 2147483647 is larger than the limit",
                      "below 2^24");
  j = small();
  j["added_tokens"].push_back({{"id", "7"}, {"content", "<str>"}});
  EXPECT_SELFRL_ERROR(load(j), "added_tokens[3] (\"<str>\").id must be a non-negative integer id, got \"7\"");
  j = small();
  j["added_tokens"].push_back({{"content", 5}});
  EXPECT_SELFRL_ERROR(load(j), "added_tokens[3] must be an object with a string \"content\"");
  // A long token name is cut in the message.
  j = small();
  j["model"]["vocab"][std::string(5000, 'x')] = -1;
  try {
    load(j);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_LT(std::string(e.what()).size(), 400u) << e.what();
  }
}

TEST(HostileTokenizer, SparseIdsPastTheGapLimitAreRejected) {
  // 13 tokens and one at 5,000,000: 4,999,987 ids without a token (limit 1,048,576).
  json j = small();
  j["model"]["vocab"]["far"] = 5000000;
  EXPECT_SELFRL_ERROR(load(j), "test.json: model.vocab[\"far\"] = 5000000, but the file defines only 17 tokens",
                      "more than 1048576 ids below it would have no token");
  j = small();
  j["added_tokens"].push_back({{"id", 2000000}, {"content", "<far>"}, {"special", true}});
  EXPECT_SELFRL_ERROR(load(j), "added_tokens[3] (\"<far>\").id = 2000000", "more than 1048576 ids");
  // Within the limit: loads, with vocab_size = largest id + 1.
  j = small();
  j["model"]["vocab"]["near"] = 1000000;
  EXPECT_EQ(load(j)->vocab_size(), 1000001);
}

TEST(HostileTokenizer, VocabularyGapsDecodePredictably) {
  json j = small();
  j["model"]["vocab"]["hole"] = 1000;  // ids 13..999 have no token
  auto tok = load(j);
  EXPECT_EQ(tok->vocab_size(), 1001);
  EXPECT_EQ(tok->decode({4, 1000}), "ahole");
  EXPECT_SELFRL_ERROR(tok->decode({4, 500}), "test.json: token id 500 is not in the vocabulary",
                      "vocab_size 1001, but no token of this tokenizer has id 500");
  EXPECT_SELFRL_ERROR(tok->decode({1001}), "test.json: token id 1001 is not in the vocabulary (size 1001)");
  EXPECT_SELFRL_ERROR(tok->id_to_token(500), "token id 500 is not in the vocabulary");
  // Generated ids: unknown ones (gaps, past vocab_size, negative) add nothing, as in HF.
  EXPECT_EQ(tok->decode_generated({4, 500, 1000, 5000, -3, 5}), "aholeb");
  EXPECT_EQ(tok->decode_generated({13, 999}), "");
}

TEST(HostileTokenizer, PostProcessorIdsMustBeKnown) {
  json j = small();
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                 {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                         {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {99999}}, {"tokens", {"<s>"}}}}}}};
  EXPECT_SELFRL_ERROR(load(j), "test.json: post_processor: special token id 99999 is not in the vocabulary");
  j["post_processor"]["special_tokens"]["<s>"]["ids"] = {2147483648ll};
  EXPECT_SELFRL_ERROR(load(j), "special token \"<s>\": id 2147483648 is not a non-negative integer token id");
  j["post_processor"]["special_tokens"]["<s>"]["ids"] = {1.5};
  EXPECT_SELFRL_ERROR(load(j), "id 1.5 is not a non-negative integer token id");
  j["post_processor"] = {{"type", "BertProcessing"}, {"cls", {"<s>", -1}}, {"sep", {"</s>", 2}}};
  EXPECT_SELFRL_ERROR(load(j), "post_processor BertProcessing: cls: id -1 is not a non-negative integer token id");
}

TEST(HostileTokenizer, DecoderAndPreTokenizerFieldsAreChecked) {
  // Strip with an empty content and start -1 looped 2^64 times.
  json j = small();
  j["decoder"] = {{"type", "Strip"}, {"content", ""}, {"start", -1}, {"stop", 0}};
  EXPECT_SELFRL_ERROR(load(j), "Strip decoder: \"content\" must be a single character");
  j["decoder"] = {{"type", "Strip"}, {"content", " "}, {"start", -1}, {"stop", 0}};
  EXPECT_SELFRL_ERROR(load(j), "Strip decoder: \"start\" must be a non-negative integer, got -1");
  j["decoder"] = {{"type", "Strip"}, {"content", " "}, {"start", 1000000000}, {"stop", 1000000000}};
  EXPECT_EQ(load(j)->decode({3, 4}), "▁a");  // strips what is there, then stops
  // A Metaspace replacement of several characters (" " -> "  " doubled the text per step).
  j = small();
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "  "}};
  EXPECT_SELFRL_ERROR(load(j), "Metaspace pre-tokenizer: \"replacement\" must be a single character, got \"  \"");
  j["pre_tokenizer"] = nullptr;
  j["decoder"] = {{"type", "Metaspace"}, {"replacement", 7}};
  EXPECT_SELFRL_ERROR(load(j), "Metaspace decoder: \"replacement\" must be a single character, got 7");
}

TEST(HostileTokenizer, GrowingReplaceChainsAreBounded) {
  // 40 Replace("a" -> "aa") steps would make "a" 2^40 bytes long.
  json norms = json::array(), decs = json::array();
  for (int i = 0; i < 40; ++i) {
    norms.push_back({{"type", "Replace"}, {"pattern", {{"String", "a"}}}, {"content", "aa"}});
    decs.push_back({{"type", "Replace"}, {"pattern", {{"Regex", "a"}}}, {"content", "aa"}});
  }
  json j = small();
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", norms}};
  auto tok = load(j);
  EXPECT_SELFRL_ERROR(tok->encode("a", false), "the Replace normalizer made the text longer than the limit of 1048592",
                      "16 x the input + 1048576");
  j = small();
  j["decoder"] = {{"type", "Sequence"}, {"decoders", decs}};
  tok = load(j);
  EXPECT_SELFRL_ERROR(tok->decode({4}), "the Replace decoder made the text longer than the limit");
  // A Prepend chain.
  json pre = json::array();
  for (int i = 0; i < 60; ++i) pre.push_back({{"type", "Prepend"}, {"prepend", std::string(100000, 'z')}});
  j = small();
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", pre}};
  EXPECT_SELFRL_ERROR(load(j)->encode("a", false), "the Prepend normalizer made the text longer than the limit");
  // Real growth (" " -> "▁": 3x) is far inside the limit.
  j = small();
  j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kMeta}};
  EXPECT_EQ(load(j)->encode(std::string(100000, ' '), false).size(), 100000u);
}

TEST(HostileTokenizer, CatastrophicRegexStopsAtTheMatchLimit) {
  json j = small();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(a+)+$"}}}, {"behavior", "Isolated"}};
  auto tok = load(j);
  EXPECT_SELFRL_ERROR(tok->encode(std::string(5000, 'a') + "b", false), "regex /(a+)+$/ failed at byte 0",
                      "the match limit of 10000000 backtracking steps", "backtracks catastrophically");
  EXPECT_EQ(tok->encode("ab", false), (Ids{7}));  // fine on text that does not backtrack
}

// ---- the selfrl program -------------------------------------------------------------------

std::string shell_quote(const std::string& s) { return "'" + s + "'"; }

TEST(HostileTokenizerCli, DecodeReportsIdsAsGivenWithLineAndPosition) {
  TempDir d;
  std::filesystem::create_directories(d.file("tok"));
  json j = small();
  j["model"]["vocab"]["hole"] = 40;  // ids 13..39 have no token
  write_bytes(d.file("tok/tokenizer.json"), j.dump());
  auto decode = [&](const std::string& lines) {
    write_bytes(d.file("ids.jsonl"), lines);
    return run_command(selfrl_cli() + " tokenize --tokenizer " + shell_quote(d.file("tok")) + " --decode --in " +
                       shell_quote(d.file("ids.jsonl")));
  };
  auto r = decode("{\"input_ids\": [4, 40]}\n");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"text\":\"ahole\""), std::string::npos) << r.output;

  // 99999999999 was reported as 1215752191 (wrapped to 32 bits).
  r = decode("{\"input_ids\": [4, 5]}\n{\"input_ids\": [4, 99999999999]}\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("ids.jsonl:2: input_ids[1]: token id 99999999999 is not in the vocabulary (size 41)"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("1215752191"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;

  // 104.7 and true were read as 104 and 1.
  r = decode("{\"input_ids\": [4, 104.7]}\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("ids.jsonl:1: input_ids[1]: \"input_ids\" must hold integers, got 104.7"), std::string::npos)
      << r.output;
  r = decode("{\"input_ids\": [4]}\n{\"input_ids\": [true]}\n");
  EXPECT_NE(r.output.find("ids.jsonl:2: input_ids[0]: \"input_ids\" must hold integers, got true"), std::string::npos)
      << r.output;
  r = decode("{\"input_ids\": [-1]}\n");
  EXPECT_NE(r.output.find("ids.jsonl:1: input_ids[0]: token id -1 is not in the vocabulary"), std::string::npos)
      << r.output;
  // Past 2^64 the JSON reader has already made the number a double.
  r = decode("{\"input_ids\": [99999999999999999999999]}\n");
  EXPECT_NE(r.output.find("input_ids[0]: \"input_ids\" must hold integers, got 9.999999999999999e+22"),
            std::string::npos)
      << r.output;
  // An id in a gap of the vocabulary: the position, the file and the id.
  r = decode("{\"input_ids\": [4, 5, 20]}\n");
  EXPECT_NE(r.output.find("ids.jsonl:1: input_ids[2]: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("tokenizer.json: token id 20 is not in the vocabulary (vocab_size 41, but no token"),
            std::string::npos)
      << r.output;
}

TEST(HostileTokenizerCli, GenerateWithVocabularyGapsKeepsTheOutput) {
  // The model samples from 64 ids; the tokenizer has ids 0..12 and 40: most samples are ids
  // without a token. generate used to fail after generating everything, and the output was lost.
  TempDir d;
  const std::string model = d.file("model");
  std::filesystem::create_directories(model);
  json cfg = {{"architectures", {"LlamaForCausalLM"}},
              {"model_type", "llama"},
              {"vocab_size", 64},
              {"hidden_size", 16},
              {"intermediate_size", 32},
              {"num_hidden_layers", 1},
              {"num_attention_heads", 2},
              {"num_key_value_heads", 1},
              {"max_position_embeddings", 64},
              {"rms_norm_eps", 1e-5},
              {"rope_theta", 10000.0},
              {"tie_word_embeddings", false},
              {"bos_token_id", 1},
              {"eos_token_id", 2},
              {"initializer_range", 0.5}};
  model::CausalLM::from_config(io::ModelConfig::from_json(cfg, "fixture"), 3)->save_pretrained(model);
  json j = small();
  j["model"]["vocab"]["hole"] = 40;
  write_bytes(model + "/tokenizer.json", j.dump());
  write_bytes(d.file("in.jsonl"), "{\"prompt\": \"ab\"}\n{\"prompt\": \"abc\"}\n");
  const auto r = run_command(selfrl_cli() + " generate --model " + shell_quote(model) + " --in " +
                             shell_quote(d.file("in.jsonl")) + " --out " + shell_quote(d.file("out.jsonl")) +
                             " --num-samples 4 --max-new-tokens 12 --temperature 1 --ignore-eos --seed 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(d.file("out.jsonl"));
  int lines = 0, gap_ids = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    const json rec = json::parse(line);
    for (const auto& c : rec.at("completions")) {
      EXPECT_TRUE(c.at("text").is_string());
      for (int id : c.at("token_ids")) gap_ids += (id >= 13 && id < 40) || id > 40;
    }
  }
  EXPECT_EQ(lines, 2);
  EXPECT_GT(gap_ids, 0) << "the model never sampled an id without a token; the test proves nothing";
}

}  // namespace
}  // namespace selfrl::test
