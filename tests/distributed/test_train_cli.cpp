// `selfrl train` over dist::World and checkpoints, end to end through the program on a tiny
// random Llama (the loop fixture): `mpirun -np 2` matches one process on the same global batch
// (SFT and GRPO: losses and final weights within 1e-5); a run SIGKILLed mid-training and
// re-run with resume_from_checkpoint: auto ends with final weights bit-identical to an
// uninterrupted run (one process, SEC: GRPO + curriculum state; two ranks, GRPO); a corrupt
// newest checkpoint is skipped with a warning and the one before it used.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "../integration/loops/loop_fixture.h"
#include "selfrl/io/safetensors.h"
#include "selfrl/trainers/checkpoint.h"
#include "dist_test_util.h"
#include "test_util.h"

namespace selfrl::test {
namespace {
namespace fs = std::filesystem;

// The recipe every test starts from: the fixture's model and data, no TensorBoard.
std::string write_recipe(const TempDir& t, const std::string& name, const std::string& train, const std::string& body) {
  auto& f = loop_fixture();
  const std::string path = t.file(name + ".yaml");
  std::ofstream(path) << "model: " << f.model << "\nseed: 7\nthreads: 1\nreport_to_tensorboard: false\n"
                      << "max_completion_length: 6\nlr_scheduler_type: constant\nlogging_steps: 1\n"
                      << "data:\n  train: " << train << "\n  eval: " << f.eval
                      << (name == "sft" ? "\n  completion_field: answer" : "")
                      << "\neval:\n  max_samples: 2\n  samples: 1\n"
                      << body;
  return path;
}

// `kill_at_step` > 0 runs the test program that is `selfrl train` plus a SIGKILL right after
// that train step (tests/support/programs/train_killed_at_step.cpp). Every run is under
// `timeout` so that a hang never outlives the test: one process gets SIGKILL after 60 s;
// mpirun gets SIGTERM after 50 s (it then kills its ranks) and SIGKILL 5 s later.
std::string train_program(int kill_at_step) {
  return kill_at_step > 0 ? std::string(SELFRL_TRAIN_KILLED_AT_STEP_PATH) + " " + std::to_string(kill_at_step) + " "
                          : selfrl_cli() + " train ";
}

CommandResult train_single(const std::string& recipe, const std::string& overrides, int kill_at_step = 0) {
  return run_command("OMP_NUM_THREADS=1 timeout -s KILL 60 " + train_program(kill_at_step) + recipe +
                     " --no-progress " + overrides);
}

// The `mpirun -np N` command line of a run (under `timeout`, limit_s seconds).
std::string mpi_command(int np, const std::string& recipe, const std::string& overrides, int kill_at_step = 0,
                        int limit_s = 50) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout -k 5 " + std::to_string(limit_s) +
         " mpirun --oversubscribe --bind-to none -np " + std::to_string(np) +
         " -x OMP_NUM_THREADS=1 -x MASTER_PORT=" + std::to_string(free_port()) + " " + train_program(kill_at_step) +
         recipe + " --no-progress " + overrides;
}

CommandResult train_mpi(int np, const std::string& recipe, const std::string& overrides, int kill_at_step = 0) {
  return run_command(mpi_command(np, recipe, overrides, kill_at_step));
}

std::vector<nlohmann::json> train_lines(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::ifstream in(out + "/metrics.jsonl");
  EXPECT_TRUE(in.good()) << "no " << out << "/metrics.jsonl";
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    if (j["kind"] != "iteration") v.push_back(j);
  }
  return v;
}

std::vector<nlohmann::json> iteration_lines(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::ifstream in(out + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    if (j["kind"] == "iteration") v.push_back(j);
  }
  return v;
}

// gen/prompts_this_rank of every iteration line that has it (rank 0's count).
std::vector<int64_t> prompts_sampled(const std::string& out) {
  std::vector<int64_t> v;
  for (const auto& j : iteration_lines(out))
    if (j.contains("gen/prompts_this_rank")) v.push_back(j["gen/prompts_this_rank"].get<int64_t>());
  return v;
}

