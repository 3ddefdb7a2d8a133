// The two attention products of a batch-64 decode step, alone: torch::matmul (what the model
// did before) against the CPU decode passes (selfrl/model/decode_attention.h), with a plain
// streaming read of the same keys and values as the memory reference. 8 layers of caches
// [64 rows, 8 heads, capacity, 64] with 96 positions used (the rollout benchmark's batch-64
// shape halfway through its 64 new tokens), each layer its own buffers so nothing stays in
// cache between layers. Capacity = 96 stores the used rows back to back; larger capacities
// leave the gap a preallocated KV cache has after each (row, head) pair.
//
//   build/benchmarks/bench_decode_attention [--threads 1] [--reps 15]
//
// One JSON line per (capacity, method): median milliseconds for 8 layers and the GB/s of keys
// and values read. docs/benchmarks.md, "Decode attention without batched GEMMs".
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "selfrl/core/host_allocator.h"
#include "selfrl/model/decode_attention.h"

namespace sm = selfrl::model;

int main(int argc, char** argv) {
  int threads = 1, reps = 15;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (a == "--reps")
      reps = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: bench_decode_attention [--threads N] [--reps N]\n");
      return 2;
    }
  }
  selfrl::tune_host_allocator();
  at::set_num_threads(threads);
  torch::NoGradGuard no_grad;
  const int64_t B = 64, H = 8, D = 64, L = 96, layers = 8;
  const double bytes = 2.0 * layers * B * H * L * D * sizeof(float);  // keys and values once
  for (const int64_t capacity : {96, 128, 256}) {
    std::vector<torch::Tensor> K, V;
    for (int l = 0; l < layers; ++l) {
      K.push_back(torch::randn({B, H, capacity, D}).narrow(2, 0, L));
      V.push_back(torch::randn({B, H, capacity, D}).narrow(2, 0, L));
    }
    const auto q = torch::randn({B, H, 1, D});
    const auto mask = torch::zeros({B, 1, 1, L});
    auto attention = [&](bool fused, const torch::Tensor& k, const torch::Tensor& v) {
      auto s = (fused ? sm::decode_attention_scores(q, k) : torch::matmul(q, k.transpose(2, 3))).mul_(0.125);
      auto p = torch::softmax(s + mask, -1);
      return fused ? sm::decode_attention_values(p, v) : torch::matmul(p, v);
    };
    const std::vector<std::pair<std::string, std::function<void(int)>>> methods = {
        {"torch::matmul", [&](int l) { attention(false, K[l], V[l]); }},
        {"decode passes", [&](int l) { attention(true, K[l], V[l]); }},
        {"read only (sum)", [&](int l) { K[l].sum().add_(V[l].sum()); }},
    };
    for (const auto& [name, run] : methods) {
      std::vector<double> ms;
      for (int r = 0; r < reps + 2; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int l = 0; l < layers; ++l) run(l);
        const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (r >= 2) ms.push_back(t);  // two warm-up rounds
      }
      std::sort(ms.begin(), ms.end());
      const double med = ms[ms.size() / 2];
      nlohmann::ordered_json j = {{"capacity", capacity}, {"used", L},
                                  {"method", name},       {"threads", threads},
                                  {"ms_8_layers", med},   {"gb_per_s", bytes / (med * 1e-3) / 1e9}};
      std::printf("%s\n", j.dump().c_str());
    }
  }
  return 0;
}
