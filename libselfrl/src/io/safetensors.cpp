// safetensors reading (memory-mapped, validated) and writing (see selfrl/io/safetensors.h).
#include "selfrl/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>

#include <nlohmann/json.hpp>

#include "selfrl/core/error.h"
#include "selfrl/io/file_util.h"

namespace selfrl::io {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct DtypeRow {
  StDtype dtype;
  const char* name;
  size_t size;
  torch::ScalarType torch_type;
};
constexpr DtypeRow kDtypes[] = {
    {StDtype::kBool, "BOOL", 1, torch::kBool}, {StDtype::kU8, "U8", 1, torch::kUInt8},
    {StDtype::kI8, "I8", 1, torch::kInt8},     {StDtype::kI16, "I16", 2, torch::kInt16},
    {StDtype::kI32, "I32", 4, torch::kInt32},  {StDtype::kI64, "I64", 8, torch::kInt64},
    {StDtype::kF16, "F16", 2, torch::kHalf},   {StDtype::kBF16, "BF16", 2, torch::kBFloat16},
    {StDtype::kF32, "F32", 4, torch::kFloat},  {StDtype::kF64, "F64", 8, torch::kDouble},
};

const DtypeRow& row(StDtype dtype) {
  for (const auto& r : kDtypes)
    if (r.dtype == dtype) return r;
  throw Error("internal: unknown safetensors dtype");
}

std::string known_dtype_list() {
  std::string s;
  for (const auto& r : kDtypes) s += (s.empty() ? "" : ", ") + std::string(r.name);
  return s;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Counts the header's top-level names and remembers the first that repeats.
struct TopLevelKeys : nlohmann::json_sax<json> {
  int depth = 0;
  size_t count = 0;
  std::set<std::string> seen;
  std::string duplicate, error;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return ++depth, true; }
  bool end_object() override { return --depth, true; }
  bool start_array(std::size_t) override { return ++depth, true; }
  bool end_array() override { return --depth, true; }
  bool key(string_t& k) override {
    if (depth == 1) {
      ++count;
      if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error = e.what();
    return false;
  }
};

}  // namespace

const char* st_dtype_name(StDtype dtype) { return row(dtype).name; }
size_t st_dtype_size(StDtype dtype) { return row(dtype).size; }
torch::ScalarType st_dtype_to_torch(StDtype dtype) { return row(dtype).torch_type; }

StDtype torch_to_st_dtype(torch::ScalarType dtype) {
  for (const auto& r : kDtypes)
    if (r.torch_type == dtype) return r.dtype;
  throw Error(std::string("torch dtype ") + c10::toString(dtype) + " cannot be stored in safetensors")
      .hint("convert the tensor to one of " + known_dtype_list() + " first");
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---- reading ----------------------------------------------------------------------------

struct SafeTensorsFile::Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr != nullptr) munmap(addr, size);
  }
};