double max_weight_diff(const std::string& a, const std::string& b) {
  const auto fa = io::SafeTensorsFile::open(a + "/final/model.safetensors");
  const auto fb = io::SafeTensorsFile::open(b + "/final/model.safetensors");
  EXPECT_EQ(fa.names(), fb.names());
  double m = 0;
  for (const auto& n : fa.names()) m = std::max(m, (fa.tensor(n) - fb.tensor(n)).abs().max().item<double>());
  return m;
}

std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << "cannot read " << path;
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Same number of train steps, the same losses within tol; final weights within tol.
void expect_same_training(const std::string& a, const std::string& b, double tol) {
  const auto la = train_lines(a), lb = train_lines(b);
  ASSERT_EQ(la.size(), lb.size());
  ASSERT_FALSE(la.empty());
  double worst = 0;
  for (size_t i = 0; i < la.size(); ++i) {
    ASSERT_TRUE(la[i]["loss"].is_number()) << la[i].dump();
    const double d = std::abs(la[i]["loss"].get<double>() - lb[i]["loss"].get<double>());
    worst = std::max(worst, d);
    EXPECT_LE(d, tol) << "step " << la[i]["step"];
  }
  const double w = max_weight_diff(a, b);
  std::printf("[ measured ] max |loss diff| %.3g over %zu steps, max |weight diff| %.3g\n", worst, la.size(), w);
  EXPECT_LE(w, tol);
  // Not vacuous: training moved the weights well beyond the tolerance, and some loss is non-zero.
  const auto base = io::SafeTensorsFile::open(loop_fixture().model + "/model.safetensors");
  const auto fin = io::SafeTensorsFile::open(a + "/final/model.safetensors");
  double moved = 0, any_loss = 0;
  for (const auto& n : base.names())
    moved = std::max(moved, (base.tensor(n) - fin.tensor(n)).abs().max().item<double>());
  for (const auto& l : la) any_loss = std::max(any_loss, std::abs(l["loss"].get<double>()));
  std::printf("[ measured ] weights moved by up to %.3g, max |loss| %.3g\n", moved, any_loss);
  EXPECT_GT(moved, 1e-3);
  EXPECT_GT(any_loss, 1e-4);
}

TEST(TrainCli, SftTwoRanksMatchOneProcess) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed";
  TempDir t;
  const auto recipe =
      write_recipe(t, "sft", loop_fixture().train, "trainer: sft\nnum_train_epochs: 3\nlearning_rate: 1.0e-3\n");
  // Global batch 4: one process 2 x 2 micro-batches, two ranks 2 each.
  auto one = train_single(
      recipe, "output_dir=" + t.file("one") + " per_device_train_batch_size=2 gradient_accumulation_steps=2");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  auto two = train_mpi(2, recipe,
                       "output_dir=" + t.file("two") + " per_device_train_batch_size=2 gradient_accumulation_steps=1");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NE(two.output.find("selfrl train: 2 ranks"), std::string::npos) << two.output;
  expect_same_training(t.file("one"), t.file("two"), 1e-5);
  EXPECT_EQ(train_lines(t.file("one")).size(), 6u);  // 8 rows / 4 x 3 epochs
  // Rank 1 wrote nothing of its own: one metrics file, one final model, no stray files.
  EXPECT_TRUE(fs::exists(t.file("two") + "/final/tokenizer.model"));
}

