// Tokenizer base: from_pretrained() dispatch, tokenizer_config.json / special_tokens_map.json,
// batch encoding and chat templates.
#include "selfrl/tokenizer/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "selfrl/core/error.h"
#include "selfrl/io/file_util.h"
#include "selfrl/tokenizer/hf_tokenizer.h"
#include "selfrl/tokenizer/sentencepiece_tokenizer.h"

namespace selfrl::tokenizer {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// A special token is either "text" or an AddedToken dict {"content": "text", ...}.
std::optional<std::string> token_string(const json& j, const std::string& key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  const json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  throw Error("\"" + key + "\" must be a string or {\"content\": ...}, got " + v.dump());
}

}  // namespace

TokenizerConfig read_tokenizer_config(const std::string& dir) {
  TokenizerConfig c;
  const std::string map_path = dir + "/special_tokens_map.json";
  if (fs::exists(map_path)) {
    const json m = io::read_json_file(map_path);
    try {
      c.bos_token = token_string(m, "bos_token");
      c.eos_token = token_string(m, "eos_token");
      c.pad_token = token_string(m, "pad_token");
      c.unk_token = token_string(m, "unk_token");
    } catch (Error& e) {
      throw e.at(map_path);
    }
  }
  const std::string path = dir + "/tokenizer_config.json";
  // A dangling symlink is not "no file": the config it should have named would be silently lost.
  if (fs::is_symlink(fs::symlink_status(path)) && !fs::exists(path))
    throw Error("tokenizer_config.json is a symlink to a file that does not exist (" + fs::read_symlink(path).string() +
                ")")
        .at(path)
        .hint("restore the file it points to, or remove the link");
  if (!fs::exists(path)) return c;
  c.source = path;
  const json j = io::read_json_file(path);
  try {
    SELFRL_CHECK(j.is_object(), "the file must hold a JSON object");
    // tokenizer_config.json wins over special_tokens_map.json where both name a token.
    if (auto v = token_string(j, "bos_token")) c.bos_token = v;
    if (auto v = token_string(j, "eos_token")) c.eos_token = v;
    if (auto v = token_string(j, "pad_token")) c.pad_token = v;
    if (auto v = token_string(j, "unk_token")) c.unk_token = v;
    for (const char* key : {"add_bos_token", "add_eos_token"}) {
      if (!j.contains(key) || j[key].is_null()) continue;
      if (!j[key].is_boolean()) throw Error(std::string("'") + key + "' must be true or false, got " + j[key].dump());
      (std::string(key) == "add_bos_token" ? c.add_bos_token : c.add_eos_token) = j[key].get<bool>();
    }
    // transformers' default for clean_up_tokenization_spaces has changed over versions; we take
    // the file's value and false when absent (transformers >= 4.45).
    c.clean_up_tokenization_spaces = j.value("clean_up_tokenization_spaces", false);
    if (j.contains("chat_template") && !j["chat_template"].is_null()) {
      const json& t = j["chat_template"];
      if (t.is_string()) {
        c.chat_template = t.get<std::string>();
      } else if (t.is_array()) {
        // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
        for (const auto& e : t) {
          if (e.value("name", std::string()) == "default") c.chat_template = e.at("template").get<std::string>();
        }
        SELFRL_CHECK(c.chat_template.has_value(), "chat_template is a list without a \"default\" entry");
      } else {
        throw Error("chat_template must be a string or a list of {name, template}");
      }
    }
  } catch (Error& e) {
    throw e.at(path);
  } catch (const json::exception& e) {
    throw Error(std::string("unexpected structure: ") + e.what()).at(path);
  }
  return c;
}

void Tokenizer::resolve_special_ids() {
  auto resolve = [&](const std::optional<std::string>& tok) -> std::optional<int> {
    if (!tok) return std::nullopt;
    return token_to_id(*tok);
  };
  if (config_.bos_token) bos_id_ = resolve(config_.bos_token);
  if (config_.eos_token) eos_id_ = resolve(config_.eos_token);
  if (config_.pad_token) pad_id_ = resolve(config_.pad_token);
}

