// config.json parsing: HF defaults, round trip, and errors that name the key.
#include "selfrl/io/model_config.h"

#include <gtest/gtest.h>

#include "test_util.h"

using nlohmann::json;
using selfrl::io::ModelConfig;

namespace {
json llama3_8b() {
  // The shape of meta-llama/Llama-3.1-8B's config.json.
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256,
    "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "tie_word_embeddings": false,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "torch_dtype": "bfloat16",
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "hidden_act": "silu", "attention_bias": false, "mlp_bias": false, "use_cache": true})");
}
}  // namespace

TEST(ModelConfig, ParsesLlama31) {
  const auto c = ModelConfig::from_json(llama3_8b(), "config.json");
  EXPECT_EQ(c.architectures, std::vector<std::string>{"LlamaForCausalLM"});
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 128);  // hidden_size / num_attention_heads when absent
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  ASSERT_TRUE(c.rope_scaling.has_value());
  EXPECT_EQ(c.rope_scaling->rope_type, "llama3");
  EXPECT_EQ(c.rope_scaling->original_max_position_embeddings, 8192);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(*c.bos_token_id, 128000);
}

TEST(ModelConfig, ReadsTransformers5RopeParameters) {
  // transformers >= 5 saves RoPE as "rope_parameters" (no top-level rope_theta / rope_scaling).
  json j = llama3_8b();
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_type", "llama3"},   {"rope_theta", 500000.0},
                          {"factor", 8.0},           {"low_freq_factor", 1.0},
                          {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  const auto v5 = ModelConfig::from_json(j, "config.json");
  const auto v4 = ModelConfig::from_json(llama3_8b(), "config.json");
  EXPECT_EQ(v5.rope_theta, 500000.0);
  ASSERT_TRUE(v5.rope_scaling.has_value());
  EXPECT_EQ(v5.rope_scaling->rope_type, "llama3");
  EXPECT_EQ(v5.rope_scaling->factor, v4.rope_scaling->factor);
  EXPECT_EQ(v5.rope_scaling->original_max_position_embeddings, 8192);
  // Qwen-style: only a base frequency.
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1000000.0}};
  const auto q = ModelConfig::from_json(j);
  EXPECT_EQ(q.rope_theta, 1000000.0);
  EXPECT_FALSE(q.rope_scaling.has_value());
  // A legacy rope_theta next to rope_parameters wins; a malformed one is named.
  j["rope_theta"] = 20000.0;
  EXPECT_EQ(ModelConfig::from_json(j).rope_theta, 20000.0);
  j["rope_parameters"] = 3;
  EXPECT_SELFRL_ERROR(ModelConfig::from_json(j, "cfg.json"), "cfg.json", "rope_parameters");
}

TEST(ModelConfig, DefaultsFollowTransformers) {
  json j = {{"vocab_size", 100},
            {"hidden_size", 64},
            {"intermediate_size", 128},
            {"num_hidden_layers", 2},
            {"num_attention_heads", 4}};
  const auto c = ModelConfig::from_json(j);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.rope_scaling.has_value());
  // Qwen3 style: explicit head_dim that is not hidden/heads.
  j["head_dim"] = 32;
  EXPECT_EQ(ModelConfig::from_json(j).head_dim, 32);
  // The old "type" spelling of rope_scaling.
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  EXPECT_EQ(ModelConfig::from_json(j).rope_scaling->rope_type, "linear");
}

TEST(ModelConfig, SaveLoadKeepsUnknownKeys) {
  selfrl::test::TempDir dir;
  auto j = llama3_8b();
  j["some_future_key"] = {1, 2};
  const auto c = ModelConfig::from_json(j);
  c.save(dir.path());
  const auto back = ModelConfig::load(dir.path());
  EXPECT_EQ(back.raw["some_future_key"], json({1, 2}));
  EXPECT_EQ(back.to_json(), c.to_json());
}

TEST(ModelConfig, ErrorsNameTheKey) {
  auto j = llama3_8b();
  j["num_attention_heads"] = 0;
  EXPECT_SELFRL_ERROR(ModelConfig::from_json(j, "cfg.json"), "cfg.json", "'num_attention_heads' must be positive");
  j = llama3_8b();
  j["hidden_size"] = 4095;
  EXPECT_SELFRL_ERROR(ModelConfig::from_json(j, "cfg.json"), "'hidden_size'", "not divisible by num_attention_heads");
  j = llama3_8b();
  j["num_key_value_heads"] = 5;
  EXPECT_SELFRL_ERROR(ModelConfig::from_json(j), "not a multiple of num_key_value_heads");
  j = llama3_8b();
  j["vocab_size"] = "big";
  EXPECT_SELFRL_ERROR(ModelConfig::from_json(j), "'vocab_size' must be an integer");
  j = llama3_8b();
  j.erase("hidden_size");
  EXPECT_SELFRL_ERROR(ModelConfig::from_json(j), "'hidden_size' is required");
  j = llama3_8b();
  j["eos_token_id"] = 999999;
  EXPECT_SELFRL_ERROR(ModelConfig::from_json(j), "'eos_token_id'", "outside the vocabulary");
  j = llama3_8b();
  j["rope_scaling"].erase("original_max_position_embeddings");
  EXPECT_SELFRL_ERROR(ModelConfig::from_json(j), "original_max_position_embeddings");
}

TEST(ModelConfig, FileErrorsNameLineAndColumn) {
  selfrl::test::TempDir dir;
  selfrl::test::write_bytes(dir.file("config.json"), "{\n  \"vocab_size\": 10,\n  \"hidden_size\": ,\n}");
  EXPECT_SELFRL_ERROR(ModelConfig::load(dir.path()), "config.json:3:", "invalid JSON");
  selfrl::test::TempDir empty;
  EXPECT_SELFRL_ERROR(ModelConfig::load(empty.path()), "config.json not found");
}
