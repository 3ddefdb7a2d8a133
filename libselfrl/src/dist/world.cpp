// dist::World over torch c10d (see selfrl/dist/world.h and docs/distributed.md).
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO  // Debian's libtorch_cpu is built with Gloo; the header is guarded by this
#endif
#if defined(SELFRL_WITH_CUDA) && !defined(USE_C10D_NCCL)
#define USE_C10D_NCCL
#endif

#include "selfrl/dist/world.h"

#include <torch/torch.h>
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
// The LibTorch inside a PyTorch wheel may ship without Gloo's headers: that build offers NCCL only.
#if __has_include(<gloo/algorithm.h>)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#define SELFRL_HAS_GLOO 1
#else
#define SELFRL_HAS_GLOO 0
#endif
#ifdef SELFRL_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "selfrl/core/error.h"
#include "selfrl/core/logging.h"

namespace selfrl::dist {
namespace {

// LibTorch 2.0 split c10d::ProcessGroup into a front end and per-device Backends; the Gloo and
// NCCL classes are Backends there, and expose the same collectives we call.
#if TORCH_VERSION_MAJOR >= 2
using GroupBase = c10d::Backend;
#else
using GroupBase = c10d::ProcessGroup;
#endif

using Clock = std::chrono::steady_clock;

std::string seconds_text(std::chrono::milliseconds t) {
  std::ostringstream os;
  os << static_cast<double>(t.count()) / 1000.0 << " s";
  return os.str();
}

const char* env_get(const std::map<std::string, std::string>* env, const char* name) {
  if (env) {
    auto it = env->find(name);
    return it == env->end() ? nullptr : it->second.c_str();
  }
  return std::getenv(name);
}

int env_int(const std::map<std::string, std::string>* env, const char* name, int fallback) {
  const char* v = env_get(env, name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0') throw Error(std::string("environment variable ") + name + "='" + v + "' is not an integer");
  return static_cast<int>(x);
}

// c10 errors carry a backtrace after the first line: keep the message only.
std::string first_line(const std::string& s, size_t max = 300) { return s.substr(0, std::min(s.find('\n'), max)); }

std::string bytes_to_string(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }
std::vector<uint8_t> string_to_bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

std::string rank_list(const std::vector<int>& ranks) {
  std::string s;
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s;
}

}  // namespace

LaunchInfo detect_launch(const std::map<std::string, std::string>* env) {
  LaunchInfo li;
  if (env_get(env, "OMPI_COMM_WORLD_SIZE")) {
    li.launcher = "mpirun";
    li.rank = env_int(env, "OMPI_COMM_WORLD_RANK", 0);
    li.world_size = env_int(env, "OMPI_COMM_WORLD_SIZE", 1);
    li.local_rank = env_int(env, "OMPI_COMM_WORLD_LOCAL_RANK", 0);
    li.local_world_size = env_int(env, "OMPI_COMM_WORLD_LOCAL_SIZE", li.world_size);
  } else if (env_get(env, "WORLD_SIZE") && env_get(env, "RANK")) {
    li.launcher = "torchrun";
    li.rank = env_int(env, "RANK", 0);
    li.world_size = env_int(env, "WORLD_SIZE", 1);
    li.local_rank = env_int(env, "LOCAL_RANK", 0);
    li.local_world_size = env_int(env, "LOCAL_WORLD_SIZE", li.world_size);
  } else if (env_get(env, "SLURM_NTASKS") && env_get(env, "SLURM_PROCID")) {
    li.launcher = "slurm";
    li.rank = env_int(env, "SLURM_PROCID", 0);
    li.world_size = env_int(env, "SLURM_NTASKS", 1);
    li.local_rank = env_int(env, "SLURM_LOCALID", 0);
    const int nodes = env_int(env, "SLURM_NNODES", 1);
    li.local_world_size = nodes > 1 ? std::max(1, li.world_size / nodes) : li.world_size;
  } else {
    li.launcher = "none";
  }
  if (const char* a = env_get(env, "MASTER_ADDR")) li.master_addr = a;
  li.master_port = env_int(env, "MASTER_PORT", 0);
  if (li.launcher == "mpirun" && li.master_port == 0) {
    // One default per mpirun job, so that two jobs on one machine do not collide.
    if (const char* job = env_get(env, "OMPI_MCA_ess_base_jobid")) {
      const unsigned long id = std::strtoul(job, nullptr, 10);
      li.master_port = 29500 + static_cast<int>((id ^ (id >> 16)) % 1000);
    }
  }
  if (li.world_size < 1 || li.rank < 0 || li.rank >= li.world_size) {
    throw Error("launcher (" + li.launcher + ") gives rank " + std::to_string(li.rank) + " of world size " +
                std::to_string(li.world_size))
        .hint("rank must be in [0, world size)");
  }
  return li;
}

struct World::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<GroupBase> pg;
  std::string store_address;
  struct Pending {
    int64_t seq;
    std::string what;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<Pending> pending;  // started by start_all_reduce
};

std::shared_ptr<World> World::single() { return std::shared_ptr<World>(new World()); }

std::shared_ptr<World> World::from_environment(const WorldOptions& options) { return create(detect_launch(), options); }

World::~World() = default;

std::shared_ptr<World> World::create(const LaunchInfo& li, const WorldOptions& opt) {
  auto w = std::shared_ptr<World>(new World());
  w->timeout_ = opt.timeout;
  w->bucket_bytes_ = std::max<size_t>(opt.bucket_bytes, 1024);
  if (li.world_size <= 1) return w;
  w->rank_ = li.rank;
  w->size_ = li.world_size;
  w->local_rank_ = li.local_rank;
  set_log_rank(li.rank);
  const std::string where = "distributed rendezvous (" + li.launcher + ", rank " + std::to_string(li.rank) + " of " +
                            std::to_string(li.world_size) + ")";

  std::string addr = !opt.master_addr.empty() ? opt.master_addr : li.master_addr;
  int port = opt.master_port > 0 ? opt.master_port : li.master_port;
  const bool multi_node = li.world_size > li.local_world_size;
  if (addr.empty()) {
    if (multi_node) {
      throw Error("the ranks run on several nodes (world size " + std::to_string(li.world_size) + ", " +
                  std::to_string(li.local_world_size) + " on this node) but MASTER_ADDR is not set")
          .at(where)
          .hint(
              "export MASTER_ADDR=<address of the node running rank 0> (and MASTER_PORT) to every rank, e.g. "
              "mpirun -x MASTER_ADDR=node0 -x MASTER_PORT=29500 ...");
    }
    addr = "127.0.0.1";
  }
  if (port <= 0) {
    if (li.launcher == "torchrun" || multi_node) {
      throw Error("MASTER_PORT is not set").at(where).hint("export MASTER_PORT=<free TCP port on rank 0's node>");
    }
    port = 29500;
  }
  if (port > 65535) throw Error("MASTER_PORT " + std::to_string(port) + " is not a TCP port").at(where);

  auto impl = std::make_unique<Impl>();
  impl->store_address = addr + ":" + std::to_string(port);
  // ---- the store: rank 0 listens, the others connect ----------------------------------------
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(port);
  so.isServer = li.rank == 0;
  so.waitWorkers = false;  // the world-size check below names who is missing instead
  so.timeout = opt.timeout;
  try {
    impl->store = c10::make_intrusive<c10d::TCPStore>(addr, so);
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    if (li.rank == 0 && (msg.find("in use") != std::string::npos || msg.find("EADDRINUSE") != std::string::npos ||
                         msg.find("errno: 98") != std::string::npos)) {
      throw Error("rank 0 cannot host the rendezvous store on port " + std::to_string(port) + ": the port is in use")
          .at(where)
          .hint("set MASTER_PORT to a free port (another run may still hold this one)");
    }
    if (li.rank == 0) {
      throw Error("rank 0 cannot host the rendezvous store at " + impl->store_address + ": " + first_line(msg))
          .at(where)
          .hint("check MASTER_ADDR names this node and MASTER_PORT is free");
    }
    throw Error("cannot reach the rendezvous store of rank 0 at " + impl->store_address + " within " +
                seconds_text(opt.timeout) + ": " + first_line(msg))
        .at(where)
        .hint(
            "check that rank 0 started, that MASTER_ADDR / MASTER_PORT are the same on every rank and that the "
            "port is reachable");
  }
  impl->store->setTimeout(opt.timeout);

  // ---- every rank says which world size it was launched with ---------------------------------
  auto& store = *impl->store;
  store.set("selfrl/hello/" + std::to_string(li.rank), string_to_bytes(std::to_string(li.world_size)));
  const auto deadline = Clock::now() + opt.timeout;
  std::vector<int> missing;
  // Rank 0 hosts the store: on an error it leaves the reason for the others and stays up a
  // moment so that they can read it, instead of vanishing under them.
  auto rendezvous_error = [&](Error e) {
    if (li.rank == 0) {
      try {
        store.set("selfrl/abort", string_to_bytes(e.message()));
      } catch (const std::exception&) {}
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(opt.timeout, std::chrono::milliseconds(1000)));
    }
    throw e;
  };
  for (;;) {
    missing.clear();
    std::optional<Error> problem;
    try {
      if (li.rank != 0 && store.check({"selfrl/abort"})) {
        problem = Error("rank 0 stopped the rendezvous: " + bytes_to_string(store.get("selfrl/abort")));
        problem->at(where).hint("launch every rank with the same WORLD_SIZE / -np");
      }
      for (int r = 0; r < li.world_size && !problem; ++r) {
        const std::string key = "selfrl/hello/" + std::to_string(r);
        if (!store.check({key})) {
          missing.push_back(r);
          continue;
        }
        const int other = std::stoi(bytes_to_string(store.get(key)));
        if (other != li.world_size) {
          problem =
              Error("mismatched world sizes: this rank was launched with world size " + std::to_string(li.world_size) +
                    ", rank " + std::to_string(r) + " with " + std::to_string(other));
          problem->at(where).hint(
              "launch every rank with the same WORLD_SIZE / -np; a stale process of another run "
              "may be using MASTER_PORT " +
              std::to_string(port));
        }
      }
      // More ranks than this one expects also means mismatched sizes.
      if (!problem && store.check({"selfrl/hello/" + std::to_string(li.world_size)})) {
        problem = Error("mismatched world sizes: a rank " + std::to_string(li.world_size) +
                        " joined, but this rank was launched with world size " + std::to_string(li.world_size));
        problem->at(where).hint("launch every rank with the same WORLD_SIZE / -np");
      }
    } catch (const std::exception& e) {
      problem = Error("lost the rendezvous store at " + impl->store_address +
                      " (rank 0 stopped): " + first_line(e.what(), 200));
      problem->at(where).hint("read rank 0's error");
    }
    if (problem) rendezvous_error(*problem);
    if (missing.empty()) break;
    if (Clock::now() > deadline) {
      rendezvous_error(Error("rank(s) " + rank_list(missing) + " did not join the rendezvous at " +
                             impl->store_address + " within " + seconds_text(opt.timeout))
                           .at(where)
                           .hint("check that all " + std::to_string(li.world_size) +
                                 " ranks were started and use the same MASTER_ADDR / MASTER_PORT"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  // ---- the process group -----------------------------------------------------------------------
  std::string backend = opt.backend;
  if (backend == "auto") backend = opt.device.is_cuda() ? "nccl" : "gloo";
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("selfrl/pg", impl->store);
  try {
    if (backend == "gloo") {
#if SELFRL_HAS_GLOO
      auto go = c10d::ProcessGroupGloo::Options::create(opt.timeout);
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME")) {
        go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (addr == "127.0.0.1" || addr == "localhost") {
        go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        go->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      impl->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, li.rank, li.world_size, go);
#else
      throw Error("this libselfrl was built against a LibTorch without Gloo's headers")
          .at(where)
          .hint("use backend nccl on CUDA devices, or build against a LibTorch with Gloo (Debian's libtorch-dev)");
#endif
    } else if (backend == "nccl") {
#ifdef SELFRL_WITH_CUDA
      // Without async error handling a dead peer leaves NCCL kernels spinning forever.
      setenv("NCCL_ASYNC_ERROR_HANDLING", "1", 0);
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(opt.device.has_index() ? opt.device.index() : li.local_rank));
      auto no = c10d::ProcessGroupNCCL::Options::create();
      no->timeout = opt.timeout;
      impl->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, li.rank, li.world_size, no);
#else
      throw Error("the nccl backend needs a CUDA build").at(where).hint("rebuild with -DSELFRL_CUDA=ON, or use gloo");
#endif
    } else {
      throw Error("unknown distributed backend '" + backend + "'").at(where).hint("use auto, gloo or nccl");
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("creating the " + backend + " process group failed: " + first_line(e.what(), 400))
        .at(where)
        .hint("for multi-node Gloo set GLOO_SOCKET_IFNAME to the interface the nodes share");
  }
  w->backend_ = backend;
  w->impl_ = std::move(impl);
  SELFRL_DEBUG("joined a " << backend << " world of " << li.world_size << " through " << w->impl_->store_address);
  return w;
}

int64_t World::arrive(const std::string& what) {
  const int64_t seq = ++seq_;
  try {
    impl_->store->set("selfrl/arrive/" + std::to_string(rank_),
                      string_to_bytes(std::to_string(seq) + "|" + std::to_string(step_) + "|" + what));
  } catch (const std::exception& e) {
    fail(seq, what, e.what());
  }
  return seq;
}

void World::fail(int64_t seq, const std::string& what, const std::string& cause) {
  std::ostringstream os;
  os << what << " (collective #" << seq << ", step " << step_ << ") failed on rank " << rank_ << ": ";
  std::vector<int> absent;
  std::string details;
  bool store_ok = true;
  try {
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      const std::string key = "selfrl/arrive/" + std::to_string(r);
      int64_t their = 0;
      std::string where;
      if (impl_->store->check({key})) {
        const std::string v = bytes_to_string(impl_->store->get(key));
        their = std::stoll(v.substr(0, v.find('|')));
        const auto p1 = v.find('|'), p2 = v.find('|', p1 + 1);
        where = "op #" + std::to_string(their) + " '" + v.substr(p2 + 1) + "' at step " + v.substr(p1 + 1, p2 - p1 - 1);
      }
      if (their < seq) {
        absent.push_back(r);
        details += " rank " + std::to_string(r) +
                   (where.empty() ? " never reached a collective;" : " last reached " + where + ";");
      }
    }
  } catch (const std::exception&) {
    store_ok = false;
  }
  if (!store_ok) {
    os << "rank 0, which hosts the rendezvous store at " << impl_->store_address
       << ", did not answer: it died or stalls";
    if (rank_ != 0) absent = {0};
  } else if (!absent.empty()) {
    std::string lower = cause;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    const bool timed_out = lower.find("timed out") != std::string::npos || lower.find("timeout") != std::string::npos;
    os << "rank(s) " << rank_list(absent) << " did not arrive"
       << (timed_out ? " within " + seconds_text(timeout_) : std::string(" (connection lost: it died)")) << " ("
       << details.substr(1, details.size() - 2) << ")";
  } else {
    os << "every rank arrived at it, but one failed or died during it";
  }
  os << "; cause: " << first_line(cause);
  throw Error(os.str()).hint(
      "a rank died or stalls: read its log for the first error; if steps are legitimately slower than the timeout, "
      "raise it (WorldOptions::timeout)");
}

template <typename F>
void World::run_collective(const std::string& what, F&& body) {
  const int64_t seq = arrive(what);
  try {
    body();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(seq, what, e.what());
  }
}

void World::all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what) {
  if (size_ <= 1 || tensors.empty()) return;
  // Buckets of same dtype and device, in order, each at most bucket_bytes_ (one larger tensor
  // gets a bucket of its own).
  struct Bucket {
    std::vector<size_t> members;
    torch::Tensor flat;
  };
  std::vector<Bucket> buckets;
  std::map<std::pair<int, std::string>, size_t> open;  // (dtype, device) → bucket index
  std::map<size_t, size_t> bytes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    SELFRL_CHECK(t.defined(), "all_reduce_sum: tensor ", i, " is undefined (", what, ")");
    const auto key = std::make_pair(static_cast<int>(t.scalar_type()), t.device().str());
    const size_t nb = static_cast<size_t>(t.numel()) * t.element_size();
    auto it = open.find(key);
    if (it == open.end() || bytes[it->second] + nb > bucket_bytes_) {
      buckets.push_back({});
      open[key] = buckets.size() - 1;
      it = open.find(key);
    }
    buckets[it->second].members.push_back(i);
    bytes[it->second] += nb;
  }
  run_collective(what, [&] {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& b : buckets) {
      std::vector<torch::Tensor> parts;
      for (size_t i : b.members) parts.push_back(tensors[i].reshape({-1}));
      b.flat = torch::cat(parts);
      std::vector<torch::Tensor> io{b.flat};
      works.push_back(impl_->pg->allreduce(io));
    }
    for (auto& wk : works) wk->wait(timeout_);
    for (auto& b : buckets) {
      int64_t off = 0;
      for (size_t i : b.members) {
        auto& t = tensors[i];
        t.copy_(b.flat.slice(0, off, off + t.numel()).view_as(t));
        off += t.numel();
      }
    }
  });
}

