// LoRA adapters (see selfrl/model/lora.h).
#include "selfrl/model/lora.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "selfrl/core/error.h"
#include "selfrl/core/logging.h"
#include "selfrl/io/file_util.h"
#include "selfrl/io/safetensors.h"
#include "selfrl/model/causal_lm.h"

namespace fs = std::filesystem;

namespace selfrl::model {
namespace {

constexpr const char* kPeftPrefix = "base_model.model.";

// Every adaptable projection of the model: its CausalLM name, its Linear and its adapter slot.
struct Slot {
  std::string name;    // model.layers.0.self_attn.q_proj
  std::string module;  // q_proj
  torch::nn::Linear* linear;
  LoraAdapter* adapter;
};

std::vector<Slot> slots(CausalLM& m) {
  std::vector<Slot> out;
  for (size_t i = 0; i < m.model->layers->size(); ++i) {
    auto layer = m.model->layers[i]->as<DecoderLayerImpl>();
    const std::string p = "model.layers." + std::to_string(i) + ".";
    auto& a = *layer->self_attn;
    auto& f = *layer->mlp;
    out.push_back({p + "self_attn.q_proj", "q_proj", &a.q_proj, &a.q_lora});
    out.push_back({p + "self_attn.k_proj", "k_proj", &a.k_proj, &a.k_lora});
    out.push_back({p + "self_attn.v_proj", "v_proj", &a.v_proj, &a.v_lora});
    out.push_back({p + "self_attn.o_proj", "o_proj", &a.o_proj, &a.o_lora});
    out.push_back({p + "mlp.gate_proj", "gate_proj", &f.gate_proj, &f.gate_lora});
    out.push_back({p + "mlp.up_proj", "up_proj", &f.up_proj, &f.up_lora});
    out.push_back({p + "mlp.down_proj", "down_proj", &f.down_proj, &f.down_lora});
  }
  if (m.lm_head) out.push_back({"lm_head", "lm_head", &m.lm_head, &m.lm_head_lora});
  return out;
}

bool targeted(const LoraConfig& cfg, const std::string& module) {
  const auto& t = cfg.target_modules;
  if (std::find(t.begin(), t.end(), "all-linear") != t.end()) return module != "lm_head";
  return std::find(t.begin(), t.end(), module) != t.end();
}

}  // namespace

const std::vector<std::string>& lora_module_names() {
  static const std::vector<std::string> names = {"q_proj",    "k_proj",  "v_proj",    "o_proj",
                                                 "gate_proj", "up_proj", "down_proj", "lm_head"};
  return names;
}

double LoraConfig::scaling() const {
  return use_rslora ? lora_alpha / std::sqrt(static_cast<double>(r)) : lora_alpha / static_cast<double>(r);
}

void LoraConfig::validate(const std::string& source) const {
  if (r < 1) throw Error("lora r must be >= 1, got " + std::to_string(r)).at(source);
  if (!(lora_alpha > 0)) throw Error("lora_alpha must be > 0").at(source);
  if (!(lora_dropout >= 0 && lora_dropout < 1)) throw Error("lora_dropout must be in [0, 1)").at(source);
  if (target_modules.empty())
    throw Error("lora target_modules is empty").at(source).hint("e.g. [q_proj, v_proj] or all-linear");
  const auto& known = lora_module_names();
  for (const auto& t : target_modules) {
    if (t == "all-linear" || std::find(known.begin(), known.end(), t) != known.end()) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    throw Error("lora target_modules: unknown module '" + t + "'").at(source).hint("known: " + list + ", all-linear");
  }
  if (lora_dropout > 0 && std::find(target_modules.begin(), target_modules.end(), "lm_head") != target_modules.end())
    throw Error("lora: an lm_head adapter takes no dropout here (it is applied as a merged weight)")
        .at(source)
        .hint("set lora_dropout: 0 or leave lm_head out of target_modules");
}

LoraConfig LoraConfig::from_peft_json(const nlohmann::json& j, const std::string& source) {
  LoraConfig c;
  try {
    if (j.value("peft_type", "LORA") != "LORA")
      throw Error("peft_type " + j.value("peft_type", "") + " is not LORA").at(source);
    if (j.contains("r") && !j["r"].is_number_integer())
      throw Error("r must be an integer, got " + j["r"].dump()).at(source).hint("PEFT ranks are 8, 16, 64, ...");
    c.r = j.value("r", int64_t{8});
    c.lora_alpha = j.value("lora_alpha", 8.0);
    c.lora_dropout = j.value("lora_dropout", 0.0);
    c.use_rslora = j.value("use_rslora", false);
    c.base_model_name_or_path = j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string()
                                    ? j["base_model_name_or_path"].get<std::string>()
                                    : "";
    if (j.contains("init_lora_weights") && j["init_lora_weights"].is_boolean())
      c.init_lora_weights = j["init_lora_weights"];
    const auto& t = j.at("target_modules");
    c.target_modules =
        t.is_string() ? std::vector<std::string>{t.get<std::string>()} : t.get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("invalid adapter config: ") + e.what()).at(source);
  }
  auto set = [&](const char* k) {
    return j.contains(k) && !j[k].is_null() && j[k] != false && j[k] != nlohmann::json::object() &&
           j[k] != nlohmann::json::array();
  };
  for (const char* k :
       {"use_dora", "fan_in_fan_out", "rank_pattern", "alpha_pattern", "layers_to_transform", "modules_to_save"})
    if (set(k))
      throw Error(std::string("adapter option '") + k + "' is not supported")
          .at(source)
          .hint("train the adapter without it");
  if (j.contains("bias") && j["bias"] != "none")
    throw Error("adapter option bias: " + j["bias"].dump() + " is not supported (only \"none\")").at(source);
  c.validate(source);
  return c;
}

