// JSON Lines: JsonlReader over a file holding the input, reading records until the end,
// with objects required and not, and with a small line limit.
#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "selfrl/core/error.h"
#include "selfrl/io/jsonl.h"

namespace {

void read(const std::string& path, bool require_objects, size_t max_line) {
  try {
    selfrl::io::JsonlReader reader(path, require_objects);
    if (max_line) reader.set_max_line_bytes(max_line);
    nlohmann::json row;
    size_t last = 0;
    while (reader.next(row)) {
      if (reader.line() <= last) std::abort();  // line numbers only grow
      last = reader.line();
      if (require_objects && !row.is_object()) std::abort();
      (void)reader.where();
    }
  } catch (const selfrl::Error& e) {
    selfrl::fuzz::note(e.what());
  }
}

void fuzz_one(const uint8_t* data, size_t size) {
  namespace fz = selfrl::fuzz;
  const auto path = fz::ScratchDir::get() / "rows.jsonl";
  fz::write_file(path, std::string_view(reinterpret_cast<const char*>(data), size));
  read(path.string(), true, 0);
  read(path.string(), false, 0);
  read(path.string(), true, 64);
  try {
    (void)selfrl::io::read_jsonl(path.string(), false);
  } catch (const selfrl::Error& e) {
    selfrl::fuzz::note(e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return selfrl::fuzz::run(fuzz_one, data, size);
}
