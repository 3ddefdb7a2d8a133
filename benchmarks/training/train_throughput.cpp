// Training throughput: tokens/s of SFTTrainer steps (forward + backward through the chunked
// log-probs + AdamW) on the ~25M-parameter Llama of bench_rollout, and model FLOPs utilization
// against this machine's measured fp32 matmul peak.
//
//   bench_train_throughput [--batch 8] [--seq 256] [--runs 5] [--threads 2] [--checkpointing 0|1]
//                          [--device cuda] [--bf16 1] [--model llama-25m|qwen2.5-0.5b|llama-1b]
//
// On CUDA the peak is the median rate of 8192³ products in the compute dtype (bfloat16 with
// --bf16 1), timed between device synchronizations, and so is every step.
//
// Model FLOPs per trained token (PaLM, Chowdhery et al. 2022, appendix B): 6·N + 12·L·d·S, with
// N the parameters that take part in matmuls (all but the input embedding), L layers, d the
// hidden size, S the sequence length; recomputation for activation checkpointing is not
// counted (it is overhead, not model FLOPs). Peak: median GFLOP/s of 1024³ fp32 matmuls with the
// same thread count. Median of --runs optimizer steps after two warm-up steps.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>

#include "../bench_models.h"

#include "selfrl/core/blas.h"
#include "selfrl/core/device.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/trainers/sft_trainer.h"

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  int64_t batch = 8, seq = 256, runs = 5, threads = 2, checkpointing = 0, bf16 = 0;
  std::string device_name = "cpu", preset = "llama-25m";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--device" || a == "--model") {
      (a == "--device" ? device_name : preset) = argv[i + 1];
      continue;
    }
    const int64_t v = std::stoll(argv[i + 1]);
    if (a == "--batch")
      batch = v;
    else if (a == "--seq")
      seq = v;
    else if (a == "--runs")
      runs = v;
    else if (a == "--threads")
      threads = v;
    else if (a == "--checkpointing")
      checkpointing = v;
    else if (a == "--bf16")
      bf16 = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  at::set_num_threads(static_cast<int>(threads));
  const auto mcfg = selfrl::bench::preset_config(preset);
  const auto device = selfrl::parse_device(device_name);
  const int64_t vocab = mcfg.vocab_size, hidden = mcfg.hidden_size, layers = mcfg.num_hidden_layers;
  auto model = selfrl::model::CausalLM::from_config(mcfg, 0, device);
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  // The input embedding is a lookup; tied, the same matrix is also the LM head (a matmul).
  const int64_t matmul_params = mcfg.tie_word_embeddings ? params : params - vocab * hidden;
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };

  selfrl::trainers::SFTConfig cfg;
  cfg.per_device_train_batch_size = batch;
  cfg.optimizer.learning_rate = 1e-4;
  cfg.optimizer.total_steps = runs + 2;
  cfg.gradient_checkpointing = checkpointing != 0;
  cfg.bf16 = bf16 != 0;
  selfrl::trainers::SFTTrainer trainer(model, cfg);
  // Prompt of 1 token, completion of seq − 1: every position but the first is trained.
  std::vector<selfrl::trainers::SFTExample> data(batch);
  for (int64_t b = 0; b < batch; ++b) {
    data[b].prompt_ids = {b % vocab};
    for (int64_t t = 1; t < seq; ++t) data[b].completion_ids.push_back((b * 131 + t * 17) % vocab);
  }
  std::vector<double> secs;
  for (int64_t r = 0; r < runs + 2; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    trainer.step(data);
    sync();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r >= 2) secs.push_back(s);
  }
  const double step_s = median(secs);
  const double tokens = static_cast<double>(batch * seq);
  const double flops_per_token = 6.0 * matmul_params + 12.0 * layers * hidden * seq;
  const double achieved_gflops = tokens * flops_per_token / step_s / 1e9;
  const double peak_gflops =
      device.is_cuda() ? selfrl::measure_matmul_gflops(8192, 5, device, bf16 ? torch::kBFloat16 : torch::kFloat)
                       : selfrl::measure_matmul_gflops(1024, 5);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  nlohmann::json out = {{"bench", "train_throughput"},
                        {"model", preset},
                        {"device", device_name},
                        {"bf16", bf16 != 0},
                        {"params", params},
                        {"batch", batch},
                        {"seq", seq},
                        {"threads", threads},
                        {"checkpointing", checkpointing != 0},
                        {"runs", runs},
                        {"step_s", step_s},
                        {"tokens_per_s", tokens / step_s},
                        {"model_gflops_per_s", achieved_gflops},
                        {"peak_matmul_gflops", peak_gflops},
                        {"mfu", achieved_gflops / peak_gflops},
                        {"peak_rss_mb", ru.ru_maxrss / 1024.0}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
