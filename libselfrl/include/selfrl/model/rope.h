// Rotary position embeddings (RoPE, Su et al. 2021) in the Hugging Face convention.
//
// transformers' LlamaRotaryEmbedding: inv_freq[i] = 1 / theta^(2i/d) for i < d/2, the angle of
// position p is p * inv_freq, and cos/sin are cat(freqs, freqs) so that rotate_half pairs
// element j with element j + d/2 (not interleaved pairs as in the original paper).
// rope_scaling "llama3" (modeling_rope_utils.py `_compute_llama3_parameters`) and "linear"
// rescale inv_freq once at construction; other rope types are rejected.
#pragma once

#include <torch/types.h>

#include "selfrl/io/model_config.h"

namespace selfrl::model {

// inv_freq [head_dim / 2] in float32 for `cfg` (theta, head_dim, rope_scaling). Throws Error for
// unsupported rope types, listing the supported ones.
torch::Tensor rope_inv_freq(const io::ModelConfig& cfg);

// cos and sin [batch, seq, head_dim] in float32 for integer positions [batch, seq].
std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& inv_freq, const torch::Tensor& positions);

// x * cos + rotate_half(x) * sin, where x is [batch, heads, seq, head_dim] and cos/sin are
// [batch, 1, seq, head_dim] in x's dtype.
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

}  // namespace selfrl::model