std::vector<double> World::all_reduce_sum(const std::vector<double>& values, const std::string& what) {
  if (size_ <= 1 || values.empty()) return values;
  auto t = torch::tensor(values, torch::kDouble);
  std::vector<torch::Tensor> v{t};
  all_reduce_sum(v, what);
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

double World::all_reduce_sum(double value, const std::string& what) {
  return all_reduce_sum(std::vector<double>{value}, what)[0];
}

double World::all_reduce_max(double value, const std::string& what) {
  if (size_ <= 1) return value;
  const auto all = all_gather(torch::tensor({value}, torch::kDouble), what);
  return all.max().item<double>();
}

void World::broadcast(std::vector<torch::Tensor>& tensors, int root, const std::string& what) {
  if (size_ <= 1 || tensors.empty()) return;
  run_collective(what, [&] {
    c10d::BroadcastOptions bo;
    bo.rootRank = root;
    bo.timeout = timeout_;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& t : tensors) {
      std::vector<torch::Tensor> io{t};
      works.push_back(impl_->pg->broadcast(io, bo));
    }
    for (auto& wk : works) wk->wait(timeout_);
  });
}

torch::Tensor World::all_gather(const torch::Tensor& values, const std::string& what) {
  if (size_ <= 1) return values.clone();
  const auto in = values.contiguous().reshape({-1});
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int r = 0; r < size_; ++r) out[0].push_back(torch::empty_like(in));
  run_collective(what, [&] {
    std::vector<torch::Tensor> inputs{in};
    impl_->pg->allgather(out, inputs)->wait(timeout_);
  });
  return torch::cat(out[0]);
}

