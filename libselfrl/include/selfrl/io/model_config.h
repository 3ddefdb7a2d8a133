// A Hugging Face config.json for decoder-only transformers (Llama, Qwen2, Qwen3 and kin),
// parsed into a typed struct and validated once, at the edge.
//
// Defaults follow transformers' configuration classes where a key is absent
// (e.g. num_key_value_heads = num_attention_heads, head_dim = hidden_size / heads,
// rope_theta = 10000). Errors name the file and the key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace selfrl::io {

// Configs describing more parameters than this are refused as corrupt (the largest open
// decoder-only models are ~1T parameters).
inline constexpr double kMaxModelParameters = 2e12;

struct RopeScaling {
  std::string rope_type;  // "llama3", "linear", "dynamic", "yarn", ... (HF: rope_type or type)
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 0;
};

struct ModelConfig {
  std::vector<std::string> architectures;  // e.g. {"LlamaForCausalLM"}
  std::string model_type;                  // e.g. "llama", "qwen2", "qwen3"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v/o biases (Llama); Qwen2 always has q/k/v biases
  bool mlp_bias = false;
  std::string hidden_act = "silu";
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // config's eos_token_id, an int or a list
  std::optional<int64_t> pad_token_id;
  std::string torch_dtype;  // as written ("bfloat16", ...); empty when absent

  // The config.json as read (or as last produced), so that saving keeps keys we don't model.
  nlohmann::json raw;

  // Parses and validates a config object; `source` names it in errors (a path or "<json>").
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source = "<json>");
  // Reads `path` (a config.json or a directory holding one).
  static ModelConfig load(const std::string& path);

  // The config as Hugging Face writes it: `raw` updated with every typed field.
  nlohmann::json to_json() const;
  // Writes config.json into `dir` atomically.
  void save(const std::string& dir) const;

  // Parameters the model this config describes holds (upper bound: counts every optional bias
  // and norm), in double so that absurd sizes do not overflow. Used to refuse a config before
  // anything is allocated.
  double estimated_parameters() const;

  // Rechecks the invariants (positive sizes, heads dividing hidden_size, ...). Throws Error.
  void validate(const std::string& source = "<config>") const;
};

}  // namespace selfrl::io
