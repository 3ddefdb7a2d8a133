// Hugging Face config.json parsing (see selfrl/io/model_config.h).
#include "selfrl/io/model_config.h"

#include <cstdio>
#include <filesystem>

#include "selfrl/core/error.h"
#include "selfrl/io/file_util.h"

namespace selfrl::io {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

Error key_error(const std::string& source, const std::string& key, const std::string& what) {
  return Error("'" + key + "' " + what).at(source);
}

int64_t get_int(const json& j, const std::string& source, const std::string& key, std::optional<int64_t> fallback) {
  if (!j.contains(key) || j[key].is_null()) {
    if (fallback) return *fallback;
    throw key_error(source, key, "is required").hint("add it to config.json");
  }
  const json& v = j[key];
  if (!v.is_number_integer()) throw key_error(source, key, std::string("must be an integer, got ") + v.dump());
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    throw key_error(source, key, "is " + v.dump() + ", larger than any size a model can have");
  return v.get<int64_t>();
}

double get_double(const json& j, const std::string& source, const std::string& key, double fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const json& v = j[key];
  if (!v.is_number()) throw key_error(source, key, std::string("must be a number, got ") + v.dump());
  return v.get<double>();
}

bool get_bool(const json& j, const std::string& source, const std::string& key, bool fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const json& v = j[key];
  if (!v.is_boolean()) throw key_error(source, key, std::string("must be true or false, got ") + v.dump());
  return v.get<bool>();
}

std::string get_string(const json& j, const std::string& source, const std::string& key, const std::string& fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const json& v = j[key];
  if (!v.is_string()) throw key_error(source, key, std::string("must be a string, got ") + v.dump());
  return v.get<std::string>();
}

std::optional<int64_t> get_opt_int(const json& j, const std::string& source, const std::string& key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  return get_int(j, source, key, std::nullopt);
}

}  // namespace

