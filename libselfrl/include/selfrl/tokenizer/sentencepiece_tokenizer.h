// SentencePieceTokenizer: a sentencepiece tokenizer.model behind the Tokenizer interface, and
// in-process training of one (for the small demos that train their own tokenizer).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "selfrl/tokenizer/sentencepiece_library.h"
#include "selfrl/tokenizer/tokenizer.h"

namespace selfrl::tokenizer {

class SentencePieceTokenizer : public Tokenizer {
 public:
  static std::unique_ptr<SentencePieceTokenizer> load(const std::string& model_path, TokenizerConfig config = {});

  std::vector<int> encode(std::string_view text, bool add_special_tokens = true) const override;
  std::string decode(const std::vector<int>& ids, bool skip_special_tokens = false) const override;
  std::string id_to_token(int id) const override;
  std::optional<int> token_to_id(std::string_view token) const override;
  int vocab_size() const override;
  bool is_special(int id) const override;

 private:
  std::shared_ptr<SentencePieceModel> model_;
};

struct SentencePieceTrainOptions {
  int vocab_size = 256;
  std::string model_type = "bpe";  // bpe, unigram, char, word
  double character_coverage = 1.0;
  bool byte_fallback = false;
};

// Trains on a corpus file (one sentence a line) and writes <out_prefix>.model / .vocab.
// Returns the .model path. Throws selfrl::Error with sentencepiece's message.
std::string train_sentencepiece(const std::string& corpus_path, const std::string& out_prefix,
                                const SentencePieceTrainOptions& options = {});
// Same, from sentences in memory (written to <out_prefix>.corpus.txt first).
std::string train_sentencepiece(const std::vector<std::string>& lines, const std::string& out_prefix,
                                const SentencePieceTrainOptions& options = {});

}  // namespace selfrl::tokenizer
