// Model shapes the benchmarks share (random weights; the shapes are what matters for speed).
//   llama-25m     the ~25M-parameter Llama of the CPU numbers (hidden 512, 8 layers, vocab 8192)
//   qwen2.5-0.5b  Qwen2.5-0.5B's shape: hidden 896, 24 layers, 14 heads / 2 KV heads, q/k/v
//                 biases, vocabulary 151,936, tied embeddings
//   llama-1b      Llama-3.2-1B's shape: hidden 2048, 16 layers, 32 heads / 8 KV heads,
//                 vocabulary 128,256, tied embeddings
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "selfrl/io/model_config.h"

namespace selfrl::bench {

inline io::ModelConfig preset_config(const std::string& name) {
  nlohmann::json j;
  if (name == "llama-25m") {
    j = {{"architectures", {"LlamaForCausalLM"}},
         {"model_type", "llama"},
         {"vocab_size", 8192},
         {"hidden_size", 512},
         {"intermediate_size", 1408},
         {"num_hidden_layers", 8},
         {"num_attention_heads", 8},
         {"num_key_value_heads", 8},
         {"max_position_embeddings", 2048},
         {"rms_norm_eps", 1e-5},
         {"rope_theta", 10000.0},
         {"tie_word_embeddings", false}};
  } else if (name == "qwen2.5-0.5b") {
    j = {{"architectures", {"Qwen2ForCausalLM"}},
         {"model_type", "qwen2"},
         {"vocab_size", 151936},
         {"hidden_size", 896},
         {"intermediate_size", 4864},
         {"num_hidden_layers", 24},
         {"num_attention_heads", 14},
         {"num_key_value_heads", 2},
         {"max_position_embeddings", 32768},
         {"rms_norm_eps", 1e-6},
         {"rope_theta", 1000000.0},
         {"tie_word_embeddings", true}};
  } else if (name == "llama-1b") {
    j = {{"architectures", {"LlamaForCausalLM"}},
         {"model_type", "llama"},
         {"vocab_size", 128256},
         {"hidden_size", 2048},
         {"intermediate_size", 8192},
         {"num_hidden_layers", 16},
         {"num_attention_heads", 32},
         {"num_key_value_heads", 8},
         {"max_position_embeddings", 131072},
         {"rms_norm_eps", 1e-5},
         {"rope_theta", 500000.0},
         {"tie_word_embeddings", true}};
  } else {
    throw std::invalid_argument("unknown --model '" + name + "' (llama-25m, qwen2.5-0.5b, llama-1b)");
  }
  return io::ModelConfig::from_json(j, "preset:" + name);
}

}  // namespace selfrl::bench