ModelConfig ModelConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw Error("config is not a JSON object").at(source);
  ModelConfig c;
  c.raw = j;
  if (j.contains("architectures") && !j["architectures"].is_null()) {
    if (!j["architectures"].is_array()) throw key_error(source, "architectures", "must be a list of strings");
    for (const auto& a : j["architectures"]) {
      if (!a.is_string()) throw key_error(source, "architectures", "must be a list of strings");
      c.architectures.push_back(a.get<std::string>());
    }
  }
  c.model_type = get_string(j, source, "model_type", "");
  c.vocab_size = get_int(j, source, "vocab_size", std::nullopt);
  c.hidden_size = get_int(j, source, "hidden_size", std::nullopt);
  c.intermediate_size = get_int(j, source, "intermediate_size", std::nullopt);
  c.num_hidden_layers = get_int(j, source, "num_hidden_layers", std::nullopt);
  c.num_attention_heads = get_int(j, source, "num_attention_heads", std::nullopt);
  c.num_key_value_heads = get_int(j, source, "num_key_value_heads", c.num_attention_heads);
  const std::optional<int64_t> default_head_dim = c.num_attention_heads > 0
                                                      ? std::optional<int64_t>(c.hidden_size / c.num_attention_heads)
                                                      : std::optional<int64_t>(0);
  c.head_dim = get_int(j, source, "head_dim", default_head_dim);
  c.max_position_embeddings = get_int(j, source, "max_position_embeddings", 2048);
  c.rms_norm_eps = get_double(j, source, "rms_norm_eps", 1e-6);
  c.rope_theta = get_double(j, source, "rope_theta", 10000.0);
  c.tie_word_embeddings = get_bool(j, source, "tie_word_embeddings", false);
  c.attention_bias = get_bool(j, source, "attention_bias", false);
  c.mlp_bias = get_bool(j, source, "mlp_bias", false);
  c.hidden_act = get_string(j, source, "hidden_act", "silu");
  c.torch_dtype = get_string(j, source, "torch_dtype", "");
  c.bos_token_id = get_opt_int(j, source, "bos_token_id");
  c.pad_token_id = get_opt_int(j, source, "pad_token_id");
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const json& e = j["eos_token_id"];
    if (e.is_number_integer()) {
      c.eos_token_ids.push_back(e.get<int64_t>());
    } else if (e.is_array()) {
      for (const auto& v : e) {
        if (!v.is_number_integer()) throw key_error(source, "eos_token_id", "must be an integer or a list of integers");
        c.eos_token_ids.push_back(v.get<int64_t>());
      }
    } else {
      throw key_error(source, "eos_token_id", "must be an integer or a list of integers");
    }
  }
  // transformers >= 5 writes RoPE as "rope_parameters": {"rope_type", "rope_theta", <scaling
  // fields>} instead of "rope_theta" + "rope_scaling"; both forms are read, the legacy keys win.
  const json* rope_params = nullptr;
  if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    if (!j["rope_parameters"].is_object()) throw key_error(source, "rope_parameters", "must be an object or null");
    rope_params = &j["rope_parameters"];
    if (!j.contains("rope_theta") && rope_params->contains("rope_theta"))
      c.rope_theta = get_double(*rope_params, source, "rope_theta", 10000.0);
  }
  auto parse_scaling = [&](const json& r, const std::string& key) {
    if (!r.is_object()) throw key_error(source, key, "must be an object or null");
    RopeScaling rs;
    const std::string where = source;
    rs.rope_type = get_string(r, where, "rope_type", get_string(r, where, "type", ""));
    if (rs.rope_type.empty()) throw key_error(source, key + ".rope_type", "is required when " + key + " is set");
    rs.factor = get_double(r, where, "factor", 1.0);
    rs.low_freq_factor = get_double(r, where, "low_freq_factor", 1.0);
    rs.high_freq_factor = get_double(r, where, "high_freq_factor", 4.0);
    rs.original_max_position_embeddings = get_int(r, where, "original_max_position_embeddings", int64_t{0});
    c.rope_scaling = rs;
  };
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    parse_scaling(j["rope_scaling"], "rope_scaling");
  } else if (rope_params) {
    const std::string type =
        get_string(*rope_params, source, "rope_type", get_string(*rope_params, source, "type", "default"));
    if (type != "default") parse_scaling(*rope_params, "rope_parameters");
  }
  c.validate(source);
  return c;
}

void ModelConfig::validate(const std::string& source) const {
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) throw key_error(source, key, "must be positive, got " + std::to_string(v));
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("head_dim", head_dim);
  positive("max_position_embeddings", max_position_embeddings);
  if (!raw.contains("head_dim") && hidden_size % num_attention_heads != 0) {
    throw key_error(source, "hidden_size",
                    "(" + std::to_string(hidden_size) + ") is not divisible by num_attention_heads (" +
                        std::to_string(num_attention_heads) + ")")
        .hint("set head_dim explicitly or choose sizes that divide");
  }
  if (num_attention_heads % num_key_value_heads != 0) {
    throw key_error(source, "num_attention_heads",
                    "(" + std::to_string(num_attention_heads) + ") is not a multiple of num_key_value_heads (" +
                        std::to_string(num_key_value_heads) + ")");
  }
  if (head_dim % 2 != 0)
    throw key_error(source, "head_dim", "must be even for rotary embeddings, got " + std::to_string(head_dim));
  if (hidden_act != "silu" && hidden_act != "swish") {
    throw key_error(source, "hidden_act", "is '" + hidden_act + "', but the supported architectures use silu")
        .hint("only SiLU/SwiGLU MLPs (Llama, Qwen2, Qwen3, Mistral) are implemented");
  }
  const double params = estimated_parameters();
  if (params > kMaxModelParameters) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3g", params);
    throw Error(std::string("describes a model of about ") + buf + " parameters, above the limit of " +
                std::to_string(static_cast<int64_t>(kMaxModelParameters / 1e9)) + "B")
        .at(source)
        .hint("check vocab_size, hidden_size, intermediate_size and num_hidden_layers");
  }
  if (!(rms_norm_eps > 0)) throw key_error(source, "rms_norm_eps", "must be positive");
  // An epsilon >= 1 swamps the mean square: every hidden state is scaled to ~0.
  if (!(rms_norm_eps < 1)) throw key_error(source, "rms_norm_eps", "must be below 1 (models use 1e-5 or 1e-6)");
  if (!(rope_theta > 0)) throw key_error(source, "rope_theta", "must be positive");
  for (int64_t e : eos_token_ids) {
    if (e < 0 || e >= vocab_size)
      throw key_error(source, "eos_token_id",
                      "(" + std::to_string(e) + ") is outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
  }
  if (bos_token_id && (*bos_token_id < 0 || *bos_token_id >= vocab_size))
    throw key_error(source, "bos_token_id", "(" + std::to_string(*bos_token_id) + ") is outside the vocabulary");
  if (rope_scaling && rope_scaling->rope_type == "llama3") {
    if (rope_scaling->original_max_position_embeddings <= 0)
      throw key_error(source, "rope_scaling.original_max_position_embeddings", "must be positive for rope_type llama3");
    if (!(rope_scaling->factor > 0)) throw key_error(source, "rope_scaling.factor", "must be positive");
    if (!(rope_scaling->high_freq_factor > rope_scaling->low_freq_factor))
      throw key_error(source, "rope_scaling.high_freq_factor", "must exceed low_freq_factor");
  }
}

