// SentencePieceTokenizer: the Tokenizer interface over a sentencepiece .model (through the
// isolated selfrl_spm module, see sentencepiece_library.h), and in-process training.
#include "selfrl/tokenizer/sentencepiece_tokenizer.h"

#include <sstream>

#include "selfrl/core/error.h"
#include "selfrl/io/file_util.h"

namespace selfrl::tokenizer {

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::load(const std::string& model_path,
                                                                     TokenizerConfig config) {
  std::unique_ptr<SentencePieceTokenizer> tok(new SentencePieceTokenizer());
  tok->model_ = SentencePieceModel::load(model_path);
  const auto& m = *tok->model_;
  // Special tokens the config does not name come from the model itself.
  auto piece = [&](int id) -> std::optional<std::string> {
    if (id < 0) return std::nullopt;
    return m.id_to_piece(id);
  };
  if (!config.bos_token) config.bos_token = piece(m.bos_id());
  if (!config.eos_token) config.eos_token = piece(m.eos_id());
  if (!config.pad_token) config.pad_token = piece(m.pad_id());
  tok->config_ = std::move(config);
  tok->resolve_special_ids();
  return tok;
}

std::vector<int> SentencePieceTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const size_t bad = io::find_invalid_utf8(text);
  if (bad != std::string_view::npos)
    throw Error(detail::concat("text is not valid UTF-8 at byte ", bad))
        .hint("decode the input as UTF-8 before tokenizing");
  std::vector<int> ids;
  // LlamaTokenizer (slow) semantics: add_bos_token defaults to true, add_eos_token to false.
  if (add_special_tokens && config_.add_bos_token.value_or(true) && bos_id_) ids.push_back(*bos_id_);
  auto body = model_->encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  if (add_special_tokens && config_.add_eos_token.value_or(false) && eos_id_) ids.push_back(*eos_id_);
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int>& ids, bool skip_special_tokens) const {
  std::vector<int> kept;
  kept.reserve(ids.size());
  for (int id : ids) {
    if (id < 0 || id >= model_->piece_size())
      throw Error(detail::concat("token id ", id, " is not in the vocabulary (size ", model_->piece_size(), ")"))
          .at(model_->path());
    if (skip_special_tokens && is_special(id)) continue;
    kept.push_back(id);
  }
  return model_->decode(kept);
}

std::string SentencePieceTokenizer::id_to_token(int id) const { return model_->id_to_piece(id); }

std::optional<int> SentencePieceTokenizer::token_to_id(std::string_view token) const {
  const int id = model_->piece_to_id(token);
  if (id == model_->unk_id() && model_->id_to_piece(id) != token) return std::nullopt;
  return id;
}

int SentencePieceTokenizer::vocab_size() const { return model_->piece_size(); }

bool SentencePieceTokenizer::is_special(int id) const {
  return id >= 0 && id < model_->piece_size() && model_->is_control(id) && id != model_->unk_id();
}

std::string train_sentencepiece(const std::string& corpus_path, const std::string& out_prefix,
                                const SentencePieceTrainOptions& o) {
  SELFRL_CHECK(o.vocab_size > 0, "vocab_size must be > 0, got ", o.vocab_size);
  if (o.model_type != "bpe" && o.model_type != "unigram" && o.model_type != "char" && o.model_type != "word")
    throw Error("model_type \"" + o.model_type + "\" is not a sentencepiece model type")
        .hint("use bpe, unigram, char or word");
  std::ostringstream args;
  args << "--input=" << corpus_path << " --model_prefix=" << out_prefix << " --vocab_size=" << o.vocab_size
       << " --model_type=" << o.model_type << " --character_coverage=" << o.character_coverage
       << " --byte_fallback=" << (o.byte_fallback ? "true" : "false") << " --hard_vocab_limit=false --minloglevel=2";
  try {
    train_sentencepiece(args.str());
  } catch (Error& e) {
    throw e.at(corpus_path);
  }
  return out_prefix + ".model";
}

std::string train_sentencepiece(const std::vector<std::string>& lines, const std::string& out_prefix,
                                const SentencePieceTrainOptions& options) {
  SELFRL_CHECK(!lines.empty(), "cannot train a sentencepiece model on zero lines");
  std::string corpus;
  for (const auto& l : lines) (corpus += l) += '\n';
  const std::string path = out_prefix + ".corpus.txt";
  io::write_text_file_atomic(path, corpus);
  return train_sentencepiece(path, out_prefix, options);
}

}  // namespace selfrl::tokenizer
