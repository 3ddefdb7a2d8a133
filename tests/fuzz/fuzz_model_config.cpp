// config.json: parse_json_text, then ModelConfig::from_json. A config it accepts must
// survive to_json() -> from_json() unchanged (what save() then load() does).
#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "selfrl/core/error.h"
#include "selfrl/io/file_util.h"
#include "selfrl/io/model_config.h"

namespace {

void fuzz_one(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  nlohmann::json j;
  try {
    j = selfrl::io::parse_json_text(text, "config.json");
  } catch (const selfrl::Error& e) {
    selfrl::fuzz::note(e.what());
    return;
  }
  selfrl::io::ModelConfig cfg;
  try {
    cfg = selfrl::io::ModelConfig::from_json(j, "config.json");
  } catch (const selfrl::Error& e) {
    selfrl::fuzz::note(e.what());
    return;
  }
  (void)cfg.estimated_parameters();
  cfg.validate("config.json");  // accepted once: must stay valid (an Error here escapes)
  const nlohmann::json out = cfg.to_json();
  const auto again = selfrl::io::ModelConfig::from_json(out, "round-trip");
  if (again.to_json() != out) std::abort();  // save + load changed the config
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return selfrl::fuzz::run(fuzz_one, data, size);
}