nlohmann::json LoraConfig::to_peft_json() const {
  return {{"peft_type", "LORA"},
          {"task_type", "CAUSAL_LM"},
          {"r", r},
          {"lora_alpha", lora_alpha},
          {"lora_dropout", lora_dropout},
          {"target_modules", target_modules},
          {"use_rslora", use_rslora},
          {"use_dora", false},
          {"bias", "none"},
          {"fan_in_fan_out", false},
          {"init_lora_weights", init_lora_weights},
          {"modules_to_save", nullptr},
          {"inference_mode", false},
          {"base_model_name_or_path", base_model_name_or_path}};
}

LoraAdapterImpl::LoraAdapterImpl(torch::nn::Linear& base, const LoraConfig& cfg) : scaling(cfg.scaling()) {
  const auto& w = base->weight;
  const int64_t in = w.size(1), out = w.size(0);
  lora_A = torch::nn::Linear(torch::nn::LinearOptions(in, cfg.r).bias(false));
  lora_B = torch::nn::Linear(torch::nn::LinearOptions(cfg.r, out).bias(false));
  {
    torch::NoGradGuard ng;
    // PEFT: A as nn.Linear's default (Kaiming-uniform, a = √5, i.e. U(±1/√in)), B = 0.
    lora_A->weight.uniform_(-1.0 / std::sqrt(static_cast<double>(in)), 1.0 / std::sqrt(static_cast<double>(in)));
    if (cfg.init_lora_weights) lora_B->weight.zero_();
  }
  // float32 whatever the base dtype (PEFT's autocast_adapter_dtype): bf16 AdamW updates of small
  // adapters would round away.
  lora_A->to(w.device(), torch::kFloat);
  lora_B->to(w.device(), torch::kFloat);
  dropout = torch::nn::Dropout(cfg.lora_dropout);
  // Registered on the base Linear, so that the parameters are named ...q_proj.lora_A.weight.
  base->register_module("lora_A", lora_A);
  base->register_module("lora_B", lora_B);
  base->weight.set_requires_grad(false);
  if (base->bias.defined()) base->bias.set_requires_grad(false);
}

torch::Tensor LoraAdapterImpl::delta_weight() const {
  return torch::matmul(lora_B->weight.to(torch::kFloat), lora_A->weight.to(torch::kFloat)) * scaling;
}

