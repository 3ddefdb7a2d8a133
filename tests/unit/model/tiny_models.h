// Tiny model configurations shared by the model and generation tests (fast on 2 CPU cores).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "selfrl/io/model_config.h"
#include "selfrl/model/causal_lm.h"

namespace selfrl::test {

// arch: "llama", "llama3" (llama3 rope scaling), "qwen2", "qwen3" (explicit head_dim that
// differs from hidden / heads), "tied" (llama with tie_word_embeddings).
inline nlohmann::json tiny_config_json(const std::string& arch, int64_t vocab = 61) {
  nlohmann::json j = {{"vocab_size", vocab},
                      {"hidden_size", 32},
                      {"intermediate_size", 48},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 4},
                      {"num_key_value_heads", 2},
                      {"max_position_embeddings", 128},
                      {"rms_norm_eps", 1e-5},
                      {"rope_theta", 10000.0},
                      {"tie_word_embeddings", false}};
  if (arch == "llama" || arch == "llama3" || arch == "tied") {
    j["architectures"] = {"LlamaForCausalLM"};
    j["model_type"] = "llama";
    if (arch == "tied") j["tie_word_embeddings"] = true;
    if (arch == "llama3") {
      j["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", 8.0},
                           {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0},
                           {"original_max_position_embeddings", 16}};
    }
  } else if (arch == "qwen2") {
    j["architectures"] = {"Qwen2ForCausalLM"};
    j["model_type"] = "qwen2";
  } else if (arch == "qwen3") {
    j["architectures"] = {"Qwen3ForCausalLM"};
    j["model_type"] = "qwen3";
    j["head_dim"] = 16;
  }
  return j;
}

inline io::ModelConfig tiny_config(const std::string& arch, int64_t vocab = 61) {
  return io::ModelConfig::from_json(tiny_config_json(arch, vocab), "tiny:" + arch);
}

// A tiny model with some config fields replaced (e.g. {"eos_token_id": 15}) and the default
// initialization (std 0.02): the trainer tests' toy policies.
inline std::shared_ptr<model::CausalLM> tiny_model_with(const std::string& arch, int64_t vocab,
                                                        const nlohmann::json& overrides, uint64_t seed) {
  auto j = tiny_config_json(arch, vocab);
  j.update(overrides);
  return model::CausalLM::from_config(io::ModelConfig::from_json(j, "tiny:" + arch), seed);
}

// A random model whose weights are large enough (std 0.2) for peaked, tie-free distributions.
inline std::shared_ptr<model::CausalLM> tiny_model(const std::string& arch, uint64_t seed = 0) {
  auto cfg = tiny_config(arch);
  cfg.raw["initializer_range"] = 0.2;
  auto m = model::CausalLM::from_config(cfg, seed);
  torch::NoGradGuard g;
  for (auto& p : m->named_parameters()) {
    if (p.key().find(".bias") != std::string::npos) p.value().normal_(0, 0.1);
    if (p.key().find("embed_tokens") != std::string::npos) p.value().normal_(0, 1.0);
  }
  return m;
}

}  // namespace selfrl::test
