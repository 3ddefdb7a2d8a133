// Rotary embeddings, Hugging Face convention (see rope.h).
#include "selfrl/model/rope.h"

#include <cmath>

#include "selfrl/core/error.h"

namespace selfrl::model {

torch::Tensor rope_inv_freq(const io::ModelConfig& cfg) {
  const int64_t dim = cfg.head_dim;
  // modeling_rope_utils._compute_default_rope_parameters:
  //   inv_freq = 1 / base^(arange(0, dim, 2) / dim), computed in float32.
  auto exponent = torch::arange(0, dim, 2, torch::kLong).to(torch::kFloat) / static_cast<float>(dim);
  torch::Tensor inv_freq = 1.0 / torch::pow(static_cast<float>(cfg.rope_theta), exponent);
  if (!cfg.rope_scaling) return inv_freq;
  const io::RopeScaling& rs = *cfg.rope_scaling;
  if (rs.rope_type == "default") return inv_freq;
  if (rs.rope_type == "linear") return inv_freq / rs.factor;  // positions / factor ≡ inv_freq / factor
  if (rs.rope_type == "llama3") {
    // modeling_rope_utils._compute_llama3_parameters: long wavelengths (low frequencies) are
    // divided by `factor`, short ones kept, and the band in between interpolated smoothly.
    const double old_len = static_cast<double>(rs.original_max_position_embeddings);
    const double low_freq_wavelen = old_len / rs.low_freq_factor;
    const double high_freq_wavelen = old_len / rs.high_freq_factor;
    auto wavelen = 2.0 * M_PI / inv_freq;
    auto scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / rs.factor, inv_freq);
    auto smooth = (old_len / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
    auto smoothed = (1 - smooth) * scaled / rs.factor + smooth * scaled;
    auto is_medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
    return torch::where(is_medium, smoothed, scaled);
  }
  throw Error("rope_scaling.rope_type '" + rs.rope_type + "' is not supported")
      .at("config.json")
      .hint("supported rope types: default, linear, llama3");
}

std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& inv_freq, const torch::Tensor& positions) {
  // LlamaRotaryEmbedding.forward: freqs = positions ⊗ inv_freq in float32, emb = cat(freqs, freqs).
  auto freqs = positions.to(torch::kFloat).unsqueeze(-1) * inv_freq.to(positions.device());
  auto emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos(), emb.sin()};
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  // rotate_half(x) = cat(-x2, x1) with x1, x2 the two halves of the last dimension.
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half);
  auto x2 = x.narrow(-1, half, half);
  auto rotated = torch::cat({-x2, x1}, -1);
  return x * cos + rotated * sin;
}

}  // namespace selfrl::model
