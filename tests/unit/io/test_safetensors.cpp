// safetensors: round trips, zero-copy reads, sharded checkpoints, and hostile files that must
// fail with an error naming the file and the problem.
#include "selfrl/io/safetensors.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "test_util.h"

namespace fs = std::filesystem;
using selfrl::io::SafeTensorsCheckpoint;
using selfrl::io::SafeTensorsFile;
using selfrl::test::TempDir;

namespace {

// A file assembled by hand: 8-byte little-endian length, header text, data bytes.
std::string raw_file(const std::string& header, const std::string& data, int64_t length_override = -1) {
  const uint64_t n = length_override >= 0 ? static_cast<uint64_t>(length_override) : header.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header + data;
}

std::string write_raw(const TempDir& dir, const std::string& header, const std::string& data,
                      int64_t length_override = -1) {
  const std::string path = dir.file("hostile.safetensors");
  selfrl::test::write_bytes(path, raw_file(header, data, length_override));
  return path;
}

}  // namespace

TEST(SafeTensors, RoundTripsEveryDtypeBitExactly) {
  TempDir dir;
  torch::manual_seed(0);
  selfrl::io::NamedTensors tensors = {
      {"f32", torch::randn({3, 5})},
      {"f16", torch::randn({4}).to(torch::kHalf)},
      {"bf16", torch::randn({2, 2, 2}).to(torch::kBFloat16)},
      {"f64", torch::randn({2}, torch::kDouble)},
      {"i64", torch::arange(-3, 7, torch::kLong)},
      {"i32", torch::arange(0, 9, torch::kInt).reshape({3, 3})},
      {"i16", torch::arange(-4, 4, torch::kShort)},
      {"i8", torch::arange(-5, 5, torch::kChar)},
      {"u8", torch::arange(0, 255, torch::kByte)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(3.5f)},
      {"empty", torch::zeros({0, 4})},
      {"strided", torch::arange(12, torch::kFloat).reshape({3, 4}).t()},  // non-contiguous input
  };
  const std::string path = dir.file("all.safetensors");
  selfrl::io::save_safetensors(path, tensors, {{"format", "pt"}, {"note", "x"}});
  const auto f = SafeTensorsFile::open(path);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "x");
  ASSERT_EQ(f.tensors().size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    const auto got = f.tensor(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(got, t.contiguous())) << name;
  }
  // Header is padded so that the data section starts 8-byte aligned.
  std::ifstream in(path, std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
}

TEST(SafeTensors, ReadsAreZeroCopyAndCopyOnWrite) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  selfrl::io::save_safetensors(path, {{"a", torch::ones({1024})}, {"b", torch::zeros({16})}});
  const auto f = SafeTensorsFile::open(path);
  auto a1 = f.tensor("a");
  auto a2 = f.tensor("a");
  EXPECT_EQ(a1.data_ptr(), a2.data_ptr());  // both views of the same mapping
  a1.mul_(2);                               // private mapping: visible through the mapping, never written to the file
  EXPECT_FLOAT_EQ(a2[0].item<float>(), 2.0f);
  const auto fresh = SafeTensorsFile::open(path);
  EXPECT_FLOAT_EQ(fresh.tensor("a")[0].item<float>(), 1.0f);
}

TEST(SafeTensors, TensorOutlivesTheFileObject) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  selfrl::io::save_safetensors(path, {{"a", torch::arange(100, torch::kFloat)}});
  torch::Tensor kept;
  {
    const auto f = SafeTensorsFile::open(path);
    kept = f.tensor("a");
  }
  EXPECT_FLOAT_EQ(kept[99].item<float>(), 99.0f);
}

TEST(SafeTensors, MisalignedDataIsCopiedNotMisread) {
  TempDir dir;
  // Header of odd length (no padding) puts the F32 data at file offset 8 + 59: not 4-aligned.
  std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  while ((8 + header.size()) % 4 == 0) header.push_back(' ');
  float vals[2] = {1.5f, -2.25f};
  const std::string data(reinterpret_cast<const char*>(vals), 8);
  const std::string path = write_raw(dir, header, data);
  const auto f = SafeTensorsFile::open(path);
  const auto x = f.tensor("x");
  EXPECT_FLOAT_EQ(x[0].item<float>(), 1.5f);
  EXPECT_FLOAT_EQ(x[1].item<float>(), -2.25f);
}

