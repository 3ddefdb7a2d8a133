// tokenizer.json: HfTokenizer::from_json_string, then encode / decode. Input: the
// tokenizer.json text, optionally followed by a "#8<" separator line and the text to encode
// (a fixed sentence otherwise). decode() of ids inside the vocabulary must not throw for
// ids encode() produced.
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "selfrl/core/error.h"
#include "selfrl/tokenizer/hf_tokenizer.h"

namespace {

void fuzz_one(const uint8_t* data, size_t size) {
  namespace fz = selfrl::fuzz;
  using selfrl::tokenizer::HfTokenizer;
  const auto parts = fz::split_parts(data, size, 2);
  std::unique_ptr<HfTokenizer> tok;
  try {
    tok = HfTokenizer::from_json_string(parts[0], {}, "tokenizer.json");
  } catch (const selfrl::Error& e) {
    selfrl::fuzz::note(e.what());
    return;
  }
  const std::string text = parts.size() > 1 ? parts[1] : "Hello world, ünïcödé 123 <s>\n  tabs\tand  spaces</s>";
  const int vocab = tok->vocab_size();
  for (const bool special : {true, false}) {
    std::vector<int> ids;
    try {
      ids = tok->encode(text, special);
    } catch (const selfrl::Error& e) {
      selfrl::fuzz::note(e.what());
      continue;  // invalid UTF-8, a limit
    }
    for (const int id : ids)
      if (id < 0 || id >= vocab) std::abort();  // encode() produced an id outside the vocabulary
    try {
      (void)tok->decode(ids, false);
      (void)tok->decode(ids, true);
    } catch (const selfrl::Error& e) {
      selfrl::fuzz::note(e.what());
    }
  }
  // Every id once (bounded), the ends of the range and ids outside it.
  for (int id = 0; id < vocab && id < 512; ++id) {
    try {
      const std::string piece = tok->id_to_token(id);
      (void)tok->token_to_id(piece);
      (void)tok->is_special(id);
      (void)tok->decode({id}, false);
    } catch (const selfrl::Error& e) {
      selfrl::fuzz::note(e.what());
    }
  }
  for (const int id : {vocab - 1, vocab, -1}) {
    try {
      (void)tok->decode({id}, false);
      (void)tok->id_to_token(id);
    } catch (const selfrl::Error& e) {
      selfrl::fuzz::note(e.what());
    }
  }
  try {
    (void)tok->decode_generated({0, int64_t{vocab}, -5, int64_t{1} << 40}, true);
  } catch (const selfrl::Error& e) {
    selfrl::fuzz::note(e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return selfrl::fuzz::run(fuzz_one, data, size);
}
