// CausalLM construction and forward passes (see causal_lm.h). Loading and saving live in
// pretrained.cpp.
#include "selfrl/model/causal_lm.h"

#include <unistd.h>

#include <cstdio>
#include <limits>

#include <torch/autograd.h>

#include "selfrl/core/autocast.h"
#include "selfrl/core/error.h"
#include "selfrl/model/rope.h"

namespace selfrl::model {
namespace {

std::string gib(double bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / (1024.0 * 1024 * 1024));
  return buf;
}

// The model is built in float32 on the host (then moved/cast): refuse before allocating when
// that cannot fit, instead of paging until bad_alloc.
void check_fits_in_host_memory(const io::ModelConfig& cfg) {
  const double bytes = cfg.estimated_parameters() * 4;
  const double ram = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGE_SIZE));
  if (ram > 0 && bytes > ram) {
    char params[32];
    std::snprintf(params, sizeof params, "%.3g", cfg.estimated_parameters());
    throw Error(std::string("the model needs about ") + gib(bytes) + " (" + params +
                " parameters in float32) to build, more than this machine's " + gib(ram) + " of memory")
        .hint("check the sizes in config.json (num_hidden_layers, hidden_size, intermediate_size, vocab_size)");
  }
}

struct ArchitectureTraits {
  bool qkv_bias, o_bias, qk_norm;
};

// modeling_llama: every projection has a bias iff attention_bias. modeling_qwen2: q/k/v always
// biased, o never. modeling_qwen3: attention_bias for all four, plus per-head q_norm/k_norm.
ArchitectureTraits traits_for(const io::ModelConfig& cfg) {
  std::string arch = cfg.architectures.empty() ? "" : cfg.architectures[0];
  if (arch.empty()) {
    if (cfg.model_type == "llama") arch = "LlamaForCausalLM";
    if (cfg.model_type == "qwen2") arch = "Qwen2ForCausalLM";
    if (cfg.model_type == "qwen3") arch = "Qwen3ForCausalLM";
  }
  // A model_type that contradicts the architecture (a GPT-2 config with a Llama architecture
  // line) means the file was edited by hand or belongs to another model.
  const char* expected_type = arch == "LlamaForCausalLM"   ? "llama"
                              : arch == "Qwen2ForCausalLM" ? "qwen2"
                              : arch == "Qwen3ForCausalLM" ? "qwen3"
                                                           : nullptr;
  if (expected_type != nullptr && !cfg.model_type.empty() && cfg.model_type != expected_type)
    throw Error("model_type '" + cfg.model_type + "' does not match architectures [" + arch + "] (model_type '" +
                expected_type + "')")
        .at("config.json")
        .hint("the config belongs to another model, or was edited; use the config.json the weights came with");
  if (arch == "LlamaForCausalLM") return {cfg.attention_bias, cfg.attention_bias, false};
  if (arch == "Qwen2ForCausalLM") return {true, false, false};
  if (arch == "Qwen3ForCausalLM") return {cfg.attention_bias, cfg.attention_bias, true};
  std::string list;
  for (const auto& a : supported_architectures()) list += (list.empty() ? "" : ", ") + a;
  throw Error("unsupported architecture '" + (arch.empty() ? cfg.model_type : arch) + "'")
      .at("config.json")
      .hint("supported architectures: " + list);
}

double initializer_range(const io::ModelConfig& cfg) {
  if (cfg.raw.is_object() && cfg.raw.contains("initializer_range") && cfg.raw["initializer_range"].is_number())
    return cfg.raw["initializer_range"].get<double>();
  return 0.02;
}

