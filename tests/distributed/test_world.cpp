// dist::World in one process: launcher detection, rendezvous errors, and collectives between
// ranks run as threads (each with its own TCPStore client and Gloo process group).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <map>
#include <thread>

#include <torch/torch.h>

#include "selfrl/dist/world.h"
#include "test_util.h"

namespace selfrl::dist {
namespace {

// A port that was free a moment ago.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

LaunchInfo launch(int rank, int size, int port) {
  LaunchInfo li;
  li.rank = rank;
  li.world_size = size;
  li.local_rank = rank;
  li.local_world_size = size;
  li.master_addr = "127.0.0.1";
  li.master_port = port;
  li.launcher = "test";
  return li;
}

WorldOptions quick(int ms = 5000) {
  WorldOptions o;
  o.timeout = std::chrono::milliseconds(ms);
  o.bucket_bytes = 64;  // several buckets even for small tensors
  return o;
}

TEST(DetectLaunch, ReadsOpenMpiTorchrunAndSlurm) {
  std::map<std::string, std::string> none;
  EXPECT_EQ(detect_launch(&none).world_size, 1);
  EXPECT_EQ(detect_launch(&none).launcher, "none");

  std::map<std::string, std::string> ompi{{"OMPI_COMM_WORLD_RANK", "3"},
                                          {"OMPI_COMM_WORLD_SIZE", "4"},
                                          {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                          {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                                          {"OMPI_MCA_ess_base_jobid", "1107951617"}};
  const auto a = detect_launch(&ompi);
  EXPECT_EQ(a.launcher, "mpirun");
  EXPECT_EQ(a.rank, 3);
  EXPECT_EQ(a.world_size, 4);
  EXPECT_EQ(a.local_rank, 1);
  EXPECT_EQ(a.local_world_size, 2);
  EXPECT_GE(a.master_port, 29500);  // a per-job default port
  EXPECT_LT(a.master_port, 30500);

  std::map<std::string, std::string> tr{
      {"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node0"}, {"MASTER_PORT", "29400"}};
  const auto b = detect_launch(&tr);
  EXPECT_EQ(b.launcher, "torchrun");
  EXPECT_EQ(b.rank, 1);
  EXPECT_EQ(b.master_addr, "node0");
  EXPECT_EQ(b.master_port, 29400);

  std::map<std::string, std::string> sl{
      {"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"}, {"SLURM_NNODES", "2"}};
  const auto c = detect_launch(&sl);
  EXPECT_EQ(c.launcher, "slurm");
  EXPECT_EQ(c.rank, 5);
  EXPECT_EQ(c.local_rank, 1);
  EXPECT_EQ(c.local_world_size, 4);

  std::map<std::string, std::string> bad{{"RANK", "2"}, {"WORLD_SIZE", "2"}};
  EXPECT_SELFRL_ERROR(detect_launch(&bad), "rank 2 of world size 2");
}

TEST(World, SingleProcessIsANoOp) {
  auto w = World::single();
  EXPECT_EQ(w->size(), 1);
  EXPECT_TRUE(w->is_main());
  std::vector<torch::Tensor> t{torch::ones({3})};
  w->all_reduce_sum(t, "x");
  EXPECT_TRUE(torch::equal(t[0], torch::ones({3})));
  EXPECT_EQ(w->all_reduce_sum(2.5, "x"), 2.5);
  w->barrier("x");
  const auto s = shard(std::vector<int>{1, 2, 3}, *w);
  EXPECT_EQ(s.size(), 3u);
}

TEST(World, MultiNodeWithoutMasterAddrIsAnError) {
  LaunchInfo li = launch(1, 4, 0);
  li.master_addr.clear();
  li.local_world_size = 2;  // 4 ranks, 2 per node
  EXPECT_SELFRL_ERROR(World::create(li, quick()), "several nodes", "MASTER_ADDR is not set", "hint:");
}

TEST(World, PortInUseIsAnError) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  a.sin_port = 0;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  EXPECT_SELFRL_ERROR(World::create(launch(0, 2, port), quick()), "port", "in use", "MASTER_PORT");
  ::close(fd);
}

TEST(World, MismatchedWorldSizesAreAnError) {
  const int port = free_port();
  auto r0 = std::async(std::launch::async, [&] { return World::create(launch(0, 2, port), quick()); });
  auto r1 = std::async(std::launch::async, [&] { return World::create(launch(1, 3, port), quick()); });
  EXPECT_SELFRL_ERROR(r1.get(), "mismatched world sizes");
  EXPECT_SELFRL_ERROR(r0.get(), "mismatched world sizes");
}

TEST(World, MissingRankTimesOutNamingIt) {
  const int port = free_port();
  auto r0 = std::async(std::launch::async, [&] { return World::create(launch(0, 3, port), quick(4000)); });
  auto r1 = std::async(std::launch::async, [&] { return World::create(launch(1, 3, port), quick(4000)); });
  EXPECT_SELFRL_ERROR(r0.get(), "rank(s) 2 did not join");
  EXPECT_SELFRL_ERROR(r1.get(), "rank(s) 2 did not join");
}

// Runs body(world) on `n` thread-ranks of one world.
template <typename F>
void on_ranks(int n, F body, int timeout_ms = 5000) {
  const int port = free_port();
  std::vector<std::future<void>> fs;
  for (int r = 0; r < n; ++r) {
    fs.push_back(std::async(std::launch::async, [=] {
      auto w = World::create(launch(r, n, port), quick(timeout_ms));
      body(*w);
    }));
  }
  for (auto& f : fs) f.get();
}

TEST(World, CollectivesAgreeAcrossRanks) {
  on_ranks(2, [](World& w) {
    const double r = w.rank();
    std::vector<torch::Tensor> ts{torch::full({5}, r + 1), torch::full({2, 3}, 10 * (r + 1)),
                                  torch::full({4}, r, torch::kDouble)};
    w.all_reduce_sum(ts, "test all-reduce");
    EXPECT_TRUE(torch::allclose(ts[0], torch::full({5}, 3.0)));
    EXPECT_TRUE(torch::allclose(ts[1], torch::full({2, 3}, 30.0)));
    EXPECT_TRUE(torch::allclose(ts[2], torch::full({4}, 1.0, torch::kDouble)));
    const auto sums = w.all_reduce_sum(std::vector<double>{r, 1.0}, "test sums");
    EXPECT_EQ(sums[0], 1.0);
    EXPECT_EQ(sums[1], 2.0);
    EXPECT_EQ(w.all_reduce_max(r * 5, "test max"), 5.0);
    std::vector<torch::Tensor> b{torch::full({3}, r + 7)};
    w.broadcast(b, 0, "test broadcast");
    EXPECT_TRUE(torch::equal(b[0], torch::full({3}, 7.0)));
    const auto g = w.all_gather(torch::full({2}, r), "test gather");
    EXPECT_TRUE(torch::equal(g, torch::tensor({0.0f, 0.0f, 1.0f, 1.0f})));
    w.barrier("test barrier");
    const auto s = shard(std::vector<int>{0, 1, 2, 3, 4}, w);
    EXPECT_EQ(s.size(), w.rank() == 0 ? 2u : 3u);
  });
}

TEST(World, AStalledRankIsNamedWithTheStepAndOp) {
  std::atomic<bool> done{false};
  on_ranks(
      2,
      [&](World& w) {
        w.set_step(12);
        std::vector<torch::Tensor> t{torch::ones({4})};
        w.all_reduce_sum(t, "warm-up");
        if (w.rank() == 1) {
          while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // stalls
          return;
        }
        EXPECT_SELFRL_ERROR(w.all_reduce_sum(t, "gradient all-reduce"), "gradient all-reduce", "step 12",
                            "rank(s) 1 did not arrive", "last reached op #1 'warm-up' at step 12");
        done = true;
      },
      3000);
}

TEST(World, BarrierNamesTheMissingRank) {
  std::atomic<int> finished{0};
  on_ranks(
      3,
      [&](World& w) {
        w.set_step(3);
        if (w.rank() == 2) {
          while (finished < 2) std::this_thread::sleep_for(std::chrono::milliseconds(10));
          return;
        }
        EXPECT_SELFRL_ERROR(w.barrier("checkpoint save"), "checkpoint save", "step 3", "rank(s) 2 did not arrive");
        ++finished;
        // Rank 0 hosts the store: it stays up until the others have read it.
        while (w.rank() == 0 && finished < 2) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      },
      2000);
}

}  // namespace
}  // namespace selfrl::dist
