// Logit filters and inverse-CDF sampling (see sampler.h).
#include "selfrl/generation/sampler.h"

#include <limits>

#include "selfrl/core/error.h"

namespace selfrl::generation {

void SamplingParams::validate() const {
  SELFRL_CHECK(num_samples > 0, "num_samples must be > 0, got ", num_samples);
  SELFRL_CHECK(max_new_tokens > 0, "max_new_tokens must be > 0, got ", max_new_tokens);
  SELFRL_CHECK(temperature >= 0, "temperature must be >= 0, got ", temperature);
  SELFRL_CHECK(top_k >= 0, "top_k must be >= 0 (0 = off), got ", top_k);
  SELFRL_CHECK(top_p > 0 && top_p <= 1, "top_p must be in (0, 1], got ", top_p);
  SELFRL_CHECK(min_p >= 0 && min_p <= 1, "min_p must be in [0, 1], got ", min_p);
  for (const auto& s : stop_sequences) SELFRL_CHECK(!s.empty(), "stop_sequences must not contain an empty sequence");
}

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Filters candidate logits [rows, n] sorted in descending order (top-p needs the order).
torch::Tensor apply_top_p(const torch::Tensor& sorted_logits, double top_p) {
  // TopPLogitsWarper: drop a token when the tokens more probable than it already hold top_p of
  // the mass; the most probable token always stays.
  auto probs = torch::softmax(sorted_logits, -1);
  auto mass_before = probs.cumsum(-1) - probs;
  auto remove = mass_before >= top_p;
  remove.select(1, 0).fill_(false);
  return sorted_logits.masked_fill(remove, kNegInf);
}

torch::Tensor apply_min_p(const torch::Tensor& logits, double min_p) {
  // MinPLogitsWarper: drop tokens whose probability is below min_p × the top probability.
  auto probs = torch::softmax(logits, -1);
  auto threshold = probs.amax(-1, /*keepdim=*/true) * min_p;
  return logits.masked_fill(probs < threshold, kNegInf);
}

// Candidates after filtering: logits [rows, n] and their vocabulary ids (undefined = identity).
std::pair<torch::Tensor, torch::Tensor> candidates(const torch::Tensor& scaled, const SamplingParams& p) {
  const int64_t vocab = scaled.size(1);
  torch::Tensor logits = scaled, ids;
  if (p.top_k > 0 && p.top_k < vocab) {
    std::tie(logits, ids) = torch::topk(scaled, p.top_k, -1, /*largest=*/true, /*sorted=*/true);
  }
  if (p.top_p < 1.0) {
    if (!ids.defined()) std::tie(logits, ids) = torch::sort(scaled, -1, /*descending=*/true);
    logits = apply_top_p(logits, p.top_p);
  }
  if (p.min_p > 0.0) logits = apply_min_p(logits, p.min_p);
  return {logits, ids};
}

}  // namespace

torch::Tensor filter_logits(const torch::Tensor& scaled_logits, const SamplingParams& params) {
  auto [logits, ids] = candidates(scaled_logits, params);
  if (!ids.defined()) return logits;
  return torch::full_like(scaled_logits, kNegInf).scatter_(1, ids, logits);
}

torch::Tensor sample_tokens(const torch::Tensor& scaled_logits, const SamplingParams& params,
                            const std::vector<double>& uniforms) {
  const int64_t rows = scaled_logits.size(0);
  SELFRL_CHECK(static_cast<int64_t>(uniforms.size()) == rows, "sample_tokens: ", uniforms.size(), " uniforms for ",
               rows, " rows");
  auto [logits, ids] = candidates(scaled_logits, params);
  // Inverse CDF: the first index whose cumulative mass reaches u·total. u > 0 keeps
  // zero-probability (filtered) tokens from ever being chosen.
  auto cdf = torch::softmax(logits, -1).cumsum(-1);
  auto u = torch::tensor(uniforms, torch::TensorOptions().dtype(torch::kDouble)).to(cdf.options()).unsqueeze(1);
  auto target = u * cdf.narrow(1, cdf.size(1) - 1, 1);
  auto pick = torch::searchsorted(cdf, target).clamp_max_(cdf.size(1) - 1);
  if (ids.defined()) pick = ids.gather(1, pick);
  return pick.squeeze(1);
}

}  // namespace selfrl::generation