TEST(TrainCli, GrpoTwoRanksMatchOneProcess) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed";
  TempDir t;
  // Sampling at temperature 1: prompt p of a step samples with the seed one process gives it,
  // whichever rank holds it, so the rollouts (and rewards) are the same on 1 and 2 ranks.
  const auto recipe = write_recipe(t, "grpo", loop_fixture().unlabelled,
                                   "trainer: grpo\nreward_funcs: [consensus]\nnum_generations: 4\nmax_steps: 3\n"
                                   "learning_rate: 1.0e-3\nbeta: 0.04\n");
  auto one = train_single(
      recipe, "output_dir=" + t.file("one") + " per_device_train_batch_size=4 gradient_accumulation_steps=2");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  auto two = train_mpi(2, recipe,
                       "output_dir=" + t.file("two") + " per_device_train_batch_size=4 gradient_accumulation_steps=1");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  expect_same_training(t.file("one"), t.file("two"), 1e-5);
  EXPECT_NE(two.output.find("selfrl train: 2 ranks"), std::string::npos) << two.output;
  const auto a = train_lines(t.file("one")), b = train_lines(t.file("two"));
  for (size_t i = 0; i < a.size(); ++i)
    std::printf("[ measured ] step %zu reward %g loss %g\n", i, a[i]["reward"].get<double>(),
                a[i]["loss"].get<double>());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i]["reward"].get<double>(), b[i]["reward"].get<double>(), 1e-9);
}

TEST(TrainCli, RestEmLoopTwoRanksMatchOneProcess) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed";
  TempDir t;
  // Sampling (Grow) is sharded: 8 prompts x 4 samples in waves of 2 prompts (generation_batch_size
  // 8), two waves per rank, gathered on every rank; the SFT (Improve) step is sharded; evaluation
  // runs on rank 0 only while rank 1 waits at the next collective.
  const auto recipe = write_recipe(t, "rest_em", loop_fixture().train,
                                   "loop: rest_em\niterations: 2\nrest_em:\n  num_samples: 4\n  reward_threshold: 0.0\n"
                                   "  from_base: false\nlearning_rate: 1.0e-3\ngeneration_batch_size: 8\n");
  auto one = train_single(
      recipe, "output_dir=" + t.file("one") + " per_device_train_batch_size=2 gradient_accumulation_steps=2");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  auto two = train_mpi(2, recipe,
                       "output_dir=" + t.file("two") + " per_device_train_batch_size=2 gradient_accumulation_steps=1");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  expect_same_training(t.file("one"), t.file("two"), 1e-5);
  EXPECT_EQ(prompts_sampled(t.file("one")), (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(prompts_sampled(t.file("two")), (std::vector<int64_t>{4, 4}));  // rank 0 sampled half
}

TEST(TrainCli, ScpoLoopTwoRanksMatchOneProcess) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed";
  TempDir t;
  // The votes' samples sharded (6 prompts in waves of 2: one wave on rank 0, two on rank 1) and
  // gathered; pair building replicated on every rank, the DPO (ScPO) steps sharded by pairs.
  const auto recipe = write_recipe(t, "scpo", loop_fixture().unlabelled,
                                   "loop: scpo\niterations: 2\nscpo:\n  num_samples: 4\n  min_vote_share: 0.0\n"
                                   "learning_rate: 1.0e-3\ngeneration_batch_size: 8\n");
  auto one = train_single(
      recipe, "output_dir=" + t.file("one") + " per_device_train_batch_size=1 gradient_accumulation_steps=2");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  auto two = train_mpi(2, recipe,
                       "output_dir=" + t.file("two") + " per_device_train_batch_size=1 gradient_accumulation_steps=1");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  expect_same_training(t.file("one"), t.file("two"), 1e-5);
  EXPECT_EQ(prompts_sampled(t.file("one")), (std::vector<int64_t>{6, 6}));
  EXPECT_EQ(prompts_sampled(t.file("two")), (std::vector<int64_t>{2, 2}));
}

// SEC (GRPO + curriculum): 6 steps, a checkpoint every 2, an iteration (eval) every 3, so
// checkpoint-4 lies inside iteration 2.
std::string sec_recipe(const TempDir& t, int keep) {
  return write_recipe(t, "sec", loop_fixture().train,
                      "loop: sec\nreward_funcs: [consensus]\nnum_generations: 4\nper_device_train_batch_size: 8\n"
                      "max_steps: 6\neval_steps: 3\nsave_steps: 2\nsave_total_limit: " +
                          std::to_string(keep) + "\nlearning_rate: 1.0e-3\nresume_from_checkpoint: auto\n");
}

