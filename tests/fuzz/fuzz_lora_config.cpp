// PEFT adapter_config.json: LoraConfig::from_peft_json. An accepted config must survive
// to_peft_json() -> from_peft_json().
#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "selfrl/core/error.h"
#include "selfrl/io/file_util.h"
#include "selfrl/model/lora.h"

namespace {

void fuzz_one(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  selfrl::model::LoraConfig cfg;
  try {
    cfg = selfrl::model::LoraConfig::from_peft_json(selfrl::io::parse_json_text(text, "adapter_config.json"),
                                                    "adapter_config.json");
  } catch (const selfrl::Error& e) {
    selfrl::fuzz::note(e.what());
    return;
  }
  (void)cfg.scaling();
  const nlohmann::json out = cfg.to_peft_json();
  const auto again = selfrl::model::LoraConfig::from_peft_json(out, "round-trip");  // Error escapes
  if (again.to_peft_json() != out) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return selfrl::fuzz::run(fuzz_one, data, size);
}
