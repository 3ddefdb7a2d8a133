// Peak memory of per-token logprobs + entropy + self-certainty with backward: chunked
// (selfrl::model::token_logprobs) vs naive (full [rows, vocab] float32 logits), at Qwen2.5's
// vocabulary of 151,936. One mode per process, so peak RSS (getrusage ru_maxrss) belongs to it;
// the reported number is the peak minus the RSS after inputs, weight and gradient buffers exist.
//
//   bench_token_logprobs_memory --mode chunked|naive [--rows 512] [--hidden 896] [--vocab 151936]
//                               [--chunk 256] [--threads 1]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include "selfrl/model/token_logprobs.h"

namespace {
double peak_rss_mb() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}
}  // namespace

int main(int argc, char** argv) {
  std::string mode = "chunked";
  int64_t rows = 512, hidden = 896, vocab = 151936, chunk = 256, threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--mode")
      mode = v;
    else if (a == "--rows")
      rows = std::stoll(v);
    else if (a == "--hidden")
      hidden = std::stoll(v);
    else if (a == "--vocab")
      vocab = std::stoll(v);
    else if (a == "--chunk")
      chunk = std::stoll(v);
    else if (a == "--threads")
      threads = std::stoll(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  at::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(0);
  auto h = (torch::randn({rows, hidden}) * 0.5).requires_grad_(true);
  auto w = (torch::randn({vocab, hidden}) * 0.02).requires_grad_(true);
  auto t = torch::randint(0, vocab, {rows}, torch::kLong);
  // Touch the gradient buffers first so both modes start from the same resident set.
  h.mutable_grad() = torch::zeros_like(h);
  w.mutable_grad() = torch::zeros_like(w);
  const double base = peak_rss_mb();
  auto t0 = std::chrono::steady_clock::now();
  auto s = mode == "naive" ? selfrl::model::token_logprobs_naive(h, w, t)
                           : selfrl::model::token_logprobs(h, w, t, 1.0, chunk);
  (s.logprobs.sum() + 0.1 * s.entropy.sum() + 0.1 * s.self_certainty.sum()).backward();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double peak = peak_rss_mb();
  nlohmann::json out = {{"mode", mode},
                        {"rows", rows},
                        {"hidden", hidden},
                        {"vocab", vocab},
                        {"chunk", chunk},
                        {"threads", threads},
                        {"seconds", secs},
                        {"baseline_rss_mb", base},
                        {"peak_rss_mb", peak},
                        {"peak_extra_mb", peak - base},
                        {"full_fp32_logits_mb", rows * vocab * 4.0 / (1 << 20)},
                        {"checksum", s.logprobs.sum().item<double>()}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
