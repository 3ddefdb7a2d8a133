// Loading and saving CausalLM in the Hugging Face layout: config.json + model.safetensors (or
// shards with model.safetensors.index.json), tensors named exactly as transformers names them.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "selfrl/core/device.h"
#include "selfrl/core/error.h"
#include "selfrl/core/logging.h"
#include "selfrl/io/file_util.h"
#include "selfrl/io/safetensors.h"
#include "selfrl/model/causal_lm.h"

namespace selfrl::model {
namespace {

std::string shape_str(at::IntArrayRef shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

// Tensors transformers itself ignores when loading (older checkpoints stored the RoPE buffer).
bool ignorable(const std::string& name) { return name.find("rotary_emb.inv_freq") != std::string::npos; }

// LibTorch 1.13 has no float16 matmul on the CPU ("addmm_impl_cpu_" not implemented for 'Half').
void check_device_dtype(const c10::Device& device, c10::ScalarType dtype) {
  if (dtype != c10::kFloat && dtype != c10::kBFloat16 && dtype != c10::kHalf) {
    throw Error("unsupported model dtype " + dtype_name(dtype)).hint("use float32, bfloat16 or float16");
  }
  if (device.is_cpu() && dtype == c10::kHalf) {
    throw Error("float16 is not supported on the CPU (LibTorch has no float16 matmul there)")
        .hint("use bfloat16 or float32 on the CPU, float16 on CUDA");
  }
}

// A config that describes a far larger model than the safetensors hold (num_hidden_layers:
// 10000000 over a 2-layer file) is reported from the headers alone, before the model is
// allocated; the exact per-tensor comparison follows once it is.
void check_sizes_before_allocating(const io::ModelConfig& cfg, const io::SafeTensorsCheckpoint& ckpt,
                                   const std::string& dir) {
  double stored = 0;
  int64_t layers = 0;
  for (const auto& name : ckpt.names()) {
    stored += static_cast<double>(ckpt.info(name).numel());
    static const std::string prefix = "model.layers.";
    if (name.rfind(prefix, 0) == 0) {
      const size_t end = name.find('.', prefix.size());
      const std::string digits = name.substr(prefix.size(), end - prefix.size());
      if (!digits.empty() && digits.size() < 10 && digits.find_first_not_of("0123456789") == std::string::npos)
        layers = std::max<int64_t>(layers, std::stoll(digits) + 1);
    }
  }
  if (layers > 0 && cfg.num_hidden_layers > layers) {
    throw Error("config.json says num_hidden_layers: " + std::to_string(cfg.num_hidden_layers) +
                ", but the safetensors hold layers 0.." + std::to_string(layers - 1))
        .at(dir)
        .hint("fix num_hidden_layers in config.json or use the matching weights");
  }
  const double described = cfg.estimated_parameters();
  if (described > 2 * stored + 1e6) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "about %.3g parameters, but the safetensors hold %.3g", described, stored);
    throw Error(std::string("config.json describes a model of ") + buf)
        .at(dir)
        .hint("check hidden_size, intermediate_size and vocab_size in config.json against the weights");
  }
}

}  // namespace

std::shared_ptr<CausalLM> CausalLM::from_config(const io::ModelConfig& cfg, uint64_t seed, const c10::Device& device,
                                                c10::ScalarType dtype) {
  check_device_dtype(device, dtype);
  torch::manual_seed(seed);
  auto m = std::make_shared<CausalLM>(cfg);
  m->to(device, dtype);
  return m;
}

