// The building blocks of a Llama-family decoder layer, with Hugging Face parameter names:
// RMSNorm (`weight`), attention (`q_proj`, `k_proj`, `v_proj`, `o_proj`, Qwen3's `q_norm` and
// `k_norm`), the SiLU-gated MLP (`gate_proj`, `up_proj`, `down_proj`) and the layer itself
// (`self_attn`, `mlp`, `input_layernorm`, `post_attention_layernorm`).
//
// Follows transformers' modeling_llama.py / modeling_qwen2.py / modeling_qwen3.py (eager
// attention path): scores = q·kᵀ / sqrt(head_dim) + mask, softmax in float32, GQA by letting each
// key/value head serve num_heads / num_kv_heads consecutive query heads (HF `repeat_kv`).
#pragma once

#include <cstdint>

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include "selfrl/io/model_config.h"
#include "selfrl/model/kv_cache.h"
#include "selfrl/model/lora.h"

namespace selfrl::model {

// transformers' LlamaRMSNorm: x / sqrt(mean(x²) + eps) computed in float32, cast back to the
// input dtype, then multiplied by the weight.
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

// What attention needs besides the hidden states, computed once per forward.
struct AttentionInputs {
  torch::Tensor cos, sin;  // [batch, 1, seq, head_dim] in the model dtype
  torch::Tensor mask;      // additive [batch, 1, seq, past + seq] in float32, or undefined
};

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const io::ModelConfig& cfg, bool qkv_bias, bool o_bias, bool qk_norm);
  // hidden [batch, seq, hidden]; with a cache the new keys/values are appended for `layer`.
  torch::Tensor forward(const torch::Tensor& hidden, const AttentionInputs& in, KVCache* cache, int64_t layer);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  // LoRA adapters of the projections (null: none); see selfrl/model/lora.h.
  LoraAdapter q_lora{nullptr}, k_lora{nullptr}, v_lora{nullptr}, o_lora{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // Qwen3 only

 private:
  int64_t num_heads_, num_kv_heads_, head_dim_;
};
TORCH_MODULE(Attention);

class MLPImpl : public torch::nn::Module {
 public:
  MLPImpl(int64_t hidden, int64_t intermediate, bool bias);
  // down(silu(gate(x)) * up(x))
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  LoraAdapter gate_lora{nullptr}, up_lora{nullptr}, down_lora{nullptr};  // LoRA (null: none)
};
TORCH_MODULE(MLP);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const io::ModelConfig& cfg, bool qkv_bias, bool o_bias, bool qk_norm);
  // Pre-norm residual block: h += attn(norm(h)); h += mlp(norm(h)).
  torch::Tensor forward(const torch::Tensor& hidden, const AttentionInputs& in, KVCache* cache, int64_t layer);
  Attention self_attn{nullptr};
  MLP mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

}  // namespace selfrl::model