SafeTensorsFile SafeTensorsFile::open(const std::string& path) {
  auto fail = [&](const std::string& what) {
    return Error(what).at(path).hint(
        "the file is truncated, corrupt or not a safetensors file; re-download or re-save it");
  };

  SafeTensorsFile f;
  f.path_ = path;
  // O_NONBLOCK: a FIFO under the name must not block the open; fstat rejects it next.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    throw Error(std::string("cannot open safetensors file: ") + std::strerror(errno)).at(path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    check_regular_file(path, "safetensors file");  // names what it is instead (directory, FIFO, ...)
    throw Error("not a regular file").at(path);
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    throw fail("file is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  }
  auto mapping = std::make_shared<Mapping>();
  // Copy-on-write private mapping: tensors handed out can be written without touching the file.
  mapping->addr = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping->addr == MAP_FAILED) {
    mapping->addr = nullptr;
    throw Error(std::string("cannot memory-map the file: ") + std::strerror(errno)).at(path);
  }
  mapping->size = file_size;
  const auto* bytes = static_cast<const uint8_t*>(mapping->addr);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];  // little-endian
  if (header_len > kMaxSafeTensorsHeaderBytes) {
    throw fail("header length " + std::to_string(header_len) + " exceeds the limit of " +
               std::to_string(kMaxSafeTensorsHeaderBytes) + " bytes");
  }
  if (header_len > file_size - 8) {
    throw fail("header length " + std::to_string(header_len) + " runs past the end of the file (" +
               std::to_string(file_size) + " bytes)");
  }
  if (header_len < 2 || bytes[8] != '{') {
    throw fail("header does not start with a JSON object '{'");
  }

  // Parse, catching duplicate top-level names (a JSON object silently keeps the last one). The
  // duplicate check is a SAX pass of its own: nlohmann's callback parser rescans every object
  // at its end, which made a 30,000-tensor header take seconds (quadratic).
  const char* const header_begin = reinterpret_cast<const char*>(bytes + 8);
  const char* const header_end = header_begin + header_len;
  check_json_depth(std::string_view(header_begin, header_len), path + " (header)", 16);
  TopLevelKeys keys;
  std::string duplicate;
  json header;
  try {
    json::sax_parse(header_begin, header_end, &keys);
    if (!keys.error.empty()) throw fail("header is not valid JSON: " + keys.error);
    if (keys.count > kMaxSafeTensorsTensors) {
      throw fail("header lists " + std::to_string(keys.count) + " tensors, above the limit of " +
                 std::to_string(kMaxSafeTensorsTensors) + " per file");
    }
    duplicate = keys.duplicate;
    header = json::parse(header_begin, header_end);
  } catch (const json::exception& e) {
    throw fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!duplicate.empty()) throw fail("tensor '" + duplicate + "' is listed twice in the header");
  if (!header.is_object()) throw fail("header is not a JSON object");

  f.data_ = bytes + 8 + header_len;
  f.data_size_ = file_size - 8 - header_len;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) throw fail("__metadata__ is not an object of strings");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) throw fail("__metadata__['" + m.key() + "'] is not a string");
        f.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (name.empty()) throw fail("a tensor has an empty name");
    if (!entry.is_object()) throw fail(where + ": entry is not an object");
    for (auto k = entry.begin(); k != entry.end(); ++k) {
      if (k.key() != "dtype" && k.key() != "shape" && k.key() != "data_offsets") {
        throw fail(where + ": unexpected field '" + k.key() + "' (expected dtype, shape, data_offsets)");
      }
    }
    if (!entry.contains("dtype") || !entry["dtype"].is_string()) throw fail(where + ": missing or non-string 'dtype'");
    if (!entry.contains("shape") || !entry["shape"].is_array()) throw fail(where + ": missing or non-array 'shape'");
    if (!entry.contains("data_offsets") || !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2)
      throw fail(where + ": 'data_offsets' must be an array of two integers");

    TensorInfo info;
    info.name = name;
    const std::string dtype = entry["dtype"].get<std::string>();
    bool known = false;
    for (const auto& r : kDtypes) {
      if (dtype == r.name) {
        info.dtype = r.dtype;
        known = true;
      }
    }
    if (!known) throw fail(where + ": unsupported dtype '" + dtype + "' (supported: " + known_dtype_list() + ")");

    uint64_t numel = 1;
    for (const json& d : entry["shape"]) {
      if (!d.is_number_unsigned()) throw fail(where + ": shape has a non-integer or negative dimension");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, dim, &numel)) {
        throw fail(where + ": shape " + entry["shape"].dump() + " has more elements than fit in 64 bits");
      }
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t nbytes = 0;
    if (numel > static_cast<uint64_t>(INT64_MAX) ||
        __builtin_mul_overflow(numel, static_cast<uint64_t>(row(info.dtype).size), &nbytes)) {
      throw fail(where + ": shape " + entry["shape"].dump() + " is too large to address");
    }
    const json& offs = entry["data_offsets"];
    if (!offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
      throw fail(where + ": data_offsets must be non-negative integers");
    info.begin = offs[0].get<uint64_t>();
    info.end = offs[1].get<uint64_t>();
    if (info.begin > info.end)
      throw fail(where + ": data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                 ") are reversed");
    if (info.end > f.data_size_)
      throw fail(where + ": data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                 ") extend past the data section (" + std::to_string(f.data_size_) + " bytes)");
    if (info.end - info.begin != nbytes)
      throw fail(where + ": data_offsets span " + std::to_string(info.end - info.begin) + " bytes but dtype " + dtype +
                 " x shape " + shape_str(info.shape) + " needs " + std::to_string(nbytes));
    f.tensors_.push_back(std::move(info));
  }

  std::sort(f.tensors_.begin(), f.tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const TensorInfo* prev = nullptr;
  for (const auto& t : f.tensors_) {
    if (t.begin == t.end) continue;  // empty tensors occupy no bytes
    if (prev != nullptr && t.begin < prev->end) {
      throw fail("tensors '" + prev->name + "' and '" + t.name + "' overlap in the data section");
    }
    prev = &t;
  }
  for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_[f.tensors_[i].name] = i;
  f.mapping_ = std::move(mapping);
  return f;
}

