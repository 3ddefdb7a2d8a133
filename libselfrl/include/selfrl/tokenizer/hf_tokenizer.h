// HfTokenizer: a Hugging Face tokenizer.json with a BPE model, reproducing the `tokenizers`
// pipeline: added tokens -> normalizer -> pre-tokenizer -> BPE -> post-processor, and the
// decoder chain for decode(). Supported components are listed in docs/tokenizers.md; any other
// component is a selfrl::Error naming it.
#pragma once

#include <memory>
#include <string>

#include "selfrl/tokenizer/tokenizer.h"

namespace selfrl::tokenizer {

class HfTokenizer : public Tokenizer {
 public:
  // Parses tokenizer.json (`json_path`); `config` comes from tokenizer_config.json.
  static std::unique_ptr<HfTokenizer> load(const std::string& json_path, TokenizerConfig config = {});
  // Same, from the JSON text itself; `source` names it in errors.
  static std::unique_ptr<HfTokenizer> from_json_string(const std::string& json_text, TokenizerConfig config = {},
                                                       const std::string& source = "tokenizer.json");
  ~HfTokenizer() override;

  std::vector<int> encode(std::string_view text, bool add_special_tokens = true) const override;
  std::string decode(const std::vector<int>& ids, bool skip_special_tokens = false) const override;
  std::string id_to_token(int id) const override;
  std::optional<int> token_to_id(std::string_view token) const override;
  int vocab_size() const override;
  bool is_special(int id) const override;

  struct Impl;

 private:
  HfTokenizer();
  std::unique_ptr<Impl> impl_;
};

}  // namespace selfrl::tokenizer
