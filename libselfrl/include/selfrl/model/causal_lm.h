// CausalLM: a decoder-only transformer (LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)
// whose parameters carry the Hugging Face names, so a checkpoint maps onto named_parameters()
// one to one:
//
//   model.embed_tokens.weight, model.layers.{i}.self_attn.{q,k,v,o}_proj.{weight,bias},
//   model.layers.{i}.self_attn.{q,k}_norm.weight (Qwen3), model.layers.{i}.mlp.{gate,up,down}_proj.weight,
//   model.layers.{i}.{input,post_attention}_layernorm.weight, model.norm.weight,
//   lm_head.weight (absent when tie_word_embeddings)
//
// forward() returns the final hidden states (after model.norm, before lm_head): the training
// path turns them into logprobs in chunks (token_logprobs.h) without building the full
// [batch, seq, vocab] logits; generation takes logits of the last position only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include "selfrl/io/model_config.h"
#include "selfrl/io/safetensors.h"
#include "selfrl/model/kv_cache.h"
#include "selfrl/model/layers.h"

namespace selfrl::model {

// The architectures from_config accepts (config.json "architectures"[0], or model_type).
const std::vector<std::string>& supported_architectures();

struct ForwardOptions {
  // [batch, past + seq], 1 for real tokens and 0 for (left) padding; undefined = all ones.
  torch::Tensor attention_mask;
  // [batch, seq]; undefined = HF's default: cumsum(attention_mask) - 1 over past + seq,
  // taking the last `seq` columns (pads get position 1, as transformers does).
  torch::Tensor position_ids;
  // Packed (padding-free) rows, [batch, seq] int64: several sequences share a row, each a
  // contiguous run of one id > 0, and a token attends only to earlier tokens of its own
  // sequence; id 0 marks padding that nothing attends to. Needs position_ids (restarting at 0
  // for each sequence, as transformers' DataCollatorWithFlattening writes them); not with
  // attention_mask or a cache.
  torch::Tensor segment_ids;
  // Incremental decoding: keys/values are appended and attention covers the cached prefix.
  KVCache* cache = nullptr;
  // Recompute each layer in backward instead of keeping its activations (training only).
  bool activation_checkpointing = false;
  // Check that ids lie in [0, vocab_size) (one min/max) and that past + seq columns fit under
  // max_position_embeddings. The rollout engine validates both itself and turns this off: with
  // continuous batching its left-padded columns can outnumber any row's positions.
  bool check_ids = true;
};

// transformers' LlamaModel: the embedding, the decoder layers and the final norm.
class TransformerModelImpl : public torch::nn::Module {
 public:
  TransformerModelImpl(const io::ModelConfig& cfg, bool qkv_bias, bool o_bias, bool qk_norm);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(TransformerModel);

class CausalLM : public torch::nn::Module {
 public:
  // Random initialization like HF `_init_weights`: normal(0, initializer_range = 0.02) for
  // linear and embedding weights, zero biases, unit norms. Throws Error for unsupported
  // architectures. Parameters are float32 on the CPU; use to(device, dtype) afterwards.
  // With init_weights false the parameters are left uninitialized (from_pretrained fills them).
  explicit CausalLM(const io::ModelConfig& cfg, bool init_weights = true);

  // Builds a model from config.json in `dir` and loads its safetensors (single file or shards)
  // by exact HF names, converting to `dtype` on `device`. Missing, unexpected and mis-shaped
  // tensors are reported together in one Error (name, expected vs got shape, file).
  static std::shared_ptr<CausalLM> from_pretrained(const std::string& dir, const c10::Device& device = c10::kCPU,
                                                   c10::ScalarType dtype = c10::kFloat);
  // A randomly initialized model seeded with `seed`, on `device` in `dtype`.
  static std::shared_ptr<CausalLM> from_config(const io::ModelConfig& cfg, uint64_t seed = 0,
                                               const c10::Device& device = c10::kCPU,
                                               c10::ScalarType dtype = c10::kFloat);

  // input_ids [batch, seq] int64 → hidden states [batch, seq, hidden].
  torch::Tensor forward(const torch::Tensor& input_ids, const ForwardOptions& opts = {});
  // Hidden states [..., hidden] → logits [..., vocab] in the model dtype.
  torch::Tensor logits(const torch::Tensor& hidden) const;
  // lm_head.weight, or model.embed_tokens.weight when tied: [vocab, hidden].
  torch::Tensor lm_head_weight() const;

  // An empty cache sized for this model.
  KVCache make_cache(int64_t batch, int64_t capacity) const;

  const io::ModelConfig& config() const { return cfg_; }
  // Parameters by Hugging Face name, in checkpoint order (LoRA adapters excluded: see lora.h).
  io::NamedTensors hf_state_dict() const;
  torch::Device device() const;
  torch::ScalarType dtype() const;

  // Writes config.json (torch_dtype updated) and safetensors in the HF layout, sharded when
  // larger than `max_shard_bytes`. Tied models write no lm_head.weight.
  void save_pretrained(const std::string& dir, uint64_t max_shard_bytes = 5'000'000'000ULL) const;

  TransformerModel model{nullptr};     // "model."
  torch::nn::Linear lm_head{nullptr};  // "lm_head.weight"; null when tied
  LoraAdapter lm_head_lora{nullptr};   // LoRA on lm_head (applied as W + s·B·A in lm_head_weight())

 private:
  io::ModelConfig cfg_;
  // float32 and not a registered buffer, so that to(dtype) leaves the RoPE frequencies exact.
  torch::Tensor inv_freq_;
};

// EOS ids: config.json's eos_token_id plus generation_config.json's (when that file exists).
std::vector<int64_t> eos_token_ids(const std::string& dir, const io::ModelConfig& cfg);

}  // namespace selfrl::model
