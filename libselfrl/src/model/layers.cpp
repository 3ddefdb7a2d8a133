// Decoder layer blocks (see layers.h), following transformers' modeling_llama.py,
// modeling_qwen2.py and modeling_qwen3.py, eager attention path.
#include "selfrl/model/layers.h"

#include <cmath>

#include "selfrl/model/decode_attention.h"
#include "selfrl/model/rope.h"

namespace selfrl::model {
namespace {

// Rows [P*G, ...] in slot order <-> prompts [P, kv, G*rows_per_slot, ...]: sample g of prompt p
// becomes rows g*m .. g*m + m - 1 of prompt p's matrix, so one product serves all G samples.
torch::Tensor slots_to_prompts(const torch::Tensor& x, int64_t G) {
  // x: [P*G, kv, m, c]
  const int64_t P = x.size(0) / G, kv = x.size(1), m = x.size(2), c = x.size(3);
  return x.reshape({P, G, kv, m, c}).permute({0, 2, 1, 3, 4}).reshape({P, kv, G * m, c});
}
torch::Tensor prompts_to_slots(const torch::Tensor& x, int64_t G) {
  // x: [P, kv, G*m, c]
  const int64_t P = x.size(0), kv = x.size(1), m = x.size(2) / G, c = x.size(3);
  return x.reshape({P, kv, G, m, c}).permute({0, 2, 1, 3, 4}).reshape({P * G, kv, m, c});
}

// Attention when the rows' prompts are a shared prefix of the cache (KVCache::share_prompts).
// The scores against the prefix are one [G*m, d] x [d, Lp] product per prompt instead of G
// [m, d] x [d, Lp] ones (the prompt's keys are read once), concatenated with the row's own
// scores so that the softmax is the plain one over all columns; the output adds the two
// probability-weighted value sums. The same numbers as attention over a repeated prefix,
// up to the order of floating-point sums. q [B, kv, m, d] (m = n_rep * seq); k, v: the rows'
// own columns [B, kv, Ls, d]. Returns [B, kv, m, d].
torch::Tensor shared_prefix_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                      const KVCache& cache, int64_t layer, const torch::Tensor& mask, int64_t n_rep,
                                      double scale) {
  const int64_t B = q.size(0), kv = q.size(1), m = q.size(2), G = cache.group_size();
  const int64_t seq = m / n_rep;
  auto [pk, pv] = cache.prefix(layer);
  const int64_t P = pk.size(0), Lp = pk.size(2), Ls = k.size(2);
  const auto& slots = cache.row_slots();  // undefined: row r is slot r
  auto to_slots = [&](const torch::Tensor& rows) {
    if (!slots.defined()) return rows;
    auto full = torch::zeros({P * G, rows.size(1), rows.size(2), rows.size(3)}, rows.options());
    return full.index_copy_(0, slots, rows);
  };
  auto from_slots = [&](const torch::Tensor& all) { return slots.defined() ? all.index_select(0, slots) : all; };

  // Decode on the CPU: all four products straight from the caches (decode_attention.h).
  const auto prompt_q = slots_to_prompts(to_slots(q), G);
  const bool fused = decode_attention_applies(q, k, v) && decode_attention_applies(prompt_q, pk, pv);
  auto prefix_scores = from_slots(
      prompts_to_slots(fused ? decode_attention_scores(prompt_q, pk) : torch::matmul(prompt_q, pk.transpose(2, 3)), G));
  auto own_scores = fused ? decode_attention_scores(q, k) : torch::matmul(q, k.transpose(2, 3));
  auto scores = torch::cat({prefix_scores, own_scores}, -1).mul_(scale);
  auto scores5 = scores.view({B, kv, n_rep, seq, Lp + Ls});
  torch::Tensor probs = mask.defined() ? torch::softmax(scores5.to(torch::kFloat) + mask.unsqueeze(1), -1)
                                       : torch::softmax(scores5, -1, torch::kFloat);
  probs = probs.to(q.scalar_type()).view({B, kv, m, Lp + Ls});
  auto own = fused ? decode_attention_values(probs.narrow(-1, Lp, Ls), v) : torch::matmul(probs.narrow(-1, Lp, Ls), v);
  const auto prompt_probs = slots_to_prompts(to_slots(probs.narrow(-1, 0, Lp)), G);
  auto shared = from_slots(
      prompts_to_slots(fused ? decode_attention_values(prompt_probs, pv) : torch::matmul(prompt_probs, pv), G));
  return own.add_(shared);  // own is contiguous (a fresh product); shared may be a strided view
}

}  // namespace

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
  if (cache != nullptr && cache->has_shared_prefix()) {
    auto out = shared_prefix_attention(qg, k, v, *cache, layer, in.mask, n_rep,
                                       1.0 / std::sqrt(static_cast<double>(head_dim_)))
                   .view({batch, num_heads_, seq, head_dim_})
                   .transpose(1, 2)
                   .reshape({batch, seq, num_heads_ * head_dim_});
    return lora_linear(o_proj, o_lora, out);
  }
  // Decode on the CPU: the two products straight from the cache (decode_attention.h); the
  // softmax between them is the same either way.
  const bool fused = decode_attention_applies(qg, k, v);
  auto scores = (fused ? decode_attention_scores(qg, k) : torch::matmul(qg, k.transpose(2, 3)))
                    .mul_(1.0 / std::sqrt(static_cast<double>(head_dim_)));
  auto scores5 = scores.view({batch, num_kv_heads_, n_rep, seq, total});
  torch::Tensor probs;
  if (in.mask.defined()) {
    // HF: softmax(scores + causal_mask, dtype=float32).to(query dtype)
    probs = torch::softmax(scores5.to(torch::kFloat) + in.mask.unsqueeze(1), -1);
  } else {
    probs = torch::softmax(scores5, -1, torch::kFloat);
  }
  probs = probs.to(q.scalar_type()).view({batch, num_kv_heads_, n_rep * seq, total});
  auto out = (fused ? decode_attention_values(probs, v) : torch::matmul(probs, v))  // [batch, kv, n_rep * seq, d]
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
