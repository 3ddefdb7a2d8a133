// UTF-8 and Unicode helpers shared by the tokenizers: code point iteration, NFC, the GPT-2
// byte-level alphabet, lossy UTF-8 decoding and the whitespace test Hugging Face uses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace selfrl::tokenizer::detail {

// Decodes the code point starting at text[i] (text must be valid UTF-8) and its byte length.
inline uint32_t utf8_decode(std::string_view text, size_t i, size_t* len) {
  const auto b = static_cast<unsigned char>(text[i]);
  if (b < 0x80) {
    *len = 1;
    return b;
  }
  if (b < 0xE0) {
    *len = 2;
    return ((b & 0x1F) << 6) | (text[i + 1] & 0x3F);
  }
  if (b < 0xF0) {
    *len = 3;
    return ((b & 0x0F) << 12) | ((text[i + 1] & 0x3F) << 6) | (text[i + 2] & 0x3F);
  }
  *len = 4;
  return ((b & 0x07) << 18) | ((text[i + 1] & 0x3F) << 12) | ((text[i + 2] & 0x3F) << 6) | (text[i + 3] & 0x3F);
}

inline size_t utf8_length(unsigned char lead) { return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }

void utf8_append(std::string& out, uint32_t cp);

// Canonical composition (NFC), UAX #15. `text` must be valid UTF-8.
std::string nfc(std::string_view text);

// Rust's char::is_whitespace (the White_Space property), used by lstrip/rstrip of added tokens.
bool is_whitespace(uint32_t cp);
// Rust's char::is_alphanumeric approximated: ASCII letters/digits, and every non-ASCII letter
// or digit PCRE2 knows (\p{L}, \p{N}).
bool is_word_char(uint32_t cp);

// GPT-2's bytes_to_unicode(): each byte maps to a printable code point, so that byte-level
// vocabularies can be stored as text (openai/gpt-2 encoder.py).
const std::string& byte_to_unicode(unsigned char b);
// Inverse of the byte-level alphabet. Returns false when `text` holds a character outside it.
bool unicode_to_bytes(std::string_view text, std::string* out);

// Bytes to UTF-8, each maximal invalid subsequence replaced by U+FFFD (WHATWG / Rust's
// String::from_utf8_lossy).
std::string utf8_lossy(std::string_view bytes);

}  // namespace selfrl::tokenizer::detail
