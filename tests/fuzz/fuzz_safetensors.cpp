// safetensors files: SafeTensorsFile::open validates the 8-byte header length and the JSON
// header; every tensor it accepts must then be readable (tensor() stays inside the mapping).
// An input with a "#8<" separator line is a checkpoint directory instead: part 0 is
// model.safetensors, part 1 model.safetensors.index.json (SafeTensorsCheckpoint::open).
#include <torch/types.h>

#include "fuzz_util.h"
#include "selfrl/core/error.h"
#include "selfrl/io/safetensors.h"

namespace {

// `data_size`: bytes after the header, from the input itself (the mapping is not ASan-tracked
// memory, so the offsets the header validation accepted are checked against the file here).
void read_all(const selfrl::io::SafeTensorsFile& f, uint64_t data_size) {
  for (const auto& name : f.names()) {
    const auto& info = f.info(name);
    if (info.begin > info.end || info.end > data_size) std::abort();  // outside the data section
    if (info.end - info.begin != static_cast<uint64_t>(info.numel()) * selfrl::io::st_dtype_size(info.dtype))
      std::abort();  // byte size inconsistent with dtype x shape
    const torch::Tensor t = f.tensor(name);
    if (t.numel() != info.numel()) std::abort();  // the tensor must match its header
    if (t.numel() > 0 && t.numel() <= 4096) (void)t.to(torch::kFloat64).sum().item<double>();
  }
  for (const auto& [k, v] : f.metadata()) (void)(k.size() + v.size());
}

uint64_t data_section_size(const std::string& file) {
  if (file.size() < 8) return 0;
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(file[static_cast<size_t>(i)]);
  return n > file.size() - 8 ? 0 : file.size() - 8 - n;
}

void fuzz_one(const uint8_t* data, size_t size) {
  namespace fz = selfrl::fuzz;
  const auto& dir = fz::ScratchDir::get();
  const auto parts = fz::split_parts(data, size, 2);
  const auto file = dir / "model.safetensors";
  const auto index = dir / "model.safetensors.index.json";
  fz::write_file(file, parts[0]);
  try {
    read_all(selfrl::io::SafeTensorsFile::open(file.string()), data_section_size(parts[0]));
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