bool has_tokenizer_files(const std::string& dir) {
  return fs::exists(dir + "/tokenizer.json") || fs::exists(dir + "/tokenizer.model");
}

std::unique_ptr<Tokenizer> Tokenizer::from_pretrained(const std::string& dir) {
  if (!fs::is_directory(dir))
    throw Error("tokenizer directory does not exist")
        .at(dir)
        .hint("pass a model directory holding tokenizer.json or tokenizer.model");
  TokenizerConfig config = read_tokenizer_config(dir);
  if (fs::exists(dir + "/tokenizer.json")) return HfTokenizer::load(dir + "/tokenizer.json", std::move(config));
  if (fs::exists(dir + "/tokenizer.model"))
    return SentencePieceTokenizer::load(dir + "/tokenizer.model", std::move(config));
  throw Error("no tokenizer.json or tokenizer.model found")
      .at(dir)
      .hint("copy the tokenizer files of the model into this directory");
}

// Ids the tokenizer has no token for add nothing, as in HF tokenizers' decode: those outside
// [0, vocab_size) (a model's extra embedding rows) and those in a gap of a tokenizer.json whose
// ids are not contiguous (vocab_size is the largest id + 1). Generated text is never lost to an
// id the model was free to sample.
std::string Tokenizer::decode_generated(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  std::vector<int> known;
  known.reserve(ids.size());
  const int64_t vocab = vocab_size();
  for (auto i : ids)
    if (i >= 0 && i < vocab) known.push_back(static_cast<int>(i));
  try {
    return decode(known, skip_special_tokens);
  } catch (const Error&) {
    std::vector<int> kept;
    kept.reserve(known.size());
    for (int id : known) {
      try {
        id_to_token(id);
        kept.push_back(id);
      } catch (const Error&) {}
    }
    if (kept.size() == known.size()) throw;  // not an unknown id: a real error
    return decode(kept, skip_special_tokens);
  }
}

std::vector<std::vector<int>> Tokenizer::encode_batch(const std::vector<std::string>& texts, bool add_special_tokens,
                                                      unsigned num_threads) const {
  std::vector<std::vector<int>> out(texts.size());
  if (num_threads == 0) num_threads = std::max(1u, std::thread::hardware_concurrency());
  num_threads = static_cast<unsigned>(std::min<size_t>(num_threads, texts.size()));
  if (num_threads <= 1) {
    for (size_t i = 0; i < texts.size(); ++i) out[i] = encode(texts[i], add_special_tokens);
    return out;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  std::vector<std::exception_ptr> errors(num_threads);
  for (unsigned t = 0; t < num_threads; ++t) {
    workers.emplace_back([&, t]() {
      try {
        for (size_t i = next++; i < texts.size(); i = next++) out[i] = encode(texts[i], add_special_tokens);
      } catch (...) {
        errors[t] = std::current_exception();
        next = texts.size();
      }
    });
  }
  for (auto& w : workers) w.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

std::string Tokenizer::apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                           const std::string& fallback_format) const {
  std::string source;
  std::string name = "chat_template";
  if (config_.chat_template) {
    source = *config_.chat_template;
    if (!config_.source.empty()) name = config_.source + ": chat_template";
  } else if (!fallback_format.empty()) {
    source = builtin_chat_template(fallback_format);
    name = "built-in format " + fallback_format;
  } else {
    throw Error("the tokenizer has no chat_template")
        .at(config_.source.empty() ? "tokenizer_config.json" : config_.source)
        .hint("choose a built-in format: chatml, llama3 or plain");
  }
  ChatTemplate tpl(source, name);
  ChatTemplateOptions opt;
  opt.add_generation_prompt = add_generation_prompt;
  opt.bos_token = config_.bos_token.value_or("");
  opt.eos_token = config_.eos_token.value_or("");
  opt.pad_token = config_.pad_token.value_or("");
  opt.unk_token = config_.unk_token.value_or("");
  return tpl.render(messages, opt);
}

}  // namespace selfrl::tokenizer
