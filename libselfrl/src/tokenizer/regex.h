// A PCRE2 regular expression compiled once (UTF + UCP, JIT when available), for the Split /
// ByteLevel pre-tokenizers and Replace normalizers of tokenizer.json. Hugging Face compiles these
// patterns with Oniguruma; the patterns in use (\p{L}, \p{N}, \s, lookahead, (?i:...)) mean the
// same in PCRE2 with PCRE2_UCP.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace selfrl::tokenizer::detail {

class Regex {
 public:
  // literal: match `pattern` as a plain string. Throws selfrl::Error with PCRE2's message and
  // the offset in the pattern.
  Regex(const std::string& pattern, bool literal);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-overlapping matches [begin, end) left to right. `text` must be valid UTF-8.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>* out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  bool literal_;
  void* code_ = nullptr;  // pcre2_code_8*
};

}  // namespace selfrl::tokenizer::detail
