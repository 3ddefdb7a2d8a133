// Unicode tables for NFC (generated into unicode_nfc_data.cpp, sorted by code point).
#pragma once

#include <cstddef>
#include <cstdint>

namespace selfrl::tokenizer::detail {

struct CombiningClass {
  uint32_t cp;
  uint8_t ccc;
};
struct Decomposition {
  uint32_t cp, first, second;
};  // second == 0: singleton
struct Composition {
  uint32_t first, second, composite;
};  // sorted by (first, second)

extern const CombiningClass kCombiningClasses[];
extern const size_t kNumCombiningClasses;
extern const Decomposition kDecompositions[];
extern const size_t kNumDecompositions;
extern const Composition kCompositions[];
extern const size_t kNumCompositions;

}  // namespace selfrl::tokenizer::detail
