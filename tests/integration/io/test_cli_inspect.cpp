// `selfrl inspect` and the program's error handling, run as a user would.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "selfrl/io/safetensors.h"
#include "test_util.h"

using selfrl::test::run_command;
using selfrl::test::selfrl_cli;

TEST(CliInspect, ListsTensorsOfAShardedCheckpoint) {
  selfrl::test::TempDir dir;
  selfrl::io::save_safetensors_checkpoint(
      dir.path(), {{"a", torch::ones({300})}, {"b", torch::ones({2, 3}, torch::kBFloat16)}}, 1000);
  const auto r = run_command(selfrl_cli() + " --log-level error inspect " + dir.path() + " 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["num_shards"], 2);
  EXPECT_EQ(j["num_parameters"], 306);
  EXPECT_EQ(j["tensors"][1]["dtype"], "BF16");
  EXPECT_EQ(j["tensors"][1]["shape"], nlohmann::json({2, 3}));
}

TEST(CliInspect, CorruptFileExitsOneNamingTheFile) {
  selfrl::test::TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  selfrl::test::write_bytes(path, std::string("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", 13));
  const auto r = run_command(selfrl_cli() + " inspect " + path);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("selfrl: error: " + path), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("header length 16 runs past the end of the file"), std::string::npos) << r.output;
}

TEST(Cli, UnknownCommandsAndOptionsSuggest) {
  auto r = run_command(selfrl_cli() + " inspec x");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("did you mean 'inspect'?"), std::string::npos) << r.output;
  r = run_command(selfrl_cli() + " info --benchmrk");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("did you mean '--benchmark'?"), std::string::npos) << r.output;
  r = run_command(selfrl_cli() + " inspect");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("missing argument PATH"), std::string::npos) << r.output;
}

TEST(Cli, InfoReportsOpenBlas) {
  const auto r = run_command(selfrl_cli() + " info 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  // Debian's LibTorch runs on libblas.so.3, which scripts/setup.sh points at OpenBLAS; the
  // LibTorch of a PyTorch wheel carries MKL inside.
  EXPECT_EQ(j["blas"], at::hasMKL() ? "mkl" : "openblas")
      << "scripts/setup.sh should have selected OpenBLAS: " << r.output;
  if (j["blas"] != "openblas") return;
  // OpenBLAS keeps its own thread pool, apart from --threads: info shows its size, and
  // OPENBLAS_NUM_THREADS sets it.
  ASSERT_TRUE(j.contains("blas_threads")) << r.output;
  EXPECT_GE(j["blas_threads"].get<int>(), 1);
  const auto one = run_command("OPENBLAS_NUM_THREADS=1 " + selfrl_cli() + " info 2>/dev/null");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_EQ(nlohmann::json::parse(one.output)["blas_threads"], 1) << one.output;
}

// main() tunes glibc's malloc for tensor-sized blocks unless told not to or the environment
// already sets malloc's knobs (then the user's settings win).
TEST(Cli, InfoReportsTheHostAllocatorTuningAndItsOptOuts) {
  auto allocator = [](const std::string& env) {
    const auto r = run_command(env + " " + selfrl_cli() + " info 2>/dev/null");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return nlohmann::json::parse(r.output)["host_allocator"].get<std::string>();
  };
  const std::string clean =
      "env -u SELFRL_MALLOC_TUNING -u MALLOC_MMAP_THRESHOLD_ -u MALLOC_TRIM_THRESHOLD_ "
      "-u MALLOC_TOP_PAD_ -u GLIBC_TUNABLES";
  EXPECT_EQ(allocator(clean), "glibc, mmap threshold 256 MiB, trim threshold 1 GiB");
  EXPECT_EQ(allocator(clean + " SELFRL_MALLOC_TUNING=0"), "not tuned: SELFRL_MALLOC_TUNING=0");
  EXPECT_EQ(allocator(clean + " MALLOC_TOP_PAD_=1048576"), "not tuned: MALLOC_TOP_PAD_ is set in the environment");
  EXPECT_EQ(allocator(clean + " GLIBC_TUNABLES=glibc.malloc.mmap_threshold=65536"),
            "not tuned: GLIBC_TUNABLES sets malloc tunables");
}

// The CPU decode-attention passes: on unless SELFRL_FUSED_ATTENTION=0, and info says which
// vector loops run.
TEST(Cli, InfoReportsTheDecodeAttentionPasses) {
  auto attention = [](const std::string& env) {
    const auto r = run_command("env -u SELFRL_FUSED_ATTENTION " + env + " " + selfrl_cli() + " info 2>/dev/null");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return nlohmann::json::parse(r.output)["decode_attention"].get<std::string>();
  };
  const auto on = attention("");
  EXPECT_TRUE(on == "on, AVX2 loops" || on == "on, baseline vector loops") << on;
  EXPECT_EQ(attention("SELFRL_FUSED_ATTENTION=1"), on);
  EXPECT_EQ(attention("SELFRL_FUSED_ATTENTION=0").rfind("off (SELFRL_FUSED_ATTENTION=0", 0), 0u);
}

// --threads 2 next to OpenBLAS's own pool: a warning that names the fix, and none once the
// environment sets OMP_WAIT_POLICY.
TEST(Cli, WarnsWhenOpenMpWorkersWouldSpinAgainstOpenBlas) {
  const auto info = run_command(selfrl_cli() + " info 2>/dev/null");
  ASSERT_EQ(info.exit_code, 0) << info.output;
  const auto j = nlohmann::json::parse(info.output);
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || !j.contains("blas_threads") || j["blas_threads"].get<int>() < 2)
    GTEST_SKIP() << "needs OpenBLAS with >= 2 threads and OMP_WAIT_POLICY unset: " << info.output;
  selfrl::test::TempDir dir;
  const std::string demo = selfrl_cli() + " demo --quick --quiet --set stages= --out " + dir.path();
  const auto spin = run_command(demo + "/a --threads 2 2>&1");
  ASSERT_EQ(spin.exit_code, 0) << spin.output;
  EXPECT_NE(spin.output.find("OMP_WAIT_POLICY=PASSIVE"), std::string::npos) << spin.output;
  const auto passive = run_command("OMP_WAIT_POLICY=PASSIVE " + demo + "/b --threads 2 2>&1");
  ASSERT_EQ(passive.exit_code, 0) << passive.output;
  EXPECT_EQ(passive.output.find("OMP_WAIT_POLICY"), std::string::npos) << passive.output;
  const auto one = run_command(demo + "/c --threads 1 2>&1");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_EQ(one.output.find("OMP_WAIT_POLICY"), std::string::npos) << one.output;
}
