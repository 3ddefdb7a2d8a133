// The components of a tokenizer.json pipeline other than the model: normalizers,
// pre-tokenizers, post-processors and decoders, each parsed from its JSON object once.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/regex.h"

namespace selfrl::tokenizer::detail {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void apply(std::string* text) const = 0;
};
// Throws selfrl::Error naming the unsupported "type" and listing the supported ones.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j);

// Splits pre-tokens further. `first` is true for the segment that starts the input (Metaspace
// prepend_scheme "first").
class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void apply(std::vector<std::string>* pieces, bool first) const = 0;
};
// Sets *byte_level when a ByteLevel pre-tokenizer is present (the model then works on bytes).
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, bool* byte_level);

// Decoders work on token strings (raw bytes for byte-level vocabularies).
class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void apply(std::vector<std::string>* tokens) const = 0;
};
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j);

// The post-processor's template for one sequence: special-token ids around the sequence.
struct PostProcessor {
  std::vector<int> prefix, suffix;
};
// `token_id` resolves special tokens named by RobertaProcessing/BertProcessing.
PostProcessor make_post_processor(const nlohmann::json& j);

// Splits [0, size) at `matches` according to a Split behaviour (Isolated, Removed,
// MergedWithPrevious, MergedWithNext, Contiguous); returns the pieces' ranges.
std::vector<std::pair<size_t, size_t>> split_ranges(size_t size, const std::vector<std::pair<size_t, size_t>>& matches,
                                                    const std::string& behavior, bool invert);

}  // namespace selfrl::tokenizer::detail
