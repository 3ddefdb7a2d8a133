// Checkpoint directories: checkpoint::check_complete on a directory whose files come from the
// input, split at "#8<" separator lines in this order:
//   COMPLETE, trainer_state.json, model.safetensors, optimizer.safetensors, rng.safetensors,
//   adapters.safetensors
// (a missing part: no such file). check_complete returns why a directory is not complete, so
// it must never throw at all.
#include <array>

#include "fuzz_util.h"
#include "selfrl/core/error.h"
#include "selfrl/trainers/checkpoint.h"

namespace {

void fuzz_one(const uint8_t* data, size_t size) {
  namespace fz = selfrl::fuzz;
  static const std::array<const char*, 6> kFiles = {"COMPLETE",          "trainer_state.json",
                                                    "model.safetensors", "optimizer.safetensors",
                                                    "rng.safetensors",   "adapters.safetensors"};
  const auto dir = fz::ScratchDir::get() / "checkpoint-1";
  std::filesystem::create_directories(dir);
  const auto parts = fz::split_parts(data, size, kFiles.size());
  for (size_t i = 0; i < kFiles.size(); ++i) {
    if (i < parts.size())
      fz::write_file(dir / kFiles[i], parts[i]);
    else
      fz::remove_file(dir / kFiles[i]);
  }
  const std::string why = selfrl::checkpoint::check_complete(dir.string());  // must not throw
  fz::note(why.empty() ? "complete" : why.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return selfrl::fuzz::run(fuzz_one, data, size);
}