TEST(SafeTensors, ShardedCheckpointWithIndex) {
  TempDir dir;
  selfrl::io::NamedTensors tensors;
  for (int i = 0; i < 5; ++i) tensors.push_back({"layer." + std::to_string(i), torch::full({256}, float(i))});
  selfrl::io::save_safetensors_checkpoint(dir.path(), tensors, 2048);  // 1 KiB each: 2 per shard
  EXPECT_TRUE(fs::exists(dir.file("model.safetensors.index.json")));
  EXPECT_TRUE(fs::exists(dir.file("model-00001-of-00003.safetensors")));
  EXPECT_TRUE(fs::exists(dir.file("model-00003-of-00003.safetensors")));
  EXPECT_FALSE(fs::exists(dir.file("model.safetensors")));
  const auto ckpt = SafeTensorsCheckpoint::open(dir.path());
  EXPECT_EQ(ckpt.num_shards(), 3u);
  for (const auto& [name, t] : tensors) EXPECT_TRUE(torch::equal(ckpt.tensor(name), t)) << name;
  EXPECT_NE(ckpt.file_of("layer.4").find("model-00003-of-00003"), std::string::npos);

  // Saving again unsharded removes the stale shards and index.
  selfrl::io::save_safetensors_checkpoint(dir.path(), tensors);
  EXPECT_TRUE(fs::exists(dir.file("model.safetensors")));
  EXPECT_FALSE(fs::exists(dir.file("model.safetensors.index.json")));
  EXPECT_FALSE(fs::exists(dir.file("model-00001-of-00003.safetensors")));
  EXPECT_EQ(SafeTensorsCheckpoint::open(dir.path()).num_shards(), 1u);
}

TEST(SafeTensors, IndexNamingAMissingShardOrTensorFails) {
  TempDir dir;
  selfrl::io::save_safetensors(dir.file("model-00001-of-00002.safetensors"), {{"a", torch::ones({2})}});
  selfrl::test::write_bytes(dir.file("model.safetensors.index.json"),
                            R"({"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors",
                                "b":"model-00002-of-00002.safetensors"}})");
  EXPECT_SELFRL_ERROR(SafeTensorsCheckpoint::open(dir.path()), "model.safetensors.index.json",
                      "model-00002-of-00002.safetensors", "does not exist");
  selfrl::test::write_bytes(dir.file("model.safetensors.index.json"),
                            R"({"weight_map":{"zz":"model-00001-of-00002.safetensors"}})");
  EXPECT_SELFRL_ERROR(SafeTensorsCheckpoint::open(dir.path()), "'zz'", "absent from shard");
  selfrl::test::write_bytes(dir.file("model.safetensors.index.json"), R"({"weight_map":{"a":"../etc/passwd"}})");
  EXPECT_SELFRL_ERROR(SafeTensorsCheckpoint::open(dir.path()), "outside the checkpoint directory");
  selfrl::test::write_bytes(dir.file("model.safetensors.index.json"), "{\"weight_map\": {\n\"a\": }");
  EXPECT_SELFRL_ERROR(SafeTensorsCheckpoint::open(dir.path()), "model.safetensors.index.json:2:", "invalid JSON");
  TempDir empty;
  EXPECT_SELFRL_ERROR(SafeTensorsCheckpoint::open(empty.path()), "no model.safetensors");
}

// ---- hostile files ----------------------------------------------------------------------

TEST(SafeTensorsHostile, TooShortForHeaderLength) {
  TempDir dir;
  const std::string path = dir.file("short.safetensors");
  selfrl::test::write_bytes(path, "abc");
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(path), path, "shorter than the 8-byte header length");
  selfrl::test::write_bytes(path, "");
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(path), path, "0 bytes");
}

TEST(SafeTensorsHostile, HeaderLengthPastEndOfFile) {
  TempDir dir;
  const std::string path = write_raw(dir, "{}", "", 1000);
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(path), path, "runs past the end of the file");
}

TEST(SafeTensorsHostile, HugeHeaderLengthIsCapped) {
  TempDir dir;
  const std::string path = write_raw(dir, "{}", "", int64_t{1} << 60);
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(path), path, "exceeds the limit");
}

TEST(SafeTensorsHostile, MalformedJson) {
  TempDir dir;
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(write_raw(dir, R"({"a": {"dtype": "F32",)", "")), "not valid JSON");
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(write_raw(dir, "[1,2]", "")), "does not start with a JSON object");
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(write_raw(dir, std::string("{\"a\xff\": 1}"), "")), "not valid JSON");
}

TEST(SafeTensorsHostile, TruncatedDataSection) {
  TempDir dir;
  const std::string path = dir.file("t.safetensors");
  selfrl::io::save_safetensors(path, {{"a", torch::ones({64})}});
  const auto size = fs::file_size(path);
  fs::resize_file(path, size - 10);
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(path), path, "tensor 'a'", "extend past the data section");
}