std::shared_ptr<CausalLM> CausalLM::from_pretrained(const std::string& dir, const c10::Device& device,
                                                    c10::ScalarType dtype) {
  check_device_dtype(device, dtype);
  // A file where the model directory belongs (a JSONL given as the model) would otherwise be
  // parsed as config.json and reported as a JSON error at some line of that file.
  if (std::filesystem::exists(dir) && !std::filesystem::is_directory(dir))
    throw Error("a model directory (config.json + safetensors) is expected, but this is a file")
        .at(dir)
        .hint("pass the directory that holds config.json and model.safetensors");
  const io::ModelConfig cfg = io::ModelConfig::load(dir);
  auto ckpt = io::SafeTensorsCheckpoint::open(dir);
  check_sizes_before_allocating(cfg, ckpt, dir);
  // No random initialization: every parameter is overwritten below (or reported missing).
  auto m = std::make_shared<CausalLM>(cfg, /*init_weights=*/false);
  m->to(device, dtype);
  std::vector<std::string> missing, mismatched;
  std::set<std::string> expected;
  torch::NoGradGuard no_grad;
  for (auto& p : m->named_parameters()) {
    const std::string& name = p.key();
    expected.insert(name);
    if (!ckpt.contains(name)) {
      missing.push_back(name + " " + shape_str(p.value().sizes()));
      continue;
    }
    const auto& info = ckpt.info(name);
    if (at::IntArrayRef(info.shape) != p.value().sizes()) {
      mismatched.push_back("'" + name + "' in " + ckpt.file_of(name) + ": expected shape " +
                           shape_str(p.value().sizes()) + ", got " + shape_str(info.shape));
      continue;
    }
    p.value().copy_(ckpt.tensor(name));
  }
  std::vector<std::string> unexpected;
  for (const auto& name : ckpt.names()) {
    if (expected.count(name) || ignorable(name)) continue;
    // A tied model may still carry lm_head.weight (some exporters write it); HF ignores it.
    if (cfg.tie_word_embeddings && name == "lm_head.weight") continue;
    unexpected.push_back(name + " (" + ckpt.file_of(name) + ")");
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::ostringstream os;
    os << "checkpoint does not match the " << (cfg.architectures.empty() ? cfg.model_type : cfg.architectures[0])
       << " model described by config.json";
    auto list = [&](const char* what, const std::vector<std::string>& v) {
      if (v.empty()) return;
      os << "; " << v.size() << " " << what << ":";
      for (size_t i = 0; i < v.size() && i < 20; ++i) os << (i ? "," : "") << " " << v[i];
      if (v.size() > 20) os << ", ...";
    };
    list("missing tensors", missing);
    list("unexpected tensors", unexpected);
    list("mis-shaped tensors", mismatched);
    throw Error(os.str()).at(dir).hint(
        "the safetensors must hold exactly the tensors transformers names for this config "
        "(check num_hidden_layers, sizes, tie_word_embeddings, attention_bias)");
  }
  // Non-finite weights load, but every log-prob and sample from them is NaN: say which.
  std::vector<std::string> non_finite;
  for (const auto& p : m->named_parameters())
    if (!torch::isfinite(p.value()).all().item<bool>()) non_finite.push_back(p.key());
  if (!non_finite.empty()) {
    std::string names;
    for (size_t i = 0; i < non_finite.size() && i < 5; ++i) names += (i ? ", " : "") + non_finite[i];
    if (non_finite.size() > 5) names += ", ... (" + std::to_string(non_finite.size()) + " in all)";
    SELFRL_WARN(dir << ": tensors with NaN or Inf values: " << names
                    << "; log-probabilities and samples from this model will be NaN");
  }
  return m;
}

void CausalLM::save_pretrained(const std::string& dir, uint64_t max_shard_bytes) const {
  std::filesystem::create_directories(dir);
  io::ModelConfig cfg = cfg_;
  cfg.torch_dtype = dtype_name(dtype());
  if (cfg.architectures.empty()) {
    if (cfg.model_type == "llama") cfg.architectures = {"LlamaForCausalLM"};
    if (cfg.model_type == "qwen2") cfg.architectures = {"Qwen2ForCausalLM"};
    if (cfg.model_type == "qwen3") cfg.architectures = {"Qwen3ForCausalLM"};
  }
  cfg.save(dir);
  io::NamedTensors tensors;
  for (auto& [name, t] : hf_state_dict()) tensors.emplace_back(name, t.detach());
  io::save_safetensors_checkpoint(dir, tensors, max_shard_bytes);
}

std::vector<int64_t> eos_token_ids(const std::string& dir, const io::ModelConfig& cfg) {
  std::vector<int64_t> ids = cfg.eos_token_ids;
  const auto path = std::filesystem::path(dir) / "generation_config.json";
  if (std::filesystem::exists(path)) {
    const nlohmann::json j = io::read_json_file(path.string());
    if (!j.is_object())
      throw Error("generation_config.json must hold a JSON object, got " + std::string(j.type_name()))
          .at(path.string())
          .hint("fix or remove the file (it is optional)");
    if (j.contains("eos_token_id")) {
      const auto& e = j["eos_token_id"];
      auto add = [&](const nlohmann::json& v) {
        if (!v.is_number_integer())
          throw Error("eos_token_id must be an integer or a list of integers").at(path.string());
        const int64_t id = v.get<int64_t>();
        if (id < 0 || id >= cfg.vocab_size)
          throw Error("eos_token_id " + std::to_string(id) + " is outside the vocabulary").at(path.string());
        if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
      };
      if (e.is_array())
        for (const auto& v : e) add(v);
      else if (!e.is_null())
        add(e);
    }
  }
  return ids;
}

}  // namespace selfrl::model
