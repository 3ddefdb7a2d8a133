// safetensors: the Hugging Face weight format (https://huggingface.co/docs/safetensors).
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// then the data section; offsets are relative to the start of the data section.
//
// SafeTensorsFile memory-maps a file (copy-on-write, so a tensor handed out may be modified
// without touching the file) and validates every header field before any tensor is read:
// header length capped, JSON well-formed, no duplicate names, known dtypes, shapes whose
// byte size does not overflow, offsets inside the data section, consistent with
// dtype × shape, and non-overlapping. A hostile file yields selfrl::Error naming the file and
// the problem; it never causes an out-of-bounds read.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace selfrl::io {

enum class StDtype { kBool, kU8, kI8, kI16, kI32, kI64, kF16, kBF16, kF32, kF64 };

// "F32" etc. as written in headers; size in bytes of one element.
const char* st_dtype_name(StDtype dtype);
size_t st_dtype_size(StDtype dtype);
torch::ScalarType st_dtype_to_torch(StDtype dtype);
// Throws Error for torch dtypes safetensors (as we support it) cannot hold.
StDtype torch_to_st_dtype(torch::ScalarType dtype);

struct TensorInfo {
  std::string name;
  StDtype dtype = StDtype::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets into the data section, [begin, end)
  uint64_t end = 0;
  int64_t numel() const;
};

// Headers larger than this are rejected (the reference implementation's limit).
constexpr uint64_t kMaxSafeTensorsHeaderBytes = 100'000'000;
// More tensors than any real checkpoint shard holds (DeepSeek-V3: ~91k in 163 shards).
constexpr size_t kMaxSafeTensorsTensors = 1'000'000;

class SafeTensorsFile {
 public:
  // Maps and validates `path`. Throws Error naming the file on any problem.
  static SafeTensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  // Tensors in data-offset order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  // Throws Error naming the file and the tensor when absent.
  const TensorInfo& info(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The tensor on the CPU, sharing memory with the mapping (zero-copy) when its data is
  // aligned for its dtype; a copy otherwise. Writes to it never reach the file.
  torch::Tensor tensor(const std::string& name) const;

 private:
  struct Mapping;
  std::string path_;
  std::shared_ptr<Mapping> mapping_;
  const uint8_t* data_ = nullptr;  // start of the data section inside the mapping
  uint64_t data_size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Writes a safetensors file that the Hugging Face libraries read: header padded with spaces
// to a multiple of 8 bytes, tensors laid out contiguously in the given order. Tensors on other
// devices or non-contiguous are copied to contiguous CPU memory first. The file is written to
// "<path>.tmp" and renamed, so a reader never sees a half-written file. Names must be unique
// and non-empty; "__metadata__" is reserved.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// A checkpoint that is either one model.safetensors or shards listed by
// model.safetensors.index.json ({"metadata": {...}, "weight_map": {name: file}}).
class SafeTensorsCheckpoint {
 public:
  // `path` is a directory holding model.safetensors.index.json or model.safetensors, an index
  // file, or a single .safetensors file. Every shard the index names is opened and validated,
  // and every tensor the index names must be present in its shard.
  static SafeTensorsCheckpoint open(const std::string& path);

  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  torch::Tensor tensor(const std::string& name) const;
  // The file that holds `name` (for error messages).
  const std::string& file_of(const std::string& name) const;
  size_t num_shards() const { return shards_.size(); }

 private:
  std::vector<SafeTensorsFile> shards_;
  std::map<std::string, size_t> where_;
};

// Writes `tensors` into `dir` in the Hugging Face layout: one model.safetensors when the total
// fits in `max_shard_bytes`, otherwise model-0000i-of-0000n.safetensors shards plus
// model.safetensors.index.json (with metadata.total_size). A tensor larger than the limit gets
// a shard of its own. Stale files of the other layout are removed.
void save_safetensors_checkpoint(const std::string& dir, const NamedTensors& tensors,
                                 uint64_t max_shard_bytes = 5'000'000'000ULL,
                                 const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace selfrl::io
