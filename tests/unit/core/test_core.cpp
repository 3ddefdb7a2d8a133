// core: seeds, devices and dtypes, log levels, BLAS detection, host allocator tuning.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <cstring>
#include <set>

#include <malloc.h>

#include "selfrl/core/blas.h"
#include "selfrl/core/device.h"
#include "selfrl/core/host_allocator.h"
#include "selfrl/core/logging.h"
#include "selfrl/core/seed.h"
#include "test_util.h"

TEST(Seed, SplitMix64MatchesReferenceValues) {
  // Reference outputs of SplitMix64 seeded with 0 (state advanced by the golden gamma each
  // step), as in Vigna's splitmix64.c: next() = mix(state += 0x9E3779B97F4A7C15).
  EXPECT_EQ(selfrl::splitmix64(0), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(selfrl::splitmix64(0x9E3779B97F4A7C15ULL), 0x6E789E6AA1B965F4ULL);
}

TEST(Seed, DerivedStreamsAreDistinctAndStable) {
  std::set<uint64_t> seen;
  for (uint64_t rank = 0; rank < 64; ++rank) seen.insert(selfrl::derive_seed(42, {rank}));
  EXPECT_EQ(seen.size(), 64u);
  EXPECT_EQ(selfrl::derive_seed(42, {3, 7}), selfrl::derive_seed(42, {3, 7}));
  EXPECT_NE(selfrl::derive_seed(42, {3, 7}), selfrl::derive_seed(42, {7, 3}));
  EXPECT_NE(selfrl::derive_seed(42, {}), selfrl::derive_seed(43, {}));
}

TEST(Seed, SeedEverythingMakesTorchReproduciblePerRank) {
  selfrl::seed_everything(7, 0);
  const auto a = torch::rand({4});
  selfrl::seed_everything(7, 0);
  const auto b = torch::rand({4});
  selfrl::seed_everything(7, 1);
  const auto c = torch::rand({4});
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
}

TEST(Device, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(selfrl::parse_device("cpu"), c10::Device(c10::kCPU));
  EXPECT_EQ(selfrl::parse_device("CPU"), c10::Device(c10::kCPU));
  EXPECT_SELFRL_ERROR(selfrl::parse_device("gpu"), "unknown device 'gpu'", "cpu, cuda or cuda:N");
  EXPECT_SELFRL_ERROR(selfrl::parse_device("cuda:x"), "no valid index");
  if (!torch::cuda::is_available()) {
    EXPECT_SELFRL_ERROR(selfrl::parse_device("cuda:0"), "CUDA is not available");
  }
}

TEST(Device, ParsesDtypes) {
  EXPECT_EQ(selfrl::parse_dtype("float32"), c10::kFloat);
  EXPECT_EQ(selfrl::parse_dtype("fp32"), c10::kFloat);
  EXPECT_EQ(selfrl::parse_dtype("bf16"), c10::kBFloat16);
  EXPECT_EQ(selfrl::parse_dtype("bfloat16"), c10::kBFloat16);
  EXPECT_EQ(selfrl::parse_dtype("half"), c10::kHalf);
  EXPECT_EQ(selfrl::dtype_name(c10::kBFloat16), "bfloat16");
  EXPECT_SELFRL_ERROR(selfrl::parse_dtype("int4"), "unknown dtype 'int4'", "float32, bfloat16 or float16");
}

TEST(Logging, LevelsFilter) {
  const auto saved = selfrl::log_level();
  selfrl::set_log_level(selfrl::LogLevel::kWarn);
  EXPECT_FALSE(selfrl::log_enabled(selfrl::LogLevel::kInfo));
  EXPECT_TRUE(selfrl::log_enabled(selfrl::LogLevel::kError));
  selfrl::set_log_level(selfrl::LogLevel::kOff);
  EXPECT_FALSE(selfrl::log_enabled(selfrl::LogLevel::kError));
  selfrl::set_log_level(saved);
  EXPECT_EQ(selfrl::parse_log_level("warning"), selfrl::LogLevel::kWarn);
  EXPECT_SELFRL_ERROR(selfrl::parse_log_level("loud"), "unknown log level 'loud'");
}

TEST(Blas, SpinContentionNeedsTwoPoolsAndNoWaitPolicy) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) GTEST_SKIP() << "OMP_WAIT_POLICY is set for this run";
  (void)torch::mm(torch::ones({8, 8}), torch::ones({8, 8}));
  const auto info = selfrl::detect_blas();
  EXPECT_FALSE(selfrl::omp_spin_contention_likely(1));  // no OpenMP workers to spin
  EXPECT_EQ(selfrl::omp_spin_contention_likely(2), info.is_openblas && info.threads >= 2) << info.library;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);  // the user chose a policy: nothing to warn about
  EXPECT_FALSE(selfrl::omp_spin_contention_likely(2));
  ::unsetenv("OMP_WAIT_POLICY");
}

TEST(Blas, DetectsTheLoadedLibrary) {
  (void)torch::mm(torch::ones({8, 8}), torch::ones({8, 8}));
  const auto info = selfrl::detect_blas();
  // LibTorch from Debian links libblas.so.3; scripts/setup.sh points it at OpenBLAS.
  EXPECT_FALSE(info.library.empty());
  EXPECT_FALSE(info.is_openblas && info.is_reference) << info.library;
  EXPECT_GT(selfrl::measure_matmul_gflops(128, 3), 0.0);
}

// After tuning, an 8 MiB block (a prefill activation's size) comes from the heap, not from a
// fresh mmap (glibc's default threshold is at most 32 MiB, 128 KiB at start), and freeing it keeps
// its pages in the process. tests/integration/io/test_cli_inspect.cpp covers the opt-outs.
TEST(HostAllocator, TensorSizedBlocksComeFromTheHeapAndStayThere) {
  const auto t = selfrl::tune_host_allocator();
  if (!t.applied) GTEST_SKIP() << "not tuned here: " << t.reason;
  EXPECT_EQ(t.mmap_threshold, size_t{256} << 20);
  EXPECT_EQ(t.trim_threshold, size_t{1} << 30);
  EXPECT_EQ(t.describe(), "glibc, mmap threshold 256 MiB, trim threshold 1 GiB");
  EXPECT_TRUE(selfrl::tune_host_allocator().applied);  // once per process, same answer
  const auto before = mallinfo2();
  void* block = std::malloc(size_t{8} << 20);
  ASSERT_NE(block, nullptr);
  std::memset(block, 1, size_t{8} << 20);
  const auto held = mallinfo2();
  EXPECT_EQ(held.hblks, before.hblks) << "an 8 MiB block was mmapped";
  std::free(block);
  // The freed block stays in the heap: its 8 MiB are still held (arena) and free inside it.
  // (Against `held`, not `before`: the block may have come from a hole earlier tests left.)
  const auto after = mallinfo2();
  EXPECT_GE(after.arena, held.arena);
  EXPECT_GE(after.fordblks, held.fordblks + (size_t{8} << 20) - 4096);
}