torch::Tensor LoraAdapterImpl::delta(const torch::Tensor& x) {
  auto h = x.to(lora_A->weight.scalar_type());
  if (dropout->options.p() > 0 && is_training()) h = dropout(h);
  return (lora_B(lora_A(h)) * scaling).to(x.scalar_type());
}

int64_t add_lora(CausalLM& model, const LoraConfig& cfg) {
  cfg.validate();
  // A rank above every dimension of the model is a typo or a hostile file, and would be a huge
  // allocation (an r x hidden_size A and an out x r B per targeted projection).
  const int64_t max_dim =
      std::max({model.config().hidden_size, model.config().intermediate_size, model.config().vocab_size});
  if (cfg.r > max_dim)
    throw Error("lora r = " + std::to_string(cfg.r) + " is larger than every dimension of the model (at most " +
                std::to_string(max_dim) + ")")
        .hint("LoRA ranks are far below the hidden size (8, 16, 64); is this the right base model?");
  if (has_lora(model))
    throw Error("the model already has LoRA adapters").hint("merge_lora first, or load a fresh base");
  const auto& t = cfg.target_modules;
  if (!model.lm_head && std::find(t.begin(), t.end(), "lm_head") != t.end())
    throw Error("lora target_modules: lm_head, but this model ties lm_head to the embedding")
        .hint("leave lm_head out of target_modules");
  for (auto& p : model.parameters()) p.set_requires_grad(false);  // the base is frozen
  int64_t n = 0;
  for (auto& s : slots(model)) {
    if (!targeted(cfg, s.module)) continue;
    *s.adapter = LoraAdapter(*s.linear, cfg);
    (*s.adapter)->train(model.is_training());
    ++n;
  }
  return n;
}

bool has_lora(const CausalLM& model) {
  for (const auto& s : slots(const_cast<CausalLM&>(model)))
    if (*s.adapter) return true;
  return false;
}

std::vector<std::pair<std::string, torch::Tensor>> lora_parameters(const CausalLM& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& s : slots(const_cast<CausalLM&>(model))) {
    if (!*s.adapter) continue;
    out.emplace_back(s.name + ".lora_A.weight", (*s.adapter)->lora_A->weight);
    out.emplace_back(s.name + ".lora_B.weight", (*s.adapter)->lora_B->weight);
  }
  return out;
}

LoraDisabled::LoraDisabled(CausalLM& model) : model_(model) {
  for (auto& s : slots(model_))
    if (*s.adapter) (*s.adapter)->enabled = false;
}

LoraDisabled::~LoraDisabled() {
  for (auto& s : slots(model_))
    if (*s.adapter) (*s.adapter)->enabled = true;
}

LoraMerged::LoraMerged(CausalLM& model) : model_(model) {
  torch::NoGradGuard ng;
  for (auto& s : slots(model_)) {
    auto& a = *s.adapter;
    if (!a || !a->enabled) continue;
    auto& w = (*s.linear)->weight;
    saved_.emplace_back(w, w.clone());
    const auto d = a->delta_weight();
    w.add_(d.to(w.scalar_type()));
    a->enabled = false;
  }
}

LoraMerged::~LoraMerged() {
  torch::NoGradGuard ng;
  for (auto& [w, original] : saved_) w.copy_(original);
  for (auto& s : slots(model_))
    if (*s.adapter) (*s.adapter)->enabled = true;
}

void save_lora(const CausalLM& model, const LoraConfig& cfg, const std::string& dir) {
  const auto params = lora_parameters(model);
  if (params.empty()) throw Error("save_lora: the model has no LoRA adapters").at(dir);
  fs::create_directories(dir);
  io::NamedTensors t;
  for (const auto& [name, w] : params) t.emplace_back(kPeftPrefix + name, w.detach());
  io::save_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), t, {{"format", "pt"}});
  const auto tmp = fs::path(dir) / "adapter_config.json.tmp";
  {
    std::ofstream f(tmp);
    f << cfg.to_peft_json().dump(2) << "\n";
    if (!f) throw Error("cannot write adapter_config.json").at(tmp.string());
  }
  fs::rename(tmp, fs::path(dir) / "adapter_config.json");
}