TEST(SafeTensorsHostile, OffsetsOutOfRangeReversedOrInconsistent) {
  TempDir dir;
  const std::string data(16, '\0');
  EXPECT_SELFRL_ERROR(
      SafeTensorsFile::open(write_raw(dir, R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", data)),
      "extend past the data section");
  EXPECT_SELFRL_ERROR(
      SafeTensorsFile::open(write_raw(dir, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", data)),
      "reversed");
  EXPECT_SELFRL_ERROR(
      SafeTensorsFile::open(write_raw(dir, R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", data)),
      "span 16 bytes", "needs 12");
  EXPECT_SELFRL_ERROR(
      SafeTensorsFile::open(write_raw(dir, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", data)),
      "non-negative integers");
  EXPECT_SELFRL_ERROR(
      SafeTensorsFile::open(write_raw(dir, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", data)),
      "array of two integers");
}

TEST(SafeTensorsHostile, OverlappingTensors) {
  TempDir dir;
  const std::string data(16, '\0');
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(write_raw(dir, header, data)), "'a' and 'b' overlap");
}

TEST(SafeTensorsHostile, WrongDtypeSizesAndUnknownDtypes) {
  TempDir dir;
  const std::string data(8, '\0');
  // BF16 is 2 bytes per element: 2 elements cannot span 8 bytes.
  EXPECT_SELFRL_ERROR(
      SafeTensorsFile::open(write_raw(dir, R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,8]}})", data)),
      "dtype BF16", "needs 4");
  EXPECT_SELFRL_ERROR(
      SafeTensorsFile::open(write_raw(dir, R"({"a":{"dtype":"F128","shape":[1],"data_offsets":[0,8]}})", data)),
      "unsupported dtype 'F128'", "F32");
  EXPECT_SELFRL_ERROR(
      SafeTensorsFile::open(write_raw(dir, R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", data)), "'dtype'");
}

TEST(SafeTensorsHostile, ShapesWhoseProductOverflows) {
  TempDir dir;
  const std::string data(8, '\0');
  // 2^32 * 2^32 elements overflows 64 bits; the offsets must not be trusted.
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(write_raw(
                          dir, R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", data)),
                      "more elements than fit in 64 bits");
  // 2^62 elements fit in 64 bits but 2^62 * 4 bytes does not.
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(write_raw(
                          dir, R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}})", data)),
                      "too large");
  EXPECT_SELFRL_ERROR(
      SafeTensorsFile::open(write_raw(dir, R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}})", data)),
      "negative dimension");
  // A zero dimension makes the tensor empty however large the others are.
  const auto f = SafeTensorsFile::open(
      write_raw(dir, R"({"a":{"dtype":"F32","shape":[0,4611686018427387904],"data_offsets":[0,0]}})", data));
  EXPECT_EQ(f.tensor("a").numel(), 0);
}

TEST(SafeTensorsHostile, DuplicateNamesAndBadMetadata) {
  TempDir dir;
  const std::string data(8, '\0');
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(write_raw(dir,
                                                      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                                      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                                      data)),
                      "'a' is listed twice");
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(write_raw(dir, R"({"__metadata__":{"format":1}})", "")),
                      "__metadata__['format']");
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(
                          write_raw(dir, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}})", data)),
                      "unexpected field 'extra'");
}

TEST(SafeTensorsHostile, RandomGarbageNeverCrashes) {
  // Mutate a valid file byte by byte: every variant must either load or throw selfrl::Error.
  TempDir dir;
  const std::string good = dir.file("good.safetensors");
  selfrl::io::save_safetensors(good, {{"a", torch::arange(6, torch::kFloat)}, {"b", torch::ones({3}, torch::kLong)}});
  std::ifstream in(good, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::mt19937 rng(123);
  const std::string path = dir.file("mutant.safetensors");
  int loaded = 0, rejected = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::string m = bytes;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) m[rng() % std::min<size_t>(m.size(), 140)] = static_cast<char>(rng() % 256);
    if (trial % 7 == 0) m.resize(rng() % m.size());
    selfrl::test::write_bytes(path, m);
    try {
      const auto f = SafeTensorsFile::open(path);
      for (const auto& t : f.tensors()) (void)f.tensor(t.name).sum();
      ++loaded;
    } catch (const selfrl::Error& err) {
      EXPECT_NE(std::string(err.what()).find(path), std::string::npos) << err.what();
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 100);
  EXPECT_EQ(loaded + rejected, 400);
}

TEST(SafeTensors, WriterRejectsBadNamesAndDtypes) {
  TempDir dir;
  EXPECT_SELFRL_ERROR(
      selfrl::io::save_safetensors(dir.file("x.safetensors"), {{"a", torch::ones({1})}, {"a", torch::ones({1})}}),
      "'a' given twice");
  EXPECT_SELFRL_ERROR(selfrl::io::save_safetensors(dir.file("x.safetensors"), {{"__metadata__", torch::ones({1})}}),
                      "invalid tensor name");
  EXPECT_SELFRL_ERROR(
      selfrl::io::save_safetensors(dir.file("x.safetensors"), {{"c", torch::ones({1}, torch::kComplexFloat)}}),
      "cannot be stored in safetensors");
  EXPECT_FALSE(fs::exists(dir.file("x.safetensors")));  // nothing half-written left behind
  EXPECT_SELFRL_ERROR(selfrl::io::save_safetensors(dir.file("no/such/dir/x.safetensors"), {{"a", torch::ones({1})}}),
                      "cannot create file");
}
