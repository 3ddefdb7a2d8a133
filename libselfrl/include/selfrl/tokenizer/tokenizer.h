// selfrl::tokenizer::Tokenizer: text <-> token ids, exactly as Hugging Face tokenizers does it.
//
// Implementations: HfTokenizer (a tokenizer.json, BPE: byte-level GPT-2/Llama-3/Qwen and
// sentencepiece-style Llama-2/Mistral) and SentencePieceTokenizer (a tokenizer.model through
// libsentencepiece). from_pretrained() picks one from the files in a model directory and reads
// tokenizer_config.json / special_tokens_map.json for the special tokens and the chat template.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "selfrl/tokenizer/chat_template.h"

namespace selfrl::tokenizer {

// What tokenizer_config.json (and special_tokens_map.json) say beyond the tokenizer itself.
struct TokenizerConfig {
  std::optional<std::string> bos_token, eos_token, pad_token, unk_token;
  std::optional<bool> add_bos_token, add_eos_token;
  bool clean_up_tokenization_spaces = false;
  std::optional<std::string> chat_template;  // the "default" one when several are named
  std::string source;                        // the file it came from, for error messages
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // add_special_tokens: apply the post-processor (Llama-2 prepends <s>; Qwen adds nothing),
  // as HF's tokenizer(text) does by default. Throws selfrl::Error on invalid UTF-8.
  virtual std::vector<int> encode(std::string_view text, bool add_special_tokens = true) const = 0;
  // Encodes every text; uses up to `num_threads` threads (0: hardware concurrency).
  std::vector<std::vector<int>> encode_batch(const std::vector<std::string>& texts, bool add_special_tokens = true,
                                             unsigned num_threads = 0) const;
  // HF decode(): invalid byte sequences become U+FFFD; applies clean_up_tokenization_spaces
  // from tokenizer_config.json. Throws selfrl::Error for an id outside the vocabulary.
  virtual std::string decode(const std::vector<int>& ids, bool skip_special_tokens = false) const = 0;
  // Ids a model generated → text: ids outside [0, vocab_size) are dropped (models often have
  // more embedding rows than the tokenizer has tokens, e.g. Qwen2.5: 151,936 vs 151,665, and
  // such an id decodes to nothing in HF tokenizers), then decode().
  std::string decode_generated(const std::vector<int64_t>& ids, bool skip_special_tokens = true) const;
  // The token's string as the vocabulary spells it ("Ġhello", "▁the", "<|im_end|>").
  virtual std::string id_to_token(int id) const = 0;
  virtual std::optional<int> token_to_id(std::string_view token) const = 0;
  // Number of ids, added tokens included (max id + 1).
  virtual int vocab_size() const = 0;
  virtual bool is_special(int id) const = 0;

  std::optional<int> bos_id() const { return bos_id_; }
  std::optional<int> eos_id() const { return eos_id_; }
  std::optional<int> pad_id() const { return pad_id_; }
  const TokenizerConfig& config() const { return config_; }

  // Renders the chat template of tokenizer_config.json, or `fallback_format` ("chatml",
  // "llama3", "plain") when the tokenizer has none. Throws selfrl::Error when neither exists.
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true,
                                  const std::string& fallback_format = "") const;

  // Loads a model directory: tokenizer.json (preferred) or tokenizer.model, plus
  // tokenizer_config.json and special_tokens_map.json when present.
  static std::unique_ptr<Tokenizer> from_pretrained(const std::string& dir);

 protected:
  // Resolves bos/eos/pad ids from config_ through token_to_id().
  void resolve_special_ids();
  TokenizerConfig config_;
  std::optional<int> bos_id_, eos_id_, pad_id_;
};

// Whether `dir` holds tokenizer.json or tokenizer.model (what from_pretrained needs).
bool has_tokenizer_files(const std::string& dir);

// Reads tokenizer_config.json and special_tokens_map.json of `dir` (absent files: defaults).
TokenizerConfig read_tokenizer_config(const std::string& dir);

}  // namespace selfrl::tokenizer
