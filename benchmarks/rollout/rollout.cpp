// Rollout throughput: prefill and decode tokens/s of RolloutEngine for a ~25M-parameter
// Llama (hidden 512, 8 layers, 8 heads, intermediate 1408, vocab 8192) at a given batch size,
// and the process's peak RSS. benchmarks/python/rollout_baseline.py is the same measurement
// for a plain PyTorch loop; docs/benchmarks.md has the commands and results.
//
//   bench_rollout --batch 8 --prompt-len 64 --new-tokens 64 --runs 3 --threads 1 [--dtype bfloat16]
//                 [--device cuda] [--model llama-25m|qwen2.5-0.5b|llama-1b]
//                 [--prompts N --samples G --stop-every K --continuous 0|1] [--share-prompts 0|1]
//                 [--profile trace.json]
//
// One generate(max_new_tokens = N) per run, split by RolloutEngine::last_timings():
// prefill tokens/s = prompt tokens / prefill time; decode tokens/s = generated tokens / time
// after prefill (sampling + stats + N − 1 decode forwards). Greedy, EOS ignored, so every row
// runs N steps. Median of --runs after one warm-up.
//
// The GRPO-shaped mode (--stop-every K > 0): N prompts (default: --batch) × G samples at
// temperature 1 with every K-th token id a stop id, so completions end at mixed lengths (about K
// tokens on average, at most --new-tokens), decoded --batch rows at a time, in waves or with
// continuous batching. It reports generated tokens per second of the whole generate() call
// (gen_tok_s) and the decode steps it took.
//
// --samples G without --stop-every: --batch / G prompts × G samples at temperature 1, EOS
// ignored, so every row runs N steps (decode of a GRPO group). --share-prompts 0 turns off the
// shared prompt cache (RolloutEngineOptions::share_prompt_cache) to compare. --kv-block N sets
// RolloutEngineOptions::kv_block_size (0: the whole budget reserved up front).
//
// --profile FILE records one more generate() with LibTorch's profiler (a chrome://tracing JSON;
// benchmarks/rollout/profile_summary.py sums it per operator).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/cuda.h>

#include "../bench_models.h"

#include "selfrl/core/device.h"
#include "selfrl/generation/rollout_engine.h"
#include "selfrl/model/causal_lm.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int64_t batch = 1, prompt_len = 64, new_tokens = 64, runs = 3, threads = 1, num_prompts = 0, samples = 1,
          stop_every = 0, continuous = 0, share_prompts = 1, kv_block = -1;
  std::string dtype = "float32", device_name = "cpu", preset = "llama-25m", profile;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--profile") {
      profile = argv[i + 1];
      continue;
    }
    if (a == "--dtype" || a == "--device" || a == "--model") {
      (a == "--dtype" ? dtype : a == "--device" ? device_name : preset) = argv[i + 1];
      continue;
    }
    const int64_t v = std::stoll(argv[i + 1]);
    if (a == "--batch")
      batch = v;
    else if (a == "--prompt-len")
      prompt_len = v;
    else if (a == "--new-tokens")
      new_tokens = v;
    else if (a == "--runs")
      runs = v;
    else if (a == "--threads")
      threads = v;
    else if (a == "--prompts")
      num_prompts = v;
    else if (a == "--samples")
      samples = v;
    else if (a == "--stop-every")
      stop_every = v;
    else if (a == "--continuous")
      continuous = v;
    else if (a == "--share-prompts")
      share_prompts = v;
    else if (a == "--kv-block")
      kv_block = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  at::set_num_threads(static_cast<int>(threads));
  const auto cfg = selfrl::bench::preset_config(preset);
  const auto device = selfrl::parse_device(device_name);
  auto model = selfrl::model::CausalLM::from_config(cfg, 0, device, selfrl::parse_dtype(dtype));
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();

  if (num_prompts <= 0 || stop_every <= 0) num_prompts = stop_every <= 0 && samples > 1 ? batch / samples : batch;
  if (num_prompts <= 0) {
    std::fprintf(stderr, "--samples %lld is more than --batch %lld\n", static_cast<long long>(samples),
                 static_cast<long long>(batch));
    return 2;
  }
  std::vector<std::vector<int64_t>> prompts(num_prompts);
  for (int64_t b = 0; b < num_prompts; ++b)
    for (int64_t t = 0; t < prompt_len; ++t) prompts[b].push_back((b * 131 + t * 17) % 8192);
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  selfrl::generation::RolloutEngineOptions eo;
  eo.max_batch_size = batch;
  eo.continuous_batching = continuous != 0;
  eo.share_prompt_cache = share_prompts != 0;
  if (kv_block >= 0) eo.kv_block_size = kv_block;
  selfrl::generation::RolloutEngine engine(model, eo);
  selfrl::generation::SamplingParams sp;
  sp.temperature = 0;
  sp.ignore_eos = true;
  if (stop_every > 0 || samples > 1) {
    sp.temperature = 1.0;
    sp.num_samples = samples;
    sp.seed = 1;
    for (int64_t id = 0; stop_every > 0 && id < cfg.vocab_size; id += stop_every) sp.stop_token_ids.push_back(id);
  }

  sp.max_new_tokens = new_tokens;
  engine.generate(prompts, sp);  // warm-up
  sync();
  std::vector<double> prefill, decode, total, gen, steps;
  for (int64_t r = 0; r < runs; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    engine.generate(prompts, sp);
    sync();
    total.push_back(seconds_since(t0));
    const auto& t = engine.last_timings();
    prefill.push_back(t.prefill_tokens / t.prefill_seconds);
    decode.push_back(t.decode_tokens / t.decode_seconds);
    gen.push_back(t.decode_tokens / total.back());
    steps.push_back(static_cast<double>(t.decode_steps));
  }
  if (!profile.empty()) {
    torch::autograd::profiler::RecordProfile guard(profile);
    engine.generate(prompts, sp);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  nlohmann::json out = {{"impl", "selfrl"},
                        {"model", preset},
                        {"device", device_name},
                        {"params", params},
                        {"batch", batch},
                        {"prompt_len", prompt_len},
                        {"new_tokens", new_tokens},
                        {"threads", threads},
                        {"runs", runs},
                        {"dtype", dtype},
                        {"prefill_tok_s", median(prefill)},
                        {"decode_tok_s", median(decode)},
                        {"total_s", median(total)},
                        {"peak_rss_mb", ru.ru_maxrss / 1024.0},
                        {"peak_kv_cache_mb", engine.last_timings().peak_cache_bytes / 1048576.0},
                        {"samples", samples},
                        {"share_prompt_cache", share_prompts != 0},
                        {"kv_block_size", eo.kv_block_size}};
  if (stop_every > 0) {
    out["prompts"] = num_prompts;
    out["stop_every"] = stop_every;
    out["continuous_batching"] = continuous != 0;
    out["generated_tokens"] = engine.last_timings().decode_tokens;
    out["gen_tok_s"] = median(gen);
    out["decode_steps"] = median(steps);
  }
  if (device.is_cuda()) out["note"] = "peak_rss_mb is host memory; GPU memory is not read";
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
