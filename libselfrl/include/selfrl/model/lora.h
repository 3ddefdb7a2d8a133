// LoRA (Hu et al. 2021) on the linear projections of a CausalLM, with PEFT's knobs, tensor
// names and files, so that an adapter trained here loads in PEFT and one trained in PEFT loads
// here.
//
// An adapted projection computes  y = W x + b + s · B (A (dropout(x)))  with A [r, in],
// B [out, r] and s = lora_alpha / r (use_rslora: lora_alpha / √r). The base weights are frozen
// and never copied; A and B are the only trainable parameters, kept in float32 whatever the
// base dtype (PEFT's autocast_adapter_dtype). PEFT's initialization: A
// Kaiming-uniform (a = √5, as nn.Linear), B = 0, so an adapted model starts equal to its base.
//
// Names: the adapter of model.layers.3.self_attn.q_proj is the parameters
// model.layers.3.self_attn.q_proj.lora_A.weight / .lora_B.weight of the CausalLM; PEFT's files
// prefix them with "base_model.model." (adapter_model.safetensors, adapter_config.json).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

namespace selfrl::model {

class CausalLM;

// PEFT's LoraConfig fields (task_type CAUSAL_LM).
struct LoraConfig {
  int64_t r = 8;
  double lora_alpha = 8;
  double lora_dropout = 0.0;
  // Module names (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head) or
  // {"all-linear"}: every projection of the decoder layers (PEFT leaves lm_head out of it).
  std::vector<std::string> target_modules = {"q_proj", "v_proj"};
  bool use_rslora = false;
  bool init_lora_weights = true;        // false: B random too (PEFT's testing option), not an identity start
  std::string base_model_name_or_path;  // written to adapter_config.json

  double scaling() const;
  // Throws Error (naming `source`) for r < 1, a negative alpha or dropout outside [0, 1), an
  // unknown module name.
  void validate(const std::string& source = "lora") const;
  // adapter_config.json ↔ LoraConfig. Unknown PEFT options that change the computation
  // (use_dora, fan_in_fan_out, rank_pattern, alpha_pattern, layers_to_transform, bias other than
  // "none", modules_to_save) are an error naming the file.
  static LoraConfig from_peft_json(const nlohmann::json& j, const std::string& source);
  nlohmann::json to_peft_json() const;
};

// The projections `target_modules` can name.
const std::vector<std::string>& lora_module_names();

// One adapted projection: its A and B (registered on the projection's Linear module, so the
// names come out as PEFT's) and the scale.
class LoraAdapterImpl : public torch::nn::Module {
 public:
  LoraAdapterImpl(torch::nn::Linear& base, const LoraConfig& cfg);
  // s · B(A(dropout(x))) in x's dtype; zero when disabled.
  torch::Tensor delta(const torch::Tensor& x);
  // s · B · A [out, in] (float32): what merging adds to the base weight.
  torch::Tensor delta_weight() const;
  torch::nn::Linear lora_A{nullptr}, lora_B{nullptr};
  torch::nn::Dropout dropout{nullptr};
  double scaling = 1.0;
  bool enabled = true;
};
TORCH_MODULE(LoraAdapter);

// base(x) plus the adapter's delta when `adapter` is set and enabled.
inline torch::Tensor lora_linear(torch::nn::Linear& base, LoraAdapter& adapter, const torch::Tensor& x) {
  auto y = base(x);
  if (adapter && adapter->enabled) y = y + adapter->delta(x);
  return y;
}

// Adds adapters to `model` (frozen afterwards except A and B) and returns how many
// projections were adapted. Throws Error when the model already has adapters or a target
// matches nothing (lm_head on a tied model).
int64_t add_lora(CausalLM& model, const LoraConfig& cfg);

// Whether the model has adapters, and the adapters' parameters by CausalLM name.
bool has_lora(const CausalLM& model);
std::vector<std::pair<std::string, torch::Tensor>> lora_parameters(const CausalLM& model);

// Turns every adapter off (the base model: GRPO's and DPO's reference without a second copy)
// for the guard's lifetime.
class LoraDisabled {
 public:
  explicit LoraDisabled(CausalLM& model);
  ~LoraDisabled();
  LoraDisabled(const LoraDisabled&) = delete;
  LoraDisabled& operator=(const LoraDisabled&) = delete;

 private:
  CausalLM& model_;
};

// For a rollout phase: every adapted weight becomes W + s·B·A (in W's dtype) and the adapters
// are switched off, so generation costs what the base costs; on destruction the original W is
// copied back bit for bit (the guard keeps a copy of the adapted weights while it lives).
class LoraMerged {
 public:
  explicit LoraMerged(CausalLM& model);
  ~LoraMerged();
  LoraMerged(const LoraMerged&) = delete;
  LoraMerged& operator=(const LoraMerged&) = delete;

 private:
  CausalLM& model_;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> saved_;  // (weight, its original values)
};

// PEFT's layout: adapter_config.json + adapter_model.safetensors (names prefixed
// "base_model.model.", float32 unless the adapters are in another dtype).
void save_lora(const CausalLM& model, const LoraConfig& cfg, const std::string& dir);
// Reads a PEFT adapter directory into `model` (adds the adapters first). Missing, unexpected or
// mis-shaped tensors are one Error naming each tensor and the file.
LoraConfig load_lora(CausalLM& model, const std::string& dir);
// Adapted weights merged into the base (W += s·B·A) and the adapters removed: the model then
// saves as a plain HF model (save_pretrained).
void merge_lora(CausalLM& model);

}  // namespace selfrl::model
