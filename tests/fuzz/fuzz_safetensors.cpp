// safetensors files: SafeTensorsFile::open validates the 8-byte header length and the JSON
// header; every tensor it accepts must then be readable (tensor() stays inside the mapping).
// An input with a "#8<" separator line is a checkpoint directory instead: part 0 is
// model.safetensors, part 1 model.safetensors.index.json (SafeTensorsCheckpoint::open).
#include <torch/types.h>

#include "fuzz_util.h"
#include "selfrl/core/error.h"
#include "selfrl/io/safetensors.h"

namespace {

void read_all(const selfrl::io::SafeTensorsFile& f) {
  for (const auto& name : f.names()) {
    const auto& info = f.info(name);
    const torch::Tensor t = f.tensor(name);
    if (t.numel() != info.numel()) std::abort();  // the tensor must match its header
    // Touch the data (ASan checks the bytes are inside the mapping); small tensors only.
    if (t.numel() > 0 && t.numel() <= 4096) (void)t.to(torch::kFloat64).sum().item<double>();
  }
  for (const auto& [k, v] : f.metadata()) (void)(k.size() + v.size());
}

void fuzz_one(const uint8_t* data, size_t size) {
  namespace fz = selfrl::fuzz;
  const auto& dir = fz::ScratchDir::get();
  const auto parts = fz::split_parts(data, size, 2);
  const auto file = dir / "model.safetensors";
  const auto index = dir / "model.safetensors.index.json";
  fz::write_file(file, parts[0]);
  try {
    read_all(selfrl::io::SafeTensorsFile::open(file.string()));
  } catch (const selfrl::Error& e) {
    selfrl::fuzz::note(e.what());
  }
  if (parts.size() > 1) {
    fz::write_file(index, parts[1]);
    try {
      const auto ckpt = selfrl::io::SafeTensorsCheckpoint::open(dir.string());
      for (const auto& name : ckpt.names()) {
        (void)ckpt.file_of(name);
        if (ckpt.info(name).numel() <= 4096) (void)ckpt.tensor(name).numel();
      }
    } catch (const selfrl::Error& e) {
      selfrl::fuzz::note(e.what());
    }
    fz::remove_file(index);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return selfrl::fuzz::run(fuzz_one, data, size);
}
