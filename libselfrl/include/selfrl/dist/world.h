// dist::World: the set of processes one training run spans, and the collectives the trainers
// need (gradient all-reduce in flat buckets, parameter broadcast, metric reduction, barrier).
//
// Scale comes from torch c10d: a TCPStore for the rendezvous (rank 0 hosts it), then
// ProcessGroupGloo on CPU or ProcessGroupNCCL on CUDA (builds with SELFRL_CUDA). A World of one
// process (the default) runs no collective at all, so the same binary runs alone or launched
// by mpirun / torchrun / SLURM.
//
// No hangs: every collective runs under `timeout`. Before each one a rank records "I arrived at
// op #n (what, step)" in the store; when a collective fails or times out, the message names
// the op, the step and the ranks that never arrived (or says that rank 0, which hosts the
// store, is gone). See docs/distributed.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace torch::nn {
class Module;
}

namespace selfrl::dist {

// Who this process is, as the launcher told it through the environment.
struct LaunchInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr;  // empty: not given
  int master_port = 0;      // 0: not given
  std::string launcher;     // "none", "mpirun", "torchrun", "slurm"
};

// Reads OMPI_COMM_WORLD_{RANK,SIZE,LOCAL_RANK,LOCAL_SIZE}, torchrun's RANK / WORLD_SIZE /
// LOCAL_RANK / LOCAL_WORLD_SIZE or SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID, plus
// MASTER_ADDR / MASTER_PORT. `env` overrides the process environment (tests).
LaunchInfo detect_launch(const std::map<std::string, std::string>* env = nullptr);

struct WorldOptions {
  // "auto" (NCCL when `device` is CUDA, else Gloo), "gloo" or "nccl".
  std::string backend = "auto";
  torch::Device device = torch::kCPU;
  // Bound on every rendezvous step and collective. A rank that waits longer exits with an
  // Error naming the op, the step and the ranks that did not arrive.
  std::chrono::milliseconds timeout = std::chrono::seconds(300);
  // Overrides of MASTER_ADDR / MASTER_PORT. Under mpirun on one node without MASTER_ADDR the
  // default is 127.0.0.1 and port 29500 + (Open MPI job id % 1000).
  std::string master_addr;
  int master_port = 0;
  size_t bucket_bytes = 25u << 20;  // gradient all-reduce bucket size (as torch DDP's 25 MiB)
};

class World {
 public:
  // A world of one process: every collective is a no-op.
  static std::shared_ptr<World> single();
  // The world the launcher describes, or a world of one when no launcher variables are set.
  // Throws Error on misconfiguration: multi-node launch without MASTER_ADDR, port in use,
  // ranks that disagree on the world size, rendezvous timeout.
  static std::shared_ptr<World> from_environment(const WorldOptions& options = {});
  // Explicit rendezvous (tests, embedding programs).
  static std::shared_ptr<World> create(const LaunchInfo& launch, const WorldOptions& options);

  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }
  bool is_main() const { return rank_ == 0; }
  bool distributed() const { return size_ > 1; }
  const std::string& backend() const { return backend_; }
  std::chrono::milliseconds timeout() const { return timeout_; }

  // The training step reported in error messages ("at step 12").
  void set_step(int64_t step) { step_ = step; }
  int64_t step() const { return step_; }

  // In-place sum over ranks of every tensor, flattened into buckets of at most bucket_bytes
  // per dtype; all buckets are in flight together. `what` names the op in errors.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what);
  // Sum of doubles over ranks (metrics, token counts, flags), in one collective.
  std::vector<double> all_reduce_sum(const std::vector<double>& values, const std::string& what);
  double all_reduce_sum(double value, const std::string& what);
  double all_reduce_max(double value, const std::string& what);
  // In-place broadcast of every tensor from `root`.
  void broadcast(std::vector<torch::Tensor>& tensors, int root, const std::string& what);
  // Concatenation over ranks of a 1-D tensor of the same length on every rank:
  // [size * n], rank r's values at [r * n, (r + 1) * n).
  torch::Tensor all_gather(const torch::Tensor& values, const std::string& what);
  // Starts an in-place sum of one tensor over ranks and returns at once (gradient buckets
  // during the backward pass); wait_all() completes every started one. Every rank must start
  // the same sequence of tensors.
  void start_all_reduce(torch::Tensor tensor, const std::string& what);
  void wait_all();
  size_t bucket_bytes() const { return bucket_bytes_; }
  // Every rank waits for all the others, through the store (names the missing ranks).
  void barrier(const std::string& what);

 private:
  World() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::string backend_ = "none";
  std::chrono::milliseconds timeout_{300000};
  size_t bucket_bytes_ = 25u << 20;
  int64_t step_ = -1;
  int64_t seq_ = 0;  // collectives issued so far (same on every rank)

  // Marks arrival at the next collective and returns its sequence number.
  int64_t arrive(const std::string& what);
  // Turns a failed collective into an Error naming the op, the step and the absent ranks.
  [[noreturn]] void fail(int64_t seq, const std::string& what, const std::string& cause);
  template <typename F>
  void run_collective(const std::string& what, F&& body);
};

// Sets every parameter (and buffer) of `module` to rank 0's values.
void broadcast_module(World& world, torch::nn::Module& module);

// Contiguous shard [rank * n / size, (rank + 1) * n / size) of n items, as index bounds.
std::pair<size_t, size_t> shard_bounds(size_t n, const World& world);
template <typename T>
std::vector<T> shard(const std::vector<T>& items, const World& world) {
  const auto [b, e] = shard_bounds(items.size(), world);
  return std::vector<T>(items.begin() + static_cast<std::ptrdiff_t>(b), items.begin() + static_cast<std::ptrdiff_t>(e));
}

}  // namespace selfrl::dist
