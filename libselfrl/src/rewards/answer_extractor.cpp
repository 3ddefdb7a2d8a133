// Answer extraction (see selfrl/rewards/answer_extractor.h).
#include "selfrl/rewards/answer_extractor.h"

#include <pcre2.h>

#include <cctype>
#include <regex>

#include "selfrl/core/error.h"

namespace selfrl::rewards {

struct AnswerExtractor::Regex {
  pcre2_code* code = nullptr;
  ~Regex() {
    if (code != nullptr) pcre2_code_free(code);
  }
};

namespace {

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool is_number(const std::string& s) {
  static const std::regex re(R"(^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$|^[+-]?\.\d+$)");
  return std::regex_match(s, re);
}

std::optional<std::string> last_number(const std::string& text) {
  // Scan right to left for the last run of digits, then grow it to a full number.
  size_t end = text.size();
  while (end > 0 && !std::isdigit(static_cast<unsigned char>(text[end - 1]))) --end;
  if (end == 0) return std::nullopt;
  size_t begin = end;
  while (begin > 0) {
    const char c = text[begin - 1];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      --begin;
    } else if ((c == ',' || c == '.') && begin >= 2 && std::isdigit(static_cast<unsigned char>(text[begin - 2]))) {
      --begin;
    } else {
      break;
    }
  }
  if (begin > 0 && text[begin - 1] == '-') --begin;
  return text.substr(begin, end - begin);
}

std::optional<std::string> last_boxed(const std::string& text) {
  const std::string tag = "\\boxed{";
  const size_t pos = text.rfind(tag);
  if (pos == std::string::npos) return std::nullopt;
  int depth = 1;
  const size_t start = pos + tag.size();
  for (size_t i = start; i < text.size(); ++i) {
    if (text[i] == '{') ++depth;
    if (text[i] == '}' && --depth == 0) return text.substr(start, i - start);
  }
  return std::nullopt;  // unbalanced: no answer
}

}  // namespace

std::string normalize_answer(const std::string& answer) {
  std::string s = trim(answer);
  if (!is_number(s)) return s;
  std::string out;
  for (char c : s)
    if (c != ',' && c != '+') out.push_back(c);
  if (out.find('.') != std::string::npos) {
    while (!out.empty() && out.back() == '0') out.pop_back();
    if (!out.empty() && out.back() == '.') out.pop_back();
  }
  const bool neg = !out.empty() && out[0] == '-';
  std::string digits = neg ? out.substr(1) : out;
  size_t nz = 0;
  while (nz + 1 < digits.size() && digits[nz] == '0' && digits[nz + 1] != '.') ++nz;  // leading zeros
  digits = digits.substr(nz);
  if (!digits.empty() && digits[0] == '.') digits = "0" + digits;
  if (digits.empty() || digits == "0") return "0";
  return neg ? "-" + digits : digits;
}

AnswerExtractor AnswerExtractor::create(const std::string& kind, const std::string& pattern) {
  AnswerExtractor e;
  if (kind == "last_number") {
    e.kind_ = ExtractorKind::kLastNumber;
  } else if (kind == "boxed") {
    e.kind_ = ExtractorKind::kBoxed;
  } else if (kind == "exact") {
    e.kind_ = ExtractorKind::kExact;
  } else if (kind == "regex") {
    e.kind_ = ExtractorKind::kRegex;
    if (pattern.empty()) throw Error("the regex answer extractor needs a pattern").hint("set extractor_pattern");
    int code = 0;
    PCRE2_SIZE offset = 0;
    auto re = std::make_shared<Regex>();
    re->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                             &code, &offset, nullptr);
    if (re->code == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(code, msg, sizeof msg);
      throw Error("invalid answer pattern '" + pattern + "' at offset " + std::to_string(offset) + ": " +
                  reinterpret_cast<const char*>(msg));
    }
    e.regex_ = re;
  } else {
    throw Error("unknown answer extractor '" + kind + "'").hint("use last_number, boxed, regex or exact");
  }
  return e;
}

std::optional<std::string> AnswerExtractor::extract(const std::string& completion) const {
  std::optional<std::string> raw;
  switch (kind_) {
    case ExtractorKind::kLastNumber:
      raw = last_number(completion);
      break;
    case ExtractorKind::kBoxed:
      raw = last_boxed(completion);
      break;
    case ExtractorKind::kExact:
      raw = completion;
      break;
    case ExtractorKind::kRegex: {
      pcre2_match_data* md = pcre2_match_data_create_from_pattern(regex_->code, nullptr);
      PCRE2_SIZE start = 0;
      while (start <= completion.size()) {
        const int rc = pcre2_match(regex_->code, reinterpret_cast<PCRE2_SPTR>(completion.c_str()), completion.size(),
                                   start, 0, md, nullptr);
        if (rc < 0) break;
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        const int group = rc >= 2 ? 1 : 0;
        if (ov[2 * group] != PCRE2_UNSET) raw = completion.substr(ov[2 * group], ov[2 * group + 1] - ov[2 * group]);
        start = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
      }
      pcre2_match_data_free(md);
      break;
    }
  }
  if (!raw) return std::nullopt;
  std::string n = normalize_answer(*raw);
  if (n.empty()) return std::nullopt;
  return n;
}

}  // namespace selfrl::rewards
