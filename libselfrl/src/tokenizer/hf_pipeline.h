// The components of a tokenizer.json pipeline other than the model: normalizers,
// pre-tokenizers, post-processors and decoders, each parsed from its JSON object once.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/regex.h"

namespace selfrl::tokenizer::detail {

// Limits on what a hostile tokenizer.json can make the pipeline do (the id limits are in
// hf_tokenizer.cpp, the regex limits in regex.cpp).
// Sequence components nest at most this deep (real files: 1 level).
inline constexpr int kMaxPipelineDepth = 64;
// Normalizers and decoders that lengthen text (Replace, Prepend) may make it at most
// kMaxGrowthFactor times the input plus kGrowthSlackBytes long, over the whole chain: a chain of
// Replace("a" -> "aa") steps would otherwise double the text at every step. Real pipelines grow
// it at most 3x (" " -> "\u2581").
inline constexpr size_t kMaxGrowthFactor = 16;
inline constexpr size_t kGrowthSlackBytes = size_t{1} << 20;
inline size_t growth_limit(size_t input_bytes) { return input_bytes * kMaxGrowthFactor + kGrowthSlackBytes; }

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // `max_bytes`: growth_limit() of the text the chain started from; longer output is an Error.
  virtual void apply(std::string* text, size_t max_bytes) const = 0;
};
// Throws selfrl::Error naming the unsupported "type" and listing the supported ones, or a
// Sequence nested deeper than kMaxPipelineDepth. `depth`: how many Sequences enclose `j`.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, int depth = 0);

// Splits pre-tokens further. `first` is true for the segment that starts the input (Metaspace
// prepend_scheme "first").
class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void apply(std::vector<std::string>* pieces, bool first) const = 0;
};
// Sets *byte_level when a ByteLevel pre-tokenizer is present (the model then works on bytes).
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, bool* byte_level, int depth = 0);

// Decoders work on token strings (raw bytes for byte-level vocabularies).
class Decoder {
 public:
  virtual ~Decoder() = default;
  // `max_bytes`: limit on the total length of the tokens (see growth_limit()).
  virtual void apply(std::vector<std::string>* tokens, size_t max_bytes) const = 0;
};
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, int depth = 0);

// The post-processor's template for one sequence: special-token ids around the sequence.
struct PostProcessor {
  std::vector<int> prefix, suffix;
};
// Ids are checked to be integers here and to be in the vocabulary by the caller.
PostProcessor make_post_processor(const nlohmann::json& j, int depth = 0);

// A ByteFallback piece "<0xNN>" (two hex digits, either case): the byte, else -1.
int byte_fallback_value(std::string_view piece);

// Splits [0, size) at `matches` according to a Split behaviour (Isolated, Removed,
// MergedWithPrevious, MergedWithNext, Contiguous); returns the pieces' ranges.
std::vector<std::pair<size_t, size_t>> split_ranges(size_t size, const std::vector<std::pair<size_t, size_t>>& matches,
                                                    const std::string& behavior, bool invert);

}  // namespace selfrl::tokenizer::detail
