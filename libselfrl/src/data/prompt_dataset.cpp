// Prompt datasets: JSONL → tokenized prompts with file:line errors.
#include "selfrl/data/prompt_dataset.h"

#include "selfrl/core/error.h"
#include "selfrl/io/jsonl.h"

namespace selfrl::data {

std::vector<int64_t> to_ids64(const std::vector<int>& ids) { return {ids.begin(), ids.end()}; }
std::vector<int> to_ids32(const std::vector<int64_t>& ids) {
  std::vector<int> out;
  out.reserve(ids.size());
  for (auto i : ids) out.push_back(static_cast<int>(i));
  return out;
}

std::vector<int64_t> encode_messages(const tokenizer::Tokenizer& tok,
                                     const std::vector<tokenizer::ChatMessage>& messages,
                                     const PromptOptions& options) {
  const std::string text = tok.apply_chat_template(messages, true, options.fallback_chat_format);
  // The rendered template already holds the special tokens (bos etc.).
  return to_ids64(tok.encode(text, false));
}

std::vector<int64_t> encode_prompt(const tokenizer::Tokenizer& tok, const std::string& text,
                                   const PromptOptions& options) {
  if (!options.chat_template) return to_ids64(tok.encode(text, true));
  std::vector<tokenizer::ChatMessage> messages;
  if (!options.system_prompt.empty()) messages.push_back({"system", options.system_prompt});
  messages.push_back({"user", text});
  return encode_messages(tok, messages, options);
}

namespace {
std::string scalar_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}
}  // namespace

std::vector<Prompt> load_prompts(const std::string& path, const tokenizer::Tokenizer* tok,
                                 const PromptOptions& options) {
  io::JsonlReader reader(path);
  std::vector<Prompt> out;
  nlohmann::json row;
  while (reader.next(row)) {
    if (options.max_samples > 0 && static_cast<int64_t>(out.size()) >= options.max_samples) break;
    Prompt p;
    p.where = reader.where();
    if (row.contains(options.prompt_field) && row[options.prompt_field].is_string()) {
      p.text = row[options.prompt_field].get<std::string>();
      if (!tok)
        throw Error("a text prompt needs a tokenizer")
            .at(p.where)
            .hint("set `model` to a directory with tokenizer files");
      p.ids = encode_prompt(*tok, p.text, options);
    } else if (row.contains("messages") && row["messages"].is_array()) {
      if (!tok) throw Error("chat messages need a tokenizer").at(p.where);
      std::vector<tokenizer::ChatMessage> msgs;
      for (const auto& m : row["messages"]) {
        if (!m.is_object() || !m.contains("role") || !m.contains("content"))
          throw Error("each message needs \"role\" and \"content\"").at(p.where);
        if (!m["role"].is_string())
          throw Error("a message's \"role\" must be a string (system, user or assistant), got " + m["role"].dump())
              .at(p.where);
        msgs.push_back({m["role"].get<std::string>(), scalar_text(m["content"])});
      }
      if (!msgs.empty() && msgs.back().role == "assistant") msgs.pop_back();
      if (msgs.empty()) throw Error("\"messages\" holds no user message").at(p.where);
      p.text = msgs.back().content;
      p.ids = encode_messages(*tok, msgs, options);
    } else if (row.contains("input_ids") && row["input_ids"].is_array()) {
      for (const auto& v : row["input_ids"]) {
        if (!v.is_number_integer()) throw Error("\"input_ids\" must hold integers").at(p.where);
        p.ids.push_back(v.get<int64_t>());
      }
      if (tok) p.text = tok->decode(to_ids32(p.ids), true);
    } else {
      throw Error("row has no \"" + options.prompt_field + "\" (text), \"messages\" (chat) or \"input_ids\" field")
          .at(p.where)
          .hint("every row needs one of them; keys present: " + [&] {
            std::string k;
            for (auto it = row.begin(); it != row.end(); ++it) k += (k.empty() ? "" : ", ") + it.key();
            return k.empty() ? std::string("none") : k;
          }());
    }
    // An empty or too long prompt (`what`: "prompt" or the vote prompt) is an error naming the row.
    auto check_length = [&](const std::vector<int64_t>& ids, const std::string& what, const std::string& hint) {
      if (ids.empty()) throw Error(what + " is empty after tokenization").at(p.where);
      if (options.max_prompt_length > 0 && static_cast<int64_t>(ids.size()) > options.max_prompt_length)
        throw Error(what + " is " + std::to_string(ids.size()) + " tokens, longer than the " +
                    std::to_string(options.max_prompt_length) +
                    " the context leaves (max_position_embeddings − max_completion_length)")
            .at(p.where)
            .hint(hint);
    };
    check_length(p.ids, "prompt", "shorten the prompt, lower max_completion_length, or drop the row");
    if (!options.vote_prompt_field.empty() && row.contains(options.vote_prompt_field) &&
        !row[options.vote_prompt_field].is_null()) {
      const auto& v = row[options.vote_prompt_field];
      if (!v.is_string())
        throw Error("\"" + options.vote_prompt_field + "\" must be a string (a paraphrase of the prompt), got " +
                    v.dump())
            .at(p.where)
            .hint("data.vote_prompt_field names the field; drop it or write the text");
      if (!tok) throw Error("a vote prompt needs a tokenizer").at(p.where);
      p.vote_ids = encode_prompt(*tok, v.get<std::string>(), options);
      check_length(p.vote_ids, "vote prompt (\"" + options.vote_prompt_field + "\")",
                   "shorten it, lower max_completion_length, or drop the field from the row");
    }
    if (row.contains(options.answer_field) && !row[options.answer_field].is_null())
      p.answer = scalar_text(row[options.answer_field]);
    if (row.contains(options.category_field) && !row[options.category_field].is_null())
      p.category = scalar_text(row[options.category_field]);
    p.row = row;
    out.push_back(std::move(p));
  }
  if (out.empty())
    throw Error("dataset is empty (no JSON rows)")
        .at(path + ":1")
        .hint("write one JSON object per line, e.g. {\"prompt\": \"2+3=\", \"answer\": \"5\"}");
  return out;
}

}  // namespace selfrl::data
