// Data-parallel training and fault tolerance through `selfrl dist-selftest` (a tiny random
// Llama): 2 ranks under mpirun match one process on the same global batch; a dead or stalled
// rank makes the others exit non-zero naming it; a run killed with SIGKILL and resumed ends
// bit-identical to an uninterrupted run; partial or corrupt checkpoints are skipped.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "selfrl/io/safetensors.h"
#include "selfrl/trainers/checkpoint.h"
#include "dist_test_util.h"
#include "test_util.h"

namespace selfrl::test {
namespace {
namespace fs = std::filesystem;

// One process, no launcher variables: a world of one.
CommandResult run_single(const std::string& args) {
  return run_command("OMP_NUM_THREADS=1 timeout -s KILL 120 " + selfrl_cli() + " dist-selftest " + args);
}

CommandResult run_mpi(int np, const std::string& args) {
  return run_command(
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout -s KILL 120 mpirun "
      "--oversubscribe --bind-to none -np " +
      std::to_string(np) + " -x OMP_NUM_THREADS=1 -x MASTER_PORT=" + std::to_string(free_port()) + " " + selfrl_cli() +
      " dist-selftest " + args);
}

std::vector<double> read_losses(const std::string& dir) {
  std::ifstream f(dir + "/losses.json");
  EXPECT_TRUE(f.good()) << "no " << dir << "/losses.json";
  nlohmann::json j;
  f >> j;
  return j.get<std::vector<double>>();
}

// Largest absolute difference between two final.safetensors.
double max_weight_diff(const std::string& a, const std::string& b) {
  const auto fa = io::SafeTensorsFile::open(a + "/final.safetensors");
  const auto fb = io::SafeTensorsFile::open(b + "/final.safetensors");
  double m = 0;
  EXPECT_EQ(fa.names(), fb.names());
  for (const auto& n : fa.names()) m = std::max(m, (fa.tensor(n) - fb.tensor(n)).abs().max().item<double>());
  return m;
}

std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void expect_same_run(const std::string& a, const std::string& b, double tol) {
  const auto la = read_losses(a), lb = read_losses(b);
  ASSERT_EQ(la.size(), lb.size());
  for (size_t i = 0; i < la.size(); ++i) EXPECT_NEAR(la[i], lb[i], tol) << "step " << i;
  EXPECT_LE(max_weight_diff(a, b), tol);
}

TEST(DataParallel, SftTwoRanksMatchOneProcess) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed";
  TempDir t;
  // One process splits the global batch of 8 into 2 micro-batches; 2 ranks take 4 each.
  auto one = run_single("--trainer sft --steps 4 --global-batch 8 --grad-accum 2 --out " + t.file("one"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  auto two = run_mpi(2, "--trainer sft --steps 4 --global-batch 8 --out " + t.file("two"));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  expect_same_run(t.file("one"), t.file("two"), 1e-5);
  const auto l = read_losses(t.file("one"));
  EXPECT_LT(l.back(), l.front());  // it does learn
}

TEST(Zero1, MatchesPlainDataParallelBitForBitAndResumes) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed";
  TempDir t;
  const std::string args = "--trainer sft --steps 6 --global-batch 8 --save-every 2";
  auto plain = run_mpi(2, args + " --out " + t.file("plain"));
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  auto zero = run_mpi(2, args + " --zero 1 --out " + t.file("zero"));
  ASSERT_EQ(zero.exit_code, 0) << zero.output;
  // AdamW is elementwise: the owner of a parameter computes exactly what every rank computes
  // without sharding.
  EXPECT_EQ(read_losses(t.file("plain")), read_losses(t.file("zero")));
  EXPECT_EQ(file_bytes(t.file("plain") + "/final.safetensors"), file_bytes(t.file("zero") + "/final.safetensors"));
  // The checkpoint holds every rank's share of the moments, as without sharding.
  EXPECT_EQ(file_bytes(t.file("plain") + "/checkpoint-6/optimizer.safetensors"),
            file_bytes(t.file("zero") + "/checkpoint-6/optimizer.safetensors"));
  auto killed = run_mpi(2, args + " --zero 1 --kill-self-at-step 2 --out " + t.file("killed"));
  ASSERT_NE(killed.exit_code, 0);
  auto resumed = run_mpi(2, args + " --zero 1 --resume --out " + t.file("killed"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(file_bytes(t.file("zero") + "/final.safetensors"), file_bytes(t.file("killed") + "/final.safetensors"));
}

class GrpoParity : public ::testing::TestWithParam<std::string> {};

TEST_P(GrpoParity, TwoRanksMatchOneProcess) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed";
  TempDir t;
  // Sampling seeds follow the prompt's index in the global batch, so both runs draw the same
  // completions; the normalization over ranks is what is under test.
  const std::string args = "--trainer grpo --steps 3 --global-batch 4 " + GetParam();
  auto one = run_single(args + " --out " + t.file("one"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  auto two = run_mpi(2, args + " --out " + t.file("two"));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  expect_same_run(t.file("one"), t.file("two"), 1e-5);
}

TEST(DataParallel, GrpoMicroBatchesOnRanksMatchOneBatch) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed";
  TempDir t;
  // bnpo and grpo normalize per micro-batch in TRL; with a world the normalizers are global, so
  // 2 ranks × 2 micro-batches equal one process with one batch.
  for (const std::string lt : {"bnpo", "grpo"}) {
    const std::string args = "--trainer grpo --steps 2 --global-batch 4 --loss-type " + lt;
    auto one = run_single(args + " --grad-accum 1 --out " + t.file("one" + lt));
    ASSERT_EQ(one.exit_code, 0) << one.output;
    auto two = run_mpi(2, args + " --grad-accum 2 --out " + t.file("two" + lt));
    ASSERT_EQ(two.exit_code, 0) << two.output;
    expect_same_run(t.file("one" + lt), t.file("two" + lt), 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(LossTypes, GrpoParity,
                         ::testing::Values("--loss-type dapo", "--loss-type grpo", "--loss-type bnpo",
                                           "--loss-type dr_grpo", "--loss-type dapo --scale-rewards batch"));

// Two ranks started by hand as torchrun would (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT);
// rank 1 is stopped once rank 0 is done when `stop_rank1` (it may be stalled on purpose).
// Returns rank 0's result and rank 1's output.
std::pair<CommandResult, std::string> run_pair(const TempDir& t, const std::string& args, bool stop_rank1 = true) {
  const std::string env =
      "OMP_NUM_THREADS=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(free_port()) + " WORLD_SIZE=2 ";
  const std::string cmd = selfrl_cli() + " dist-selftest --out " + t.file("out") + " " + args;
  const std::string script = env + "RANK=1 LOCAL_RANK=1 timeout -s KILL 60 " + cmd + " > " + t.file("rank1.log") +
                             " 2>&1 & P1=$!; " + env + "RANK=0 LOCAL_RANK=0 timeout -s KILL 60 " + cmd + "; RC=$?; " +
                             (stop_rank1 ? "kill -TERM $P1 2>/dev/null; " : "") + "wait $P1; exit $RC";
  auto r0 = run_command("bash -c '" + script + "'");
  std::ifstream f(t.file("rank1.log"));
  return {r0, std::string(std::istreambuf_iterator<char>(f), {})};
}

TEST(NoHangs, ADeadRankIsNamedByTheOthers) {
  TempDir t;
  auto [r0, log1] = run_pair(t, "--trainer sft --steps 6 --die-rank 1 --fault-step 2 --timeout-ms 20000");
  EXPECT_NE(r0.exit_code, 0) << r0.output;
  EXPECT_NE(r0.output.find("rank(s) 1 did not arrive"), std::string::npos) << r0.output;
  EXPECT_NE(r0.output.find("step 2"), std::string::npos) << r0.output;
}

TEST(NoHangs, AStalledRankIsNamedWithinTheTimeout) {
  TempDir t;
  auto [r0, log1] = run_pair(t, "--trainer sft --steps 6 --stall-rank 1 --fault-step 3 --timeout-ms 3000");
  EXPECT_NE(r0.exit_code, 0) << r0.output;
  EXPECT_NE(r0.output.find("rank(s) 1 did not arrive within 3 s"), std::string::npos) << r0.output;
  EXPECT_NE(r0.output.find("SFT token count (collective"), std::string::npos) << r0.output;
  EXPECT_NE(r0.output.find("step 3"), std::string::npos) << r0.output;
}

TEST(NoHangs, ADeadRankZeroIsNamedByTheOthers) {
  TempDir t;
  auto [r0, log1] = run_pair(t, "--trainer sft --steps 6 --die-rank 0 --fault-step 2 --timeout-ms 20000", false);
  EXPECT_NE(r0.exit_code, 0);
  EXPECT_NE(log1.find("rank 0, which hosts the rendezvous store"), std::string::npos) << log1;
  EXPECT_NE(log1.find("error"), std::string::npos) << log1;
}

TEST(Resume, KilledAndResumedRunIsBitIdentical) {
  TempDir t;
  const std::string args = "--trainer grpo --steps 6 --global-batch 2 --save-every 2 --keep-last 2";
  auto full = run_single(args + " --out " + t.file("full"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  // SIGKILL after step index 4: checkpoint-4 is the newest, step 4's update is lost.
  auto killed = run_single(args + " --kill-self-at-step 4 --out " + t.file("killed"));
  ASSERT_NE(killed.exit_code, 0);
  EXPECT_FALSE(fs::exists(t.file("killed") + "/final.safetensors"));
  ASSERT_EQ(checkpoint::find_latest_complete(t.file("killed")).value_or(""), t.file("killed") + "/checkpoint-4");
  auto resumed = run_single(args + " --resume --out " + t.file("killed"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from"), std::string::npos) << resumed.output;
  EXPECT_EQ(read_losses(t.file("full")), read_losses(t.file("killed")));
  EXPECT_EQ(file_bytes(t.file("full") + "/final.safetensors"), file_bytes(t.file("killed") + "/final.safetensors"));
  // keep_last 2: checkpoint-2 was removed when checkpoint-6 was written.
  EXPECT_FALSE(fs::exists(t.file("killed") + "/checkpoint-2"));
  EXPECT_TRUE(fs::exists(t.file("killed") + "/checkpoint-6/COMPLETE"));
  EXPECT_TRUE(fs::exists(t.file("killed") + "/checkpoint-6/config.json"));
  EXPECT_TRUE(fs::exists(t.file("killed") + "/checkpoint-6/model.safetensors"));
}

TEST(Resume, TwoRankRunKilledAndResumedIsBitIdentical) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed";
  TempDir t;
  const std::string args = "--trainer sft --steps 6 --global-batch 8 --save-every 2";
  auto full = run_mpi(2, args + " --out " + t.file("full"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  auto killed = run_mpi(2, args + " --kill-self-at-step 3 --out " + t.file("killed"));
  ASSERT_NE(killed.exit_code, 0);
  auto resumed = run_mpi(2, args + " --resume --out " + t.file("killed"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("checkpoint-4"), std::string::npos) << resumed.output;
  EXPECT_EQ(read_losses(t.file("full")), read_losses(t.file("killed")));
  EXPECT_EQ(file_bytes(t.file("full") + "/final.safetensors"), file_bytes(t.file("killed") + "/final.safetensors"));
}

TEST(Resume, PartialAndCorruptCheckpointsAreSkippedWithAWarning) {
  TempDir t;
  const std::string args = "--trainer sft --steps 6 --global-batch 4 --save-every 2 --keep-last 3";
  auto full = run_single(args + " --out " + t.file("full"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  auto killed = run_single(args + " --kill-self-at-step 3 --out " + t.file("run"));
  ASSERT_NE(killed.exit_code, 0);
  const fs::path run = t.file("run");
  // A half-written checkpoint (no COMPLETE marker) and one whose weights were truncated.
  fs::copy(run / "checkpoint-4", run / "checkpoint-6", fs::copy_options::recursive);
  fs::remove(run / "checkpoint-6" / "COMPLETE");
  fs::copy(run / "checkpoint-4", run / "checkpoint-8", fs::copy_options::recursive);
  fs::resize_file(run / "checkpoint-8" / "model.safetensors", 100);
  // And a stray temporary directory of a crashed writer.
  fs::create_directories(run / "checkpoint-10.tmp-999");
  EXPECT_NE(checkpoint::check_complete((run / "checkpoint-6").string()).find("no COMPLETE"), std::string::npos);
  EXPECT_NE(checkpoint::check_complete((run / "checkpoint-8").string()).find("model.safetensors"), std::string::npos);
  EXPECT_EQ(checkpoint::check_complete((run / "checkpoint-4").string()), "");

  auto resumed = run_single(args + " --resume --out " + run.string());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("skipping " + (run / "checkpoint-8").string()), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("skipping " + (run / "checkpoint-6").string()), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + (run / "checkpoint-4").string()), std::string::npos)
      << resumed.output;
  EXPECT_EQ(file_bytes(t.file("full") + "/final.safetensors"), file_bytes(run / "final.safetensors"));
  EXPECT_FALSE(fs::exists(run / "checkpoint-10.tmp-999"));
}

}  // namespace
}  // namespace selfrl::test
