// PCRE2 wrapper for the tokenizer patterns (see regex.h).
#include "tokenizer/regex.h"

#include <pcre2.h>

#include "selfrl/core/error.h"

namespace selfrl::tokenizer::detail {
namespace {

// Bounds on one pcre2_match() call, so that a pathological pattern in a tokenizer.json (nested
// quantifiers such as (a+)+$) fails with an Error instead of backtracking for hours. The real
// pre-tokenizer patterns need a few steps per character and no backtracking depth to speak of.
constexpr uint32_t kMatchLimit = 10'000'000;   // backtracking steps (PCRE2's match limit)
constexpr uint32_t kDepthLimit = 100'000;      // nested backtracking points (interpreter only)
constexpr uint32_t kHeapLimitKiB = 64 * 1024;  // 64 MiB of backtracking memory (interpreter only)
constexpr size_t kJitStackBytes = 4 << 20;     // the JIT's equivalent of the two limits above

// One match block per thread, shared by all patterns: we only read the whole-match offsets.
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, kJitStackBytes, nullptr);
  MatchState() {
    pcre2_jit_stack_assign(context, nullptr, stack);
    pcre2_set_match_limit(context, kMatchLimit);
    pcre2_set_depth_limit(context, kDepthLimit);
    pcre2_set_heap_limit(context, kHeapLimitKiB);
  }
  ~MatchState() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
  }
};
MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

}  // namespace

Regex::Regex(const std::string& pattern, bool literal) : pattern_(pattern), literal_(literal) {
  if (literal_) return;
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                                   &err, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    throw Error(::selfrl::detail::concat("cannot compile regex /", pattern, "/ at offset ", offset, ": ",
                                         reinterpret_cast<const char*>(msg)))
        .hint("the pattern must be valid for Oniguruma/PCRE2 with Unicode properties");
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is absent
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>* out) const {
  out->clear();
  if (literal_) {
    if (pattern_.empty()) return;
    for (size_t pos = text.find(pattern_); pos != std::string_view::npos;
         pos = text.find(pattern_, pos + pattern_.size())) {
      out->emplace_back(pos, pos + pattern_.size());
    }
    return;
  }
  auto& st = match_state();
  auto* code = static_cast<pcre2_code*>(code_);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    const int rc = pcre2_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, st.data, st.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof(msg));
      std::string limit;
      if (rc == PCRE2_ERROR_MATCHLIMIT)
        limit = ::selfrl::detail::concat(" (the match limit of ", kMatchLimit, " backtracking steps)");
      else if (rc == PCRE2_ERROR_DEPTHLIMIT)
        limit = ::selfrl::detail::concat(" (the depth limit of ", kDepthLimit, " nested backtracking points)");
      else if (rc == PCRE2_ERROR_HEAPLIMIT)
        limit = ::selfrl::detail::concat(" (the heap limit of ", kHeapLimitKiB / 1024, " MiB)");
      else if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        limit = ::selfrl::detail::concat(" (the JIT stack limit of ", kJitStackBytes >> 20, " MiB)");
      std::string shown = pattern_.size() > 200 ? pattern_.substr(0, 200) + "..." : pattern_;
      throw Error(::selfrl::detail::concat("regex /", shown, "/ failed at byte ", start, " of a ", text.size(),
                                           "-byte text: ", reinterpret_cast<const char*>(msg), limit))
          .hint(limit.empty() ? "the pattern does not work on this text"
                              : "the pattern backtracks catastrophically (nested quantifiers such as (a+)+); "
                                "fix the pre-tokenizer/normalizer regex in tokenizer.json");
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    const size_t b = ov[0], e = ov[1];
    if (e > b) {
      out->emplace_back(b, e);
      start = e;
    } else {
      // Empty match: step over one character (Oniguruma and HF skip empty matches).
      if (b >= text.size()) break;
      size_t next = b + 1;
      while (next < text.size() && (static_cast<unsigned char>(text[next]) & 0xC0) == 0x80) ++next;
      start = next;
    }
  }
}

}  // namespace selfrl::tokenizer::detail