void expect_bit_identical(const std::string& full, const std::string& resumed) {
  EXPECT_EQ(file_bytes(full + "/final/model.safetensors"), file_bytes(resumed + "/final/model.safetensors"));
  const auto a = train_lines(full), b = train_lines(resumed);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["step"], b[i]["step"]);
    EXPECT_EQ(a[i]["loss"], b[i]["loss"]) << "step " << a[i]["step"];
    if (a[i].contains("reward")) EXPECT_EQ(a[i]["reward"], b[i]["reward"]) << "step " << a[i]["step"];
  }
}

TEST(TrainCli, KilledRunResumesBitIdentical) {
  TempDir t;
  const auto recipe = sec_recipe(t, 2);
  auto full = train_single(recipe, "output_dir=" + t.file("full"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  // SIGKILL after step 5: checkpoint-4 (inside iteration 2) is the newest; step 5 is lost.
  auto killed = train_single(recipe, "output_dir=" + t.file("run"), 5);
  ASSERT_NE(killed.exit_code, 0) << killed.output;
  ASSERT_FALSE(fs::exists(t.file("run") + "/final"));
  ASSERT_EQ(checkpoint::find_latest_complete(t.file("run")).value_or(""), t.file("run") + "/checkpoint-4");
  EXPECT_TRUE(fs::exists(t.file("run") + "/checkpoint-4/tokenizer.model"));
  const auto st = nlohmann::json::parse(file_bytes(t.file("run") + "/checkpoint-4/trainer_state.json"));
  EXPECT_TRUE(st["extra"]["loop"].contains("sec_q")) << st.dump();
  auto resumed = train_single(recipe, "output_dir=" + t.file("run"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + t.file("run") + "/checkpoint-4"), std::string::npos)
      << resumed.output;
  expect_bit_identical(t.file("full"), t.file("run"));
  // save_total_limit 2: checkpoint-2 went when checkpoint-6 was written.
  EXPECT_FALSE(fs::exists(t.file("run") + "/checkpoint-2"));
  EXPECT_TRUE(fs::exists(t.file("run") + "/checkpoint-6/COMPLETE"));
}

TEST(TrainCli, CorruptNewestCheckpointIsSkippedWithAWarning) {
  TempDir t;
  const auto recipe = sec_recipe(t, 0);
  auto full = train_single(recipe, "output_dir=" + t.file("full"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  auto killed = train_single(recipe, "output_dir=" + t.file("run"), 5);
  ASSERT_NE(killed.exit_code, 0) << killed.output;
  const fs::path run = t.file("run");
  fs::resize_file(run / "checkpoint-4" / "model.safetensors", 100);  // truncated weights
  fs::copy(run / "checkpoint-2", run / "checkpoint-5", fs::copy_options::recursive);
  fs::remove(run / "checkpoint-5" / "COMPLETE");  // half-written
  auto resumed = train_single(recipe, "output_dir=" + run.string());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("skipping " + (run / "checkpoint-5").string()), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("skipping " + (run / "checkpoint-4").string()), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + (run / "checkpoint-2").string()), std::string::npos)
      << resumed.output;
  expect_bit_identical(t.file("full"), run.string());
}

TEST(TrainCli, KilledSftRunResumesInsideItsPassBitIdentical) {
  TempDir t;
  // 6 steps in one pass (3 epochs x 2 batches); a checkpoint every 2 steps; killed after step 3.
  const auto recipe =
      write_recipe(t, "sft", loop_fixture().train,
                   "trainer: sft\nnum_train_epochs: 3\nlearning_rate: 1.0e-3\nper_device_train_batch_size: 4\n"
                   "save_steps: 2\nresume_from_checkpoint: auto\n");
  auto full = train_single(recipe, "output_dir=" + t.file("full"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  auto killed = train_single(recipe, "output_dir=" + t.file("run"), 3);
  ASSERT_NE(killed.exit_code, 0) << killed.output;
  ASSERT_EQ(checkpoint::find_latest_complete(t.file("run")).value_or(""), t.file("run") + "/checkpoint-2");
  auto resumed = train_single(recipe, "output_dir=" + t.file("run"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + t.file("run") + "/checkpoint-2"), std::string::npos)
      << resumed.output;
  expect_bit_identical(t.file("full"), t.file("run"));
  EXPECT_EQ(train_lines(t.file("run")).size(), 6u);
}

TEST(TrainCli, TwoRankRunKilledAndResumedIsBitIdentical) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed";
  TempDir t;
  const auto recipe =
      write_recipe(t, "grpo", loop_fixture().unlabelled,
                   "trainer: grpo\nreward_funcs: [consensus]\nnum_generations: 4\nper_device_train_batch_size: 4\n"
                   "max_steps: 4\nsave_steps: 2\nlearning_rate: 1.0e-3\nresume_from_checkpoint: auto\n");
  auto full = train_mpi(2, recipe, "output_dir=" + t.file("full"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  // Every rank SIGKILLs itself after step 3 (the whole run dies); checkpoint-2 survives.
  auto killed = train_mpi(2, recipe, "output_dir=" + t.file("run"), 3);
  ASSERT_NE(killed.exit_code, 0) << killed.output;
  ASSERT_FALSE(fs::exists(t.file("run") + "/final"));
  auto resumed = train_mpi(2, recipe, "output_dir=" + t.file("run"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + t.file("run") + "/checkpoint-2"), std::string::npos)
      << resumed.output;
  expect_bit_identical(t.file("full"), t.file("run"));
}

// Preemption under mpirun: a scheduler's signal may reach one rank before the others (or only
// one). The stop request is all-reduced at the step boundary, so every rank stops after the
// same step, the checkpoint of that step is written, and resuming ends bit-identical.
TEST(TrainCli, TwoRankRunStopsTogetherWhenOneRankIsSignalled) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed";
  TempDir t;
  const auto recipe =
      write_recipe(t, "grpo", loop_fixture().unlabelled,
                   "trainer: grpo\nreward_funcs: [consensus]\nnum_generations: 4\nper_device_train_batch_size: 4\n"
                   "max_steps: 16\nsave_steps: 1000\nlearning_rate: 1.0e-3\nresume_from_checkpoint: auto\n");
  auto full = train_mpi(2, recipe, "output_dir=" + t.file("full"));
  ASSERT_EQ(full.exit_code, 0) << full.output;

  const std::string run = t.file("run");
  const std::string launch = "(" + mpi_command(2, recipe, "output_dir=" + run, 0, 90) + " > " + t.file("log") +
                             " 2>&1; echo $? > " + t.file("rc") + ") &";
  ASSERT_EQ(std::system(launch.c_str()), 0);
  auto lines = [&] {
    std::ifstream in(run + "/metrics.jsonl");
    size_t n = 0;
    for (std::string l; std::getline(in, l);) n += !l.empty();
    return n;
  };
  for (int i = 0; i < 600 && lines() < 2 && !fs::exists(t.file("rc")); ++i) ::usleep(100000);
  ASSERT_FALSE(fs::exists(t.file("rc"))) << "the run ended before it could be signalled: " << file_bytes(t.file("log"));
  // SIGTERM to one rank process only (the first `selfrl train` of this run that pgrep finds).
  const auto sent =
      run_command("kill -TERM $(pgrep -f '^" + selfrl_cli() + " train .*output_dir=" + run + "' | head -1)");
  ASSERT_EQ(sent.exit_code, 0) << sent.output;
  for (int i = 0; i < 900 && !fs::exists(t.file("rc")); ++i) ::usleep(100000);
  ASSERT_TRUE(fs::exists(t.file("rc"))) << "the signalled run did not end";
  const std::string log = file_bytes(t.file("log"));
  EXPECT_NE(std::stoi(file_bytes(t.file("rc"))), 0) << log;  // stopped, not finished
  ASSERT_FALSE(fs::exists(run + "/final")) << log;
  std::vector<std::string> checkpoints;
  for (const auto& e : fs::directory_iterator(run))
    if (e.path().filename().string().rfind("checkpoint-", 0) == 0) checkpoints.push_back(e.path().string());
  ASSERT_EQ(checkpoints.size(), 1u) << log;  // save_steps 1000: only the stop wrote one
  EXPECT_EQ(checkpoint::check_complete(checkpoints[0]), "");
  EXPECT_NE(log.find("stopped by request after step"), std::string::npos) << log;

  auto resumed = train_mpi(2, recipe, "output_dir=" + run);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + checkpoints[0]), std::string::npos) << resumed.output;
  expect_bit_identical(t.file("full"), run);
}

// A write that fails mid-checkpoint (here: a file size limit, RLIMIT_FSIZE, standing in for a
// full disk) stops the run with an error naming the file; the checkpoint being written never
// appears under its final name, the last good one is untouched, and a later run resumes from
// it bit-identically. A second run on the same output_dir meanwhile is refused.
TEST(TrainCli, FailedCheckpointWriteKeepsTheLastGoodOne) {
  TempDir t;
  const auto recipe =
      write_recipe(t, "sft", loop_fixture().train,
                   "trainer: sft\nnum_train_epochs: 3\nlearning_rate: 1.0e-3\nper_device_train_batch_size: 4\n"
                   "save_steps: 2\nresume_from_checkpoint: auto\n");
  auto full = train_single(recipe, "output_dir=" + t.file("full"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  const std::string run = t.file("run");
  auto killed = train_single(recipe, "output_dir=" + run, 3);
  ASSERT_NE(killed.exit_code, 0) << killed.output;
  const std::string good = run + "/checkpoint-2";
  ASSERT_EQ(checkpoint::find_latest_complete(run).value_or(""), good);
  const std::string good_state = file_bytes(good + "/optimizer.safetensors");

  // model.safetensors (M bytes) fits under the limit, optimizer.safetensors (2M) does not.
  const auto model_bytes = fs::file_size(loop_fixture().model + "/model.safetensors");
  const auto limited = run_command("ulimit -f " + std::to_string(model_bytes * 3 / 2 / 1024) + "; " + selfrl_cli() +
                                   " train " + recipe + " --no-progress output_dir=" + run);
  EXPECT_EQ(limited.exit_code, 1) << limited.output;
  EXPECT_NE(limited.output.find("/checkpoint-4.tmp-"), std::string::npos) << limited.output;
  EXPECT_NE(limited.output.find(".safetensors: write failed: File too large"), std::string::npos) << limited.output;
  EXPECT_FALSE(fs::exists(run + "/checkpoint-4"));
  EXPECT_EQ(checkpoint::check_complete(good), "");
  EXPECT_EQ(file_bytes(good + "/optimizer.safetensors"), good_state);

  auto resumed = train_single(recipe, "output_dir=" + run);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + good), std::string::npos) << resumed.output;
  expect_bit_identical(t.file("full"), run);
}

// Two runs on one output_dir would delete each other's checkpoint temporaries: the second is
// refused, naming the holder.
TEST(TrainCli, SecondRunOnTheSameOutputDirIsRefused) {
  TempDir t;
  const auto recipe = write_recipe(t, "sft", loop_fixture().train,
                                   "trainer: sft\nnum_train_epochs: 3\nlearning_rate: 1.0e-3\n"
                                   "per_device_train_batch_size: 4\noverwrite_output_dir: true\n");
  const std::string run = t.file("run");
  fs::create_directories(run);
  // Hold the lock the way a running `selfrl train` does (flock on run/.selfrl.lock).
  std::ofstream(t.file("second.sh")) << "flock " << run << "/.selfrl.lock sleep 30 >/dev/null 2>&1 &\nholder=$!\n"
                                     << "sleep 0.5\n"
                                     << selfrl_cli() << " train " << recipe << " --no-progress output_dir=" << run
                                     << " 2>&1\nrc=$?\nkill $holder\nexit $rc\n";
  const auto second = run_command("sh " + t.file("second.sh"));
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_NE(second.output.find("another run is using this directory"), std::string::npos) << second.output;
  EXPECT_NE(second.output.find(run), std::string::npos) << second.output;
}

}  // namespace
}  // namespace selfrl::test