std::vector<std::string> SafeTensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& t : tensors_) out.push_back(t.name);
  return out;
}

const TensorInfo& SafeTensorsFile::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error("no tensor named '" + name + "'").at(path_);
  return tensors_[it->second];
}

torch::Tensor SafeTensorsFile::tensor(const std::string& name) const {
  const TensorInfo& t = info(name);
  const size_t elem = row(t.dtype).size;
  const auto options = torch::TensorOptions().dtype(row(t.dtype).torch_type).device(torch::kCPU);
  // data_ + begin is inside the mapping: open() checked begin <= end <= data_size_.
  auto* ptr = const_cast<uint8_t*>(data_ + t.begin);
  if (t.begin == t.end || reinterpret_cast<uintptr_t>(ptr) % elem != 0) {
    auto out = torch::empty(t.shape, options);
    if (t.end > t.begin) std::memcpy(out.data_ptr(), ptr, t.end - t.begin);
    return out;
  }
  std::shared_ptr<Mapping> keep = mapping_;
  return torch::from_blob(
      ptr, t.shape, [keep](void*) {}, options);
}

// ---- writing ----------------------------------------------------------------------------

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> contiguous;
  contiguous.reserve(tensors.size());
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == "__metadata__")
      throw Error("invalid tensor name '" + name + "'").at(path).hint("names must be non-empty and not __metadata__");
    if (!names.insert(name).second) throw Error("tensor '" + name + "' given twice").at(path);
    if (!tensor.defined()) throw Error("tensor '" + name + "' is undefined").at(path);
    const StDtype dtype = torch_to_st_dtype(tensor.scalar_type());
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * row(dtype).size;
    nlohmann::ordered_json entry;
    entry["dtype"] = row(dtype).name;
    entry["shape"] = t.sizes().vec();
    entry["data_offsets"] = {offset, offset + nbytes};
    header[name] = std::move(entry);
    offset += nbytes;
    contiguous.push_back(std::move(t));
  }
  std::string header_text = header.dump();
  // Pad with spaces so that the data section starts 8-byte aligned, as the reference writer does.
  while ((8 + header_text.size()) % 8 != 0) header_text.push_back(' ');

  AtomicFileWriter out(path);
  uint8_t len[8];
  uint64_t n = header_text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>((n >> (8 * i)) & 0xFF);
  out.write(len, 8);
  out.write(header_text.data(), header_text.size());
  for (const auto& t : contiguous) {
    out.write(t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
  }
  out.commit();
}

// ---- checkpoints (single file or sharded) -------------------------------------------------

