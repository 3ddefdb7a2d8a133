// Decoder layer blocks (see layers.h), following transformers' modeling_llama.py,
// modeling_qwen2.py and modeling_qwen3.py, eager attention path.
#include "selfrl/model/layers.h"

#include <cmath>

#include "selfrl/model/rope.h"

namespace selfrl::model {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // LlamaRMSNorm.forward: variance in float32, normalize, cast back, then scale.
  auto h = x.to(torch::kFloat);
  auto variance = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * torch::rsqrt(variance + eps);
  return weight * h.to(x.scalar_type());
}

AttentionImpl::AttentionImpl(const io::ModelConfig& cfg, bool qkv_bias, bool o_bias, bool qk_norm)
    : num_heads_(cfg.num_attention_heads), num_kv_heads_(cfg.num_key_value_heads), head_dim_(cfg.head_dim) {
  using torch::nn::LinearOptions;
  q_proj = register_module("q_proj",
                           torch::nn::Linear(LinearOptions(cfg.hidden_size, num_heads_ * head_dim_).bias(qkv_bias)));
  k_proj = register_module("k_proj",
                           torch::nn::Linear(LinearOptions(cfg.hidden_size, num_kv_heads_ * head_dim_).bias(qkv_bias)));
  v_proj = register_module("v_proj",
                           torch::nn::Linear(LinearOptions(cfg.hidden_size, num_kv_heads_ * head_dim_).bias(qkv_bias)));
  o_proj =
      register_module("o_proj", torch::nn::Linear(LinearOptions(num_heads_ * head_dim_, cfg.hidden_size).bias(o_bias)));
  if (qk_norm) {
    // Qwen3Attention: RMSNorm over head_dim of every query / key head, before RoPE.
    q_norm = register_module("q_norm", RMSNorm(head_dim_, cfg.rms_norm_eps));
    k_norm = register_module("k_norm", RMSNorm(head_dim_, cfg.rms_norm_eps));
  }
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& hidden, const AttentionInputs& in, KVCache* cache,
                                     int64_t layer) {
  const int64_t batch = hidden.size(0), seq = hidden.size(1);
  auto q = lora_linear(q_proj, q_lora, hidden).view({batch, seq, num_heads_, head_dim_});
  auto k = lora_linear(k_proj, k_lora, hidden).view({batch, seq, num_kv_heads_, head_dim_});
  auto v = lora_linear(v_proj, v_lora, hidden).view({batch, seq, num_kv_heads_, head_dim_});
  if (q_norm) {
    q = q_norm(q);
    k = k_norm(k);
  }
  q = apply_rope(q.transpose(1, 2), in.cos, in.sin);  // [batch, heads, seq, head_dim]
  k = apply_rope(k.transpose(1, 2), in.cos, in.sin);
  v = v.transpose(1, 2);
  if (cache != nullptr) std::tie(k, v) = cache->append(layer, k, v);
  const int64_t total = k.size(2);
  // GQA without copying keys: kv head j serves query heads j*n_rep .. j*n_rep + n_rep - 1
  // (HF repeat_kv), so fold the n_rep query heads of a group into the row dimension.
  const int64_t n_rep = num_heads_ / num_kv_heads_;
  auto qg = q.reshape({batch, num_kv_heads_, n_rep * seq, head_dim_});
  auto scores = torch::matmul(qg, k.transpose(2, 3)).mul_(1.0 / std::sqrt(static_cast<double>(head_dim_)));
  auto scores5 = scores.view({batch, num_kv_heads_, n_rep, seq, total});
  torch::Tensor probs;
  if (in.mask.defined()) {
    // HF: softmax(scores + causal_mask, dtype=float32).to(query dtype)
    probs = torch::softmax(scores5.to(torch::kFloat) + in.mask.unsqueeze(1), -1);
  } else {
    probs = torch::softmax(scores5, -1, torch::kFloat);
  }
  probs = probs.to(q.scalar_type()).view({batch, num_kv_heads_, n_rep * seq, total});
  auto out = torch::matmul(probs, v)  // [batch, kv_heads, n_rep * seq, head_dim]
                 .view({batch, num_heads_, seq, head_dim_})
                 .transpose(1, 2)
                 .reshape({batch, seq, num_heads_ * head_dim_});
  return lora_linear(o_proj, o_lora, out);
}

MLPImpl::MLPImpl(int64_t hidden, int64_t intermediate, bool bias) {
  using torch::nn::LinearOptions;
  gate_proj = register_module("gate_proj", torch::nn::Linear(LinearOptions(hidden, intermediate).bias(bias)));
  up_proj = register_module("up_proj", torch::nn::Linear(LinearOptions(hidden, intermediate).bias(bias)));
  down_proj = register_module("down_proj", torch::nn::Linear(LinearOptions(intermediate, hidden).bias(bias)));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x) {
  // LlamaMLP: down_proj(act_fn(gate_proj(x)) * up_proj(x)), act_fn = SiLU.
  return lora_linear(down_proj, down_lora,
                     torch::silu(lora_linear(gate_proj, gate_lora, x)) * lora_linear(up_proj, up_lora, x));
}

DecoderLayerImpl::DecoderLayerImpl(const io::ModelConfig& cfg, bool qkv_bias, bool o_bias, bool qk_norm) {
  self_attn = register_module("self_attn", Attention(cfg, qkv_bias, o_bias, qk_norm));
  mlp = register_module("mlp", MLP(cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias));
  input_layernorm = register_module("input_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& hidden, const AttentionInputs& in, KVCache* cache,
                                        int64_t layer) {
  auto h = hidden + self_attn->forward(input_layernorm(hidden), in, cache, layer);
  return h + mlp(post_attention_layernorm(h));
}

}  // namespace selfrl::model