LoraConfig load_lora(CausalLM& model, const std::string& dir) {
  const auto cfg_path = fs::path(dir) / "adapter_config.json";
  const auto st_path = fs::path(dir) / "adapter_model.safetensors";
  if (!fs::is_regular_file(cfg_path))
    throw Error("no adapter_config.json")
        .at(dir)
        .hint("a PEFT adapter directory holds adapter_config.json and adapter_model.safetensors");
  if (!fs::is_regular_file(st_path)) throw Error("no adapter_model.safetensors").at(dir);
  const nlohmann::json j = io::read_json_file(cfg_path.string());
  const LoraConfig cfg = LoraConfig::from_peft_json(j, cfg_path.string());
  const auto file = io::SafeTensorsFile::open(st_path.string());
  // add_lora bounds r by the model's sizes before allocating: a hostile "r": 1099511627776 is an
  // error naming adapter_config.json, not a multi-terabyte allocation.
  try {
    add_lora(model, cfg);
  } catch (Error& e) {
    throw e.at(cfg_path.string());
  }
  std::set<std::string> expected;
  std::vector<std::string> problems, nonfinite;
  torch::NoGradGuard ng;
  for (auto& [name, w] : lora_parameters(model)) {
    // PEFT writes base_model.model.<name>; some tools keep the adapter name (.lora_A.default.weight).
    std::string key = kPeftPrefix + name;
    if (!file.contains(key)) {
      const auto alt = key.substr(0, key.size() - 7) + ".default.weight";
      if (file.contains(alt)) key = alt;
    }
    expected.insert(key);
    if (!file.contains(key)) {
      problems.push_back("missing " + key + " " + c10::str(w.sizes()));
      continue;
    }
    const auto t = file.tensor(key);
    if (!t.is_floating_point()) {
      problems.push_back(key + ": dtype " + std::string(io::st_dtype_name(file.info(key).dtype)) +
                         " (adapter weights are F32, BF16 or F16)");
      continue;
    }
    if (!torch::isfinite(t).all().item<bool>()) nonfinite.push_back(key);
    if (t.sizes() != w.sizes()) {
      problems.push_back(
          key + ": expected " + c10::str(w.sizes()) + ", got " + c10::str(t.sizes()) +
          (t.dim() == 2 ? " (rank " + std::to_string(name.find("lora_A") != std::string::npos ? t.size(0) : t.size(1)) +
                              " vs r = " + std::to_string(cfg.r) + ")"
                        : ""));
      continue;
    }
    w.copy_(t);
  }
  for (const auto& n : file.names())
    if (!expected.count(n))
      problems.push_back("unexpected " + n + " (not a target of adapter_config.json, or another model)");
  if (!problems.empty()) {
    std::string msg = std::to_string(problems.size()) + " adapter tensor problem(s):";
    for (size_t i = 0; i < problems.size() && i < 20; ++i) msg += "\n  " + problems[i];
    throw Error(msg).at(st_path.string()).hint("is the adapter for this base model?");
  }
  if (!nonfinite.empty()) {
    std::string list;
    for (size_t i = 0; i < nonfinite.size() && i < 8; ++i) list += (i ? ", " : "") + nonfinite[i];
    if (nonfinite.size() > 8) list += ", ...";
    SELFRL_WARN(st_path.string() << ": " << nonfinite.size() << " adapter tensor(s) hold NaN or Inf values (" << list
                                 << "); the adapted model's outputs will be NaN");
  }
  return cfg;
}

void merge_lora(CausalLM& model) {
  torch::NoGradGuard ng;
  for (auto& s : slots(model)) {
    auto& a = *s.adapter;
    if (!a) continue;
    auto& w = (*s.linear)->weight;
    const auto d = a->delta_weight();
    w.copy_((w.to(torch::kFloat) + d.to(w.device())).to(w.scalar_type()));
    // Unregister A and B from the Linear: the model is a plain base again.
    auto* lin = s.linear->get();
    lin->unregister_module("lora_A");
    lin->unregister_module("lora_B");
    a = nullptr;
  }
  for (auto& p : model.parameters()) p.set_requires_grad(true);
}

}  // namespace selfrl::model
