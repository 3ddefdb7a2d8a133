// Interoperability: files we write are read by an independent Python reader (Debian's
// python3-torch), and files that reader writes are read by us, bit-exactly.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "selfrl/io/safetensors.h"
#include "test_util.h"

namespace {

// Mirrors make_tensors() in tests/python/safetensors_reference.py.
selfrl::io::NamedTensors reference_tensors() {
  const auto base = torch::arange(24, torch::kDouble).reshape({2, 3, 4}) / 8 - 1;
  return {
      {"f64", base.clone()},
      {"f32", base.to(torch::kFloat)},
      {"f16", base.to(torch::kHalf)},
      {"bf16", base.to(torch::kBFloat16)},
      {"i64", torch::arange(-5, 5, torch::kLong) * int64_t{1000000007}},
      {"i32", torch::arange(-6, 6, torch::kInt).reshape({3, 4})},
      {"i16", torch::arange(-300, 300, 50, torch::kShort)},
      {"i8", torch::arange(-128, 128, 16, torch::kChar)},
      {"u8", torch::arange(0, 256, 5, torch::kByte)},
      {"bool", torch::tensor({true, false, false, true})},
      {"model.layers.0.self_attn.q_proj.weight", base[0].to(torch::kFloat)},
  };
}

std::string script() { return selfrl::test::source_dir() + "/tests/python/safetensors_reference.py"; }

}  // namespace

TEST(SafeTensorsPython, PythonReadsWhatWeWrite) {
  selfrl::test::TempDir dir;
  const std::string path = dir.file("ours.safetensors");
  selfrl::io::save_safetensors(path, reference_tensors(), {{"format", "pt"}});
  const auto r = selfrl::test::run_command(selfrl::test::python() + " " + script() + " check " + path);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ok: 11 tensors match"), std::string::npos) << r.output;
}

TEST(SafeTensorsPython, WeReadWhatPythonWrites) {
  selfrl::test::TempDir dir;
  const std::string path = dir.file("theirs.safetensors");
  const auto r = selfrl::test::run_command(selfrl::test::python() + " " + script() + " write " + path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto f = selfrl::io::SafeTensorsFile::open(path);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const auto want = reference_tensors();
  ASSERT_EQ(f.tensors().size(), want.size());
  for (const auto& [name, t] : want) {
    const auto got = f.tensor(name);
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(got, t)) << name;
  }
}
