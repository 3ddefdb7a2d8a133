// `selfrl tokenize`: text -> {"input_ids": [...]} lines (or back with --decode), through a model
// directory's tokenizer, optionally wrapping each text as a user message in its chat template.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "command.h"
#include "selfrl/core/error.h"
#include "selfrl/io/jsonl.h"
#include "selfrl/tokenizer/tokenizer.h"

namespace selfrl::cli {
namespace {

// The ids of one --decode record: JSON integers in [0, vocab_size), each error naming the line
// and the position, and the number as the file spells it (99999999999 is not wrapped to an int;
// 104.7 and true are not truncated to ids).
std::vector<int> decode_ids(const nlohmann::json& arr, const tokenizer::Tokenizer& tok, const std::string& where) {
  std::vector<int> ids;
  ids.reserve(arr.size());
  const int64_t vocab = tok.vocab_size();
  for (size_t k = 0; k < arr.size(); ++k) {
    const nlohmann::json& v = arr[k];
    const std::string at = detail::concat(where, ": input_ids[", k, "]");
    std::string shown = v.dump();
    if (shown.size() > 40) shown = shown.substr(0, 40) + "...";
    if (!v.is_number_integer())
      throw Error("\"input_ids\" must hold integers, got " + shown).at(at).hint("token ids are whole numbers");
    const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() < static_cast<uint64_t>(vocab)
                                                 : v.get<int64_t>() >= 0 && v.get<int64_t>() < vocab;
    if (!in_range)
      throw Error(detail::concat("token id ", shown, " is not in the vocabulary (size ", vocab, ")"))
          .at(at)
          .hint("the ids must come from this tokenizer");
    ids.push_back(static_cast<int>(v.get<int64_t>()));
  }
  return ids;
}

int run_tokenize(const std::vector<std::string>& args) {
  ArgParser p("selfrl tokenize",
              "Tokenize texts with a model directory's tokenizer (tokenizer.json or tokenizer.model). Writes one "
              "{\"input_ids\": [...]} line per input; with --decode reads {\"input_ids\": [...]} lines and writes "
              "{\"text\": \"...\"}.");
  p.option("--tokenizer", "DIR", "model directory with tokenizer.json or tokenizer.model");
  p.option("--text", "TEXT", "a single text to tokenize");
  p.option("--in", "FILE", "JSONL input: {\"text\": ...} lines, or {\"input_ids\": [...]} with --decode; - is stdin");
  p.option("--out", "FILE", "JSONL output (default: stdout)", std::string("-"));
  p.flag("--chat", "render each text as a user message through the chat template, with the generation prompt");
  p.option("--chat-format", "NAME", "built-in chat format when the tokenizer has no template: chatml, llama3, plain");
  p.flag("--add-special-tokens", "apply the post-processor (e.g. Llama-2's <s>); ignored with --chat");
  p.flag("--decode", "decode ids back to text");
  p.flag("--skip-special-tokens", "with --decode: drop special tokens");
  if (!p.parse(args)) return 0;

  const auto tok = tokenizer::Tokenizer::from_pretrained(p.get("--tokenizer"));
  const bool has_text = p.has("--text"), has_in = p.has("--in");
  if (has_text == has_in)
    throw Error("give exactly one of --text and --in").hint("selfrl tokenize --tokenizer DIR --text 'hello'");
  io::JsonlWriter out(p.get("--out"));

  if (p.get_flag("--decode")) {
    SELFRL_CHECK(has_in, "--decode reads {\"input_ids\": [...]} lines from --in");
    io::JsonlReader in(p.get("--in"));
    nlohmann::json rec;
    while (in.next(rec)) {
      if (!rec.is_object() || !rec.contains("input_ids") || !rec["input_ids"].is_array())
        throw Error("record has no \"input_ids\" array").at(in.where());
      const auto ids = decode_ids(rec["input_ids"], *tok, in.where());
      try {
        out.write({{"text", tok->decode(ids, p.get_flag("--skip-special-tokens"))}});
      } catch (Error& e) {
        // A gap in the vocabulary (an id below vocab_size without a token): name its position.
        for (size_t k = 0; k < ids.size(); ++k) {
          try {
            tok->id_to_token(ids[k]);
          } catch (const Error&) {
            throw e.at(detail::concat(in.where(), ": input_ids[", k, "]"));
          }
        }
        throw e.at(in.where());
      }
    }
    out.close();
    return 0;
  }

  const bool chat = p.get_flag("--chat");
  if (p.has("--chat-format")) check_chat_format_option(p, "--chat-format");
  const std::string chat_format = p.get_opt("--chat-format").value_or("");
  auto encode = [&](const std::string& text) {
    if (chat) {
      // The template already holds the special tokens (bos included), so none are added again.
      const std::string prompt = tok->apply_chat_template({{"user", text}}, true, chat_format);
      return tok->encode(prompt, false);
    }
    return tok->encode(text, p.get_flag("--add-special-tokens"));
  };
  if (has_text) {
    out.write({{"input_ids", encode(p.get("--text"))}});
  } else {
    io::JsonlReader in(p.get("--in"));
    nlohmann::json rec;
    while (in.next(rec)) {
      if (!rec.contains("text") || !rec["text"].is_string())
        throw Error("record has no string \"text\"").at(in.where()).hint("each line must be {\"text\": \"...\"}");
      try {
        out.write({{"input_ids", encode(rec["text"].get<std::string>())}});
      } catch (Error& e) {
        throw e.at(in.where());
      }
    }
  }
  out.close();
  return 0;
}

CommandRegistrar reg({"tokenize", "tokenize texts (or decode ids) with a model's tokenizer", run_tokenize});

}  // namespace
}  // namespace selfrl::cli
