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
      if (!rec.contains("input_ids") || !rec["input_ids"].is_array())
        throw Error("record has no \"input_ids\" array").at(in.where());
      std::vector<int> ids;
      try {
        ids = rec["input_ids"].get<std::vector<int>>();
      } catch (const nlohmann::json::exception&) {
        throw Error("\"input_ids\" must hold integers").at(in.where());
      }
      try {
        out.write({{"text", tok->decode(ids, p.get_flag("--skip-special-tokens"))}});
      } catch (Error& e) {
        throw e.at(in.where());
      }
    }
    out.close();
    return 0;
  }

  const bool chat = p.get_flag("--chat");
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
