// Answer extraction: the text a completion commits to as its final answer, normalized so that
// equal answers compare equal ("1,000" = "1000" = "1000.0"). Consensus voting, verifiers and
// Borda selection all compare extracted answers.
#pragma once

#include <memory>
#include <optional>
#include <string>

namespace selfrl::rewards {

enum class ExtractorKind {
  kLastNumber,  // the last number in the text (GSM8K style)
  kBoxed,       // the content of the last \boxed{...} (MATH style), braces balanced
  kRegex,       // the first capture group (or the whole match) of the last match of a pattern
  kExact,       // the whole completion, whitespace-trimmed
};

class AnswerExtractor {
 public:
  // kind: "last_number" | "boxed" | "regex" | "exact". `pattern` is required for regex (PCRE2
  // syntax, UTF mode); an invalid pattern throws Error naming the position.
  static AnswerExtractor create(const std::string& kind, const std::string& pattern = "");
  // std::nullopt when the completion contains no answer.
  std::optional<std::string> extract(const std::string& completion) const;
  ExtractorKind kind() const { return kind_; }

 private:
  struct Regex;
  ExtractorKind kind_ = ExtractorKind::kLastNumber;
  std::shared_ptr<const Regex> regex_;
};

// "−1,234.500" → "-1234.5"; "+7" → "7"; "-0" → "0". Non-numbers are returned trimmed.
std::string normalize_answer(const std::string& answer);

}  // namespace selfrl::rewards