SafeTensorsCheckpoint SafeTensorsCheckpoint::open(const std::string& path) {
  SafeTensorsCheckpoint ckpt;
  fs::path p(path);
  fs::path index_path;
  // The non-throwing filesystem calls: a name the OS refuses (too long, a loop of links) is an
  // Error naming it, not a std::filesystem_error escaping from a loader.
  auto exists = [](const fs::path& f, const std::string& where) {
    std::error_code ec;
    const bool yes = fs::exists(f, ec);
    if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory)
      throw Error("cannot look up '" + f.filename().string().substr(0, 80) + "': " + ec.message()).at(where);
    return yes;
  };
  std::error_code dir_ec;
  if (fs::is_directory(p, dir_ec)) {
    if (exists(p / "model.safetensors.index.json", path)) {
      index_path = p / "model.safetensors.index.json";
    } else if (exists(p / "model.safetensors", path)) {
      p = p / "model.safetensors";
    } else {
      throw Error("no model.safetensors or model.safetensors.index.json in the directory")
          .at(path)
          .hint(
              "point to a Hugging Face model directory with safetensors weights "
              "(convert .bin checkpoints with transformers' save_pretrained(safe_serialization=True))");
    }
  } else if (p.extension() == ".json") {
    index_path = p;
  }

  if (index_path.empty()) {
    ckpt.shards_.push_back(SafeTensorsFile::open(p.string()));
    for (const auto& t : ckpt.shards_[0].tensors()) ckpt.where_[t.name] = 0;
    return ckpt;
  }

  const json index = read_json_file(index_path.string());
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    throw Error("missing 'weight_map' object")
        .at(index_path.string())
        .hint("a sharded checkpoint index maps each tensor name to its shard file");
  }
  std::map<std::string, size_t> shard_of_file;
  const fs::path dir = index_path.parent_path();
  if (index["weight_map"].empty())
    throw Error("'weight_map' lists no tensors")
        .at(index_path.string())
        .hint("the index maps every tensor name to its shard file; save the model again");
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    if (!it.value().is_string())
      throw Error("weight_map['" + it.key() + "'] is not a file name").at(index_path.string());
    const std::string file = it.value().get<std::string>();
    if (file.find('/') != std::string::npos || file == "..")
      throw Error("weight_map['" + it.key() + "'] names '" + file + "' outside the checkpoint directory")
          .at(index_path.string());
    auto found = shard_of_file.find(file);
    if (found == shard_of_file.end()) {
      const fs::path shard = dir / file;
      if (!exists(shard, index_path.string() + ": weight_map['" + it.key() + "']"))
        throw Error("shard '" + file + "' (holding '" + it.key() + "') does not exist")
            .at(index_path.string())
            .hint("the download is incomplete; fetch every shard the index lists");
      ckpt.shards_.push_back(SafeTensorsFile::open(shard.string()));
      found = shard_of_file.emplace(file, ckpt.shards_.size() - 1).first;
    }
    if (!ckpt.shards_[found->second].contains(it.key()))
      throw Error("tensor '" + it.key() + "' is listed in the index but absent from shard '" + file + "'")
          .at(index_path.string());
    ckpt.where_[it.key()] = found->second;
  }
  return ckpt;
}

std::vector<std::string> SafeTensorsCheckpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, shard] : where_) out.push_back(name);
  return out;
}

const TensorInfo& SafeTensorsCheckpoint::info(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error("checkpoint has no tensor named '" + name + "'");
  return shards_[it->second].info(name);
}

torch::Tensor SafeTensorsCheckpoint::tensor(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error("checkpoint has no tensor named '" + name + "'");
  return shards_[it->second].tensor(name);
}

const std::string& SafeTensorsCheckpoint::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error("checkpoint has no tensor named '" + name + "'");
  return shards_[it->second].path();
}

void save_safetensors_checkpoint(const std::string& dir, const NamedTensors& tensors, uint64_t max_shard_bytes,
                                 const std::map<std::string, std::string>& metadata) {
  SELFRL_CHECK(max_shard_bytes > 0, "max_shard_bytes must be positive");
  fs::create_directories(dir);
  std::vector<NamedTensors> shards(1);
  uint64_t current = 0, total = 0;
  for (const auto& nt : tensors) {
    const uint64_t nbytes = static_cast<uint64_t>(nt.second.numel()) * nt.second.element_size();
    if (!shards.back().empty() && current + nbytes > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(nt);
    current += nbytes;
    total += nbytes;
  }
  const fs::path d(dir);
  // Remove the files of the other layout so that loaders never mix an old and a new one.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(d, ec)) {
    const std::string fname = entry.path().filename().string();
    const bool old_shard = fname.rfind("model-", 0) == 0 && fname.find("-of-") != std::string::npos &&
                           entry.path().extension() == ".safetensors";
    if (old_shard || fname == "model.safetensors.index.json" || fname == "model.safetensors")
      fs::remove(entry.path(), ec);
  }
  if (shards.size() == 1) {
    save_safetensors((d / "model.safetensors").string(), shards[0], metadata);
    return;
  }
  nlohmann::ordered_json index;
  index["metadata"] = {{"total_size", total}};
  index["weight_map"] = nlohmann::ordered_json::object();
  const size_t n = shards.size();
  for (size_t i = 0; i < n; ++i) {
    char fname[64];
    std::snprintf(fname, sizeof fname, "model-%05zu-of-%05zu.safetensors", i + 1, n);
    save_safetensors((d / fname).string(), shards[i], metadata);
    for (const auto& nt : shards[i]) index["weight_map"][nt.first] = fname;
  }
  write_text_file_atomic((d / "model.safetensors.index.json").string(), index.dump(2) + "\n");
}

}  // namespace selfrl::io