double ModelConfig::estimated_parameters() const {
  const double h = static_cast<double>(hidden_size), v = static_cast<double>(vocab_size);
  const double q = static_cast<double>(num_attention_heads) * static_cast<double>(head_dim);
  const double kv = static_cast<double>(num_key_value_heads) * static_cast<double>(head_dim);
  const double attention = h * q + 2 * h * kv + q * h + (q + 2 * kv + h) + 2 * static_cast<double>(head_dim);
  const double mlp = 3 * h * static_cast<double>(intermediate_size) + 2 * static_cast<double>(intermediate_size) + h;
  const double layer = attention + mlp + 2 * h;
  return v * h * (tie_word_embeddings ? 1 : 2) + static_cast<double>(num_hidden_layers) * layer + h;
}

ModelConfig ModelConfig::load(const std::string& path) {
  fs::path p(path);
  if (fs::is_directory(p)) p /= "config.json";
  if (!fs::exists(p)) {
    throw Error("config.json not found").at(p.string()).hint("point to a Hugging Face model directory");
  }
  return from_json(read_json_file(p.string()), p.string());
}

json ModelConfig::to_json() const {
  json j = raw.is_object() ? raw : json::object();
  if (!architectures.empty()) j["architectures"] = architectures;
  if (!model_type.empty()) j["model_type"] = model_type;
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["attention_bias"] = attention_bias;
  j["mlp_bias"] = mlp_bias;
  j["hidden_act"] = hidden_act;
  if (!torch_dtype.empty()) j["torch_dtype"] = torch_dtype;
  if (bos_token_id) j["bos_token_id"] = *bos_token_id;
  if (pad_token_id) j["pad_token_id"] = *pad_token_id;
  if (eos_token_ids.size() == 1)
    j["eos_token_id"] = eos_token_ids[0];
  else if (!eos_token_ids.empty())
    j["eos_token_id"] = eos_token_ids;
  if (rope_scaling) {
    j["rope_scaling"] = {{"rope_type", rope_scaling->rope_type},
                         {"factor", rope_scaling->factor},
                         {"low_freq_factor", rope_scaling->low_freq_factor},
                         {"high_freq_factor", rope_scaling->high_freq_factor},
                         {"original_max_position_embeddings", rope_scaling->original_max_position_embeddings}};
  }
  return j;
}

void ModelConfig::save(const std::string& dir) const {
  fs::create_directories(dir);
  write_text_file_atomic((fs::path(dir) / "config.json").string(), to_json().dump(2) + "\n");
}

}  // namespace selfrl::io