void World::start_all_reduce(torch::Tensor tensor, const std::string& what) {
  if (size_ <= 1) return;
  const int64_t seq = arrive(what);
  try {
    std::vector<torch::Tensor> io{std::move(tensor)};
    impl_->pending.push_back({seq, what, impl_->pg->allreduce(io)});
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(seq, what, e.what());
  }
}

void World::wait_all() {
  if (size_ <= 1) return;
  auto pending = std::move(impl_->pending);
  impl_->pending.clear();
  for (auto& p : pending) {
    try {
      p.work->wait(timeout_);
    } catch (const std::exception& e) {
      fail(p.seq, p.what, e.what());
    }
  }
}

void World::barrier(const std::string& what) {
  if (size_ <= 1) return;
  const int64_t seq = arrive(what);
  const auto deadline = Clock::now() + timeout_;
  for (;;) {
    bool all = true;
    try {
      for (int r = 0; r < size_ && all; ++r) {
        const std::string key = "selfrl/arrive/" + std::to_string(r);
        if (!impl_->store->check({key})) {
          all = false;
          break;
        }
        const std::string v = bytes_to_string(impl_->store->get(key));
        all = std::stoll(v.substr(0, v.find('|'))) >= seq;
      }
    } catch (const std::exception& e) {
      fail(seq, what, e.what());
    }
    if (all) return;
    if (Clock::now() > deadline) fail(seq, what, "barrier timed out after " + seconds_text(timeout_));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void broadcast_module(World& world, torch::nn::Module& module) {
  if (!world.distributed()) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> ts;
  for (auto& p : module.parameters()) ts.push_back(p);
  for (auto& b : module.buffers()) ts.push_back(b);
  // Broadcast flat copies per dtype so that few collectives run, then copy back.
  std::map<int, std::vector<size_t>> by_dtype;
  for (size_t i = 0; i < ts.size(); ++i) by_dtype[static_cast<int>(ts[i].scalar_type())].push_back(i);
  std::vector<torch::Tensor> flats;
  for (auto& [dt, idx] : by_dtype) {
    std::vector<torch::Tensor> parts;
    for (size_t i : idx) parts.push_back(ts[i].detach().reshape({-1}));
    flats.push_back(torch::cat(parts));
  }
  world.broadcast(flats, 0, "parameter broadcast from rank 0");
  size_t f = 0;
  for (auto& [dt, idx] : by_dtype) {
    int64_t off = 0;
    for (size_t i : idx) {
      ts[i].detach().copy_(flats[f].slice(0, off, off + ts[i].numel()).view_as(ts[i]));
      off += ts[i].numel();
    }
    ++f;
  }
}

std::pair<size_t, size_t> shard_bounds(size_t n, const World& world) {
  const size_t r = static_cast<size_t>(world.rank()), s = static_cast<size_t>(world.size());
  return {r * n / s, (r + 1) * n / s};
}

}  // namespace selfrl::dist