// Recomputes one decoder layer in backward instead of storing its activations, like PyTorch's
// reentrant torch.utils.checkpoint: forward runs without grad; backward reruns the layer with
// grad and back-propagates through it, which accumulates the layer's parameter gradients
// directly into .grad. Hence it serves loss.backward(), not torch::autograd::grad().
struct CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor hidden, torch::Tensor cos,
                               torch::Tensor sin, torch::Tensor mask, int64_t layer_address) {
    ctx->save_for_backward({hidden, cos, sin, mask});
    ctx->saved_data["layer"] = layer_address;
    // The recomputation in backward replays the forward's autocast state (as torch.utils.checkpoint).
    const auto dev = hidden.device().type();
    ctx->saved_data["autocast"] = autocast_enabled(dev);
    ctx->saved_data["autocast_dtype"] = static_cast<int64_t>(autocast_dtype(dev));
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(layer_address);
    torch::NoGradGuard no_grad;
    return layer->forward(hidden, AttentionInputs{cos, sin, mask}, nullptr, 0);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
    auto hidden = saved[0].detach().requires_grad_(true);
    torch::Tensor out;
    {
      AutocastGuard autocast(hidden.device().type(), ctx->saved_data["autocast"].toBool(),
                             static_cast<c10::ScalarType>(ctx->saved_data["autocast_dtype"].toInt()));
      torch::AutoGradMode enable(true);
      out = layer->forward(hidden, AttentionInputs{saved[1], saved[2], saved[3]}, nullptr, 0);
    }
    torch::autograd::backward({out}, {grad_out[0]});
    return {hidden.grad(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

const std::vector<std::string>& supported_architectures() {
  static const std::vector<std::string> archs = {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"};
  return archs;
}

TransformerModelImpl::TransformerModelImpl(const io::ModelConfig& cfg, bool qkv_bias, bool o_bias, bool qk_norm) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(cfg.vocab_size, cfg.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) layers->push_back(DecoderLayer(cfg, qkv_bias, o_bias, qk_norm));
  norm = register_module("norm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
}

CausalLM::CausalLM(const io::ModelConfig& cfg, bool init_weights) : cfg_(cfg) {
  check_fits_in_host_memory(cfg);
  const ArchitectureTraits t = traits_for(cfg);
  inv_freq_ = rope_inv_freq(cfg);  // also validates rope_scaling
  model = register_module("model", TransformerModel(cfg, t.qkv_bias, t.o_bias, t.qk_norm));
  if (!cfg.tie_word_embeddings) {
    lm_head = register_module("lm_head",
                              torch::nn::Linear(torch::nn::LinearOptions(cfg.hidden_size, cfg.vocab_size).bias(false)));
  }
  // transformers' _init_weights: normal(0, initializer_range) for Linear and Embedding weights,
  // zero biases; RMSNorm weights start at one.
  if (!init_weights) return;
  torch::NoGradGuard no_grad;
  const double std = initializer_range(cfg);
  for (auto& p : named_parameters()) {
    const std::string& name = p.key();
    if (name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0)
      p.value().zero_();
    else if (name.find("norm.weight") != std::string::npos)
      p.value().fill_(1.0);
    else
      p.value().normal_(0.0, std);
  }
}

torch::Tensor CausalLM::lm_head_weight() const {
  if (!lm_head) return model->embed_tokens->weight;
  if (lm_head_lora && lm_head_lora->enabled) {
    const auto& a = *lm_head_lora;
    const auto& w = lm_head->weight;
    return w + a.delta_weight().to(w.scalar_type());
  }
  return lm_head->weight;
}

torch::Tensor CausalLM::logits(const torch::Tensor& hidden) const {
  return torch::matmul(hidden, lm_head_weight().t());
}

torch::Device CausalLM::device() const { return model->embed_tokens->weight.device(); }
torch::ScalarType CausalLM::dtype() const { return model->embed_tokens->weight.scalar_type(); }

KVCache CausalLM::make_cache(int64_t batch, int64_t capacity) const {
  return KVCache(cfg_.num_hidden_layers, batch, cfg_.num_key_value_heads, capacity, cfg_.head_dim,
                 torch::TensorOptions().dtype(dtype()).device(device()));
}

io::NamedTensors CausalLM::hf_state_dict() const {
  io::NamedTensors out;
  for (const auto& p : named_parameters())
    if (p.key().find(".lora_A.") == std::string::npos && p.key().find(".lora_B.") == std::string::npos)
      out.emplace_back(p.key(), p.value());
  return out;
}

torch::Tensor CausalLM::forward(const torch::Tensor& input_ids, const ForwardOptions& opts) {
  if (input_ids.dim() != 2) {
    throw Error(detail::concat("input_ids must be [batch, seq], got ", input_ids.sizes()));
  }
  const int64_t batch = input_ids.size(0), seq = input_ids.size(1);
  SELFRL_CHECK(seq > 0, "input_ids is empty");
  if (opts.check_ids) {
    const int64_t lo = input_ids.min().item<int64_t>(), hi = input_ids.max().item<int64_t>();
    if (lo < 0 || hi >= cfg_.vocab_size) {
      throw Error(
          detail::concat("token id ", lo < 0 ? lo : hi, " is outside the vocabulary [0, ", cfg_.vocab_size, ")"))
          .hint("check that the tokenizer matches the model");
    }
  }
  const int64_t past = opts.cache ? opts.cache->length() : 0;
  const int64_t total = past + seq;
  const auto dev = input_ids.device();
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(dev);
  torch::Tensor attn_mask = opts.attention_mask;
  if (attn_mask.defined()) {
    if (attn_mask.dim() != 2 || attn_mask.size(0) != batch || attn_mask.size(1) != total) {
      throw Error(detail::concat("attention_mask must be [", batch, ", ", total, "] (past + new tokens), got ",
                                 attn_mask.sizes()));
    }
    attn_mask = attn_mask.to(dev);
  }
  if (opts.check_ids && total > cfg_.max_position_embeddings) {
    throw Error(
        detail::concat("sequence length ", total, " exceeds max_position_embeddings ", cfg_.max_position_embeddings));
  }

  torch::Tensor segments = opts.segment_ids;
  if (segments.defined()) {
    SELFRL_CHECK(opts.cache == nullptr && !attn_mask.defined(),
                 "segment_ids (packed rows) cannot be combined with a KV cache or an attention_mask");
    SELFRL_CHECK(opts.position_ids.defined(), "segment_ids (packed rows) need position_ids");
    SELFRL_CHECK(segments.dim() == 2 && segments.size(0) == batch && segments.size(1) == seq, "segment_ids must be [",
                 batch, ", ", seq, "], got ", segments.sizes());
    segments = segments.to(dev, torch::kLong);
  }
  torch::Tensor positions = opts.position_ids;
  if (!positions.defined()) {
    if (attn_mask.defined()) {
      // transformers' generate(): position_ids = cumsum(mask) - 1, pads set to 1.
      auto m = attn_mask.to(torch::kLong);
      positions = (m.cumsum(-1) - 1).masked_fill_(m == 0, 1).narrow(1, past, seq);
    } else {
      positions = torch::arange(past, total, long_opts).unsqueeze(0).expand({batch, seq});
    }
  }
  if (inv_freq_.device() != dev) inv_freq_ = inv_freq_.to(dev);
  auto [cos, sin] = rope_cos_sin(inv_freq_, positions);
  AttentionInputs in;
  in.cos = cos.unsqueeze(1).to(dtype());
  in.sin = sin.unsqueeze(1).to(dtype());
  if (segments.defined()) {
    // Block-diagonal causal mask [batch, 1, seq, seq]: same segment, not later, not padding.
    auto idx = torch::arange(seq, long_opts);
    auto allowed = (idx.unsqueeze(0) <= idx.unsqueeze(1))
                       .unsqueeze(0)
                       .logical_and(segments.unsqueeze(2) == segments.unsqueeze(1))
                       .logical_and((segments != 0).unsqueeze(1));
    in.mask = torch::zeros(allowed.sizes(), torch::TensorOptions().dtype(torch::kFloat).device(dev))
                  .masked_fill_(allowed.logical_not(), std::numeric_limits<float>::lowest())
                  .unsqueeze(1);
  } else if (seq > 1 || attn_mask.defined()) {
    // Additive mask [batch|1, 1, seq, total]: query i (absolute position past + i) sees key j
    // iff j <= past + i and key j is not padding. A finite minimum (not -inf), as HF does, so
    // rows of pure padding stay finite.
    auto q_pos = torch::arange(past, total, long_opts).unsqueeze(1);
    auto k_pos = torch::arange(total, long_opts).unsqueeze(0);
    auto allowed = (k_pos <= q_pos).unsqueeze(0);  // [1, seq, total]
    if (attn_mask.defined()) allowed = allowed.logical_and(attn_mask.to(torch::kBool).unsqueeze(1));
    in.mask = torch::zeros(allowed.sizes(), torch::TensorOptions().dtype(torch::kFloat).device(dev))
                  .masked_fill_(allowed.logical_not(), std::numeric_limits<float>::lowest())
                  .unsqueeze(1);
  }

  auto h = model->embed_tokens(input_ids);
  for (size_t i = 0; i < model->layers->size(); ++i) {
    auto layer = model->layers->ptr<DecoderLayerImpl>(i);
    if (opts.activation_checkpointing && opts.cache == nullptr && torch::GradMode::is_enabled() && h.requires_grad()) {
      h = CheckpointedLayer::apply(h, in.cos, in.sin, in.mask.defined() ? in.mask : torch::Tensor(),
                                   reinterpret_cast<int64_t>(layer.get()));
    } else {
      h = layer->forward(h, in, opts.cache, static_cast<int64_t>(i));
    }
  }
  if (opts.cache) opts.cache->advance(seq);
  return model->norm(h);
}

}  // namespace selfrl::model
