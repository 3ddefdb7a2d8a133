// Training throughput: tokens/s of SFTTrainer steps (forward + backward through the chunked
// log-probs + AdamW) on the ~25M-parameter Llama of bench_rollout, and model FLOPs utilization
// against this machine's measured fp32 matmul peak.
//
//   bench_train_throughput [--batch 8] [--seq 256] [--runs 5] [--threads 2] [--checkpointing 0|1]
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

#include "selfrl/core/blas.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/trainers/sft_trainer.h"

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  int64_t batch = 8, seq = 256, runs = 5, threads = 2, checkpointing = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const int64_t v = std::stoll(argv[i + 1]);
    if (a == "--batch") batch = v;
    else if (a == "--seq") seq = v;
    else if (a == "--runs") runs = v;
    else if (a == "--threads") threads = v;
    else if (a == "--checkpointing") checkpointing = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  at::set_num_threads(static_cast<int>(threads));
  const int64_t vocab = 8192, hidden = 512, layers = 8;
  nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", vocab},
                      {"hidden_size", hidden}, {"intermediate_size", 1408}, {"num_hidden_layers", layers},
                      {"num_attention_heads", 8}, {"num_key_value_heads", 8}, {"max_position_embeddings", 2048},
                      {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}, {"tie_word_embeddings", false}};
  auto model = selfrl::model::CausalLM::from_config(selfrl::io::ModelConfig::from_json(j), 0);
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  const int64_t matmul_params = params - vocab * hidden;  // the input embedding is a lookup

  selfrl::trainers::SFTConfig cfg;
  cfg.per_device_train_batch_size = batch;
  cfg.optimizer.learning_rate = 1e-4;
  cfg.optimizer.total_steps = runs + 2;
  cfg.gradient_checkpointing = checkpointing != 0;
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
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r >= 2) secs.push_back(s);
  }
  const double step_s = median(secs);
  const double tokens = static_cast<double>(batch * seq);
  const double flops_per_token = 6.0 * matmul_params + 12.0 * layers * hidden * seq;
  const double achieved_gflops = tokens * flops_per_token / step_s / 1e9;
  const double peak_gflops = selfrl::measure_matmul_gflops(1024, 5);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  nlohmann::json out = {{"bench", "train_throughput"}, {"params", params}, {"batch", batch}, {"seq", seq},
                        {"threads", threads}, {"checkpointing", checkpointing != 0}, {"runs", runs},
                        {"step_s", step_s}, {"tokens_per_s", tokens / step_s},
                        {"model_gflops_per_s", achieved_gflops}, {"peak_matmul_gflops", peak_gflops},
                        {"mfu", achieved_gflops / peak_gflops}, {"peak_rss_mb", ru.ru_maxrss / 1024.0}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
