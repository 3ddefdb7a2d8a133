// selfrl._selfrl: the CPython extension under the `selfrl` package. Models, tokenizers and the
// rollout engine here; rewards in rewards.cpp; runs (trainers, loops, recipes) in runs.cpp.
// Tensors cross as torch.Tensor through torch's own caster: the same storage, no copies.
#include <torch/version.h>

#include "common.h"
#include "selfrl/core/device.h"
#include "selfrl/core/error.h"
#include "selfrl/core/host_allocator.h"
#include "selfrl/core/memory.h"
#include "selfrl/model/decode_attention.h"
#include "selfrl/core/interrupt.h"
#include "selfrl/data/prompt_dataset.h"
#include "selfrl/eval/evaluator.h"
#include "selfrl/generation/rollout_engine.h"
#include "selfrl/io/model_config.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/trainers/label_free.h"
#include "selfrl/model/lora.h"
#include "selfrl/model/token_logprobs.h"
#include "selfrl/tokenizer/sentencepiece_tokenizer.h"
#include "selfrl/tokenizer/tokenizer.h"
#include "selfrl/version.h"

namespace selfrl::python {

namespace {

std::string dtype_name(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat:
      return "float32";
    case c10::kBFloat16:
      return "bfloat16";
    case c10::kHalf:
      return "float16";
    case c10::kDouble:
      return "float64";
    default:
      return c10::toString(t);
  }
}

py::dict completion_dict(const generation::Completion& c) {
  py::dict d;
  d["token_ids"] = c.token_ids;
  d["logprobs"] = c.logprobs;
  d["raw_logprobs"] = c.raw_logprobs;
  d["entropy"] = c.entropy;
  d["self_certainty"] = c.self_certainty;
  d["finish_reason"] = generation::to_string(c.finish_reason);
  d["index"] = c.sample_index;
  return d;
}

}  // namespace

void bind_models(py::module_& m) {
  using model::CausalLM;
  py::class_<CausalLM, std::shared_ptr<CausalLM>>(m, "CausalLM")
      .def_static(
          "from_pretrained",
          [](const std::string& path, const std::string& device, const std::string& dtype) {
            const auto dev = parse_device(device);
            const auto dt = parse_dtype(dtype);
            py::gil_scoped_release release;
            return CausalLM::from_pretrained(path, dev, dt);
          },
          py::arg("path"), py::arg("device") = "cpu", py::arg("dtype") = "float32")
      .def_static(
          "from_config",
          [](py::dict config, uint64_t seed, const std::string& device, const std::string& dtype) {
            auto cfg = io::ModelConfig::from_json(to_json(config), "config");
            py::gil_scoped_release release;
            return CausalLM::from_config(cfg, seed, parse_device(device), parse_dtype(dtype));
          },
          py::arg("config"), py::arg("seed") = 0, py::arg("device") = "cpu", py::arg("dtype") = "float32")
      .def(
          "save_pretrained",
          [](const CausalLM& self, const std::string& path, uint64_t max_shard_bytes) {
            py::gil_scoped_release release;
            self.save_pretrained(path, max_shard_bytes);
          },
          py::arg("path"), py::arg("max_shard_bytes") = 5'000'000'000ULL)
      .def("state_dict",
           [](const CausalLM& self) {
             // The parameters themselves (HF names; LoRA adapters as ...q_proj.lora_A.weight), not
             // copies: writing into them changes the model.
             py::dict d;
             for (const auto& p : self.named_parameters()) d[py::str(p.key())] = p.value();
             return d;
           })
      .def(
          "forward",
          [](CausalLM& self, const torch::Tensor& input_ids, std::optional<torch::Tensor> attention_mask) {
            model::ForwardOptions o;
            if (attention_mask) o.attention_mask = *attention_mask;
            py::gil_scoped_release release;
            return self.forward(input_ids, o);
          },
          py::arg("input_ids"), py::arg("attention_mask") = py::none())
      .def("logits", [](const CausalLM& self, const torch::Tensor& hidden) { return self.logits(hidden); })
      .def(
          "token_stats",
          [](CausalLM& self, const torch::Tensor& input_ids, std::optional<torch::Tensor> attention_mask,
             double temperature, int64_t chunk_size) {
            model::ForwardOptions o;
            if (attention_mask) o.attention_mask = *attention_mask;
            model::TokenStats st;
            {
              py::gil_scoped_release release;
              const auto hidden = self.forward(input_ids, o);
              const int64_t T = input_ids.size(1);
              st = model::token_logprobs(hidden.narrow(1, 0, T - 1), self.lm_head_weight(),
                                         input_ids.narrow(1, 1, T - 1), temperature, chunk_size);
            }
            return py::make_tuple(st.logprobs, st.entropy, st.self_certainty);
          },
          py::arg("input_ids"), py::arg("attention_mask") = py::none(), py::arg("temperature") = 1.0,
          py::arg("chunk_size") = 1024)
      .def(
          "train_mode", [](CausalLM& self, bool on) { self.train(on); }, py::arg("on") = true)
      .def_property_readonly("config", [](const CausalLM& self) { return to_python(self.config().to_json()); })
      .def_property_readonly("device", [](const CausalLM& self) { return self.device().str(); })
      .def_property_readonly("dtype", [](const CausalLM& self) { return dtype_name(self.dtype()); })
      .def_property_readonly("num_parameters", [](const CausalLM& self) {
        int64_t n = 0;
        for (const auto& p : self.parameters()) n += p.numel();
        return n;
      });
  // LoRA (selfrl/model/lora.h); configs travel as PEFT's adapter_config.json dicts.
  m.def("has_lora", [](const CausalLM& m) { return model::has_lora(m); });
  m.def("add_lora", [](CausalLM& m, const py::dict& cfg) {
    return model::add_lora(m, model::LoraConfig::from_peft_json(to_json(cfg), "LoraConfig"));
  });
  m.def("save_lora", [](const CausalLM& m, const py::dict& cfg, const std::string& dir) {
    model::save_lora(m, model::LoraConfig::from_peft_json(to_json(cfg), "LoraConfig"), dir);
  });
  m.def("load_lora",
        [](CausalLM& m, const std::string& dir) { return to_python(model::load_lora(m, dir).to_peft_json()); });
  m.def("merge_lora", [](CausalLM& m) { model::merge_lora(m); });
  m.def("eos_token_ids",
        [](const std::string& dir, const CausalLM& model) { return model::eos_token_ids(dir, model.config()); });

  using tokenizer::Tokenizer;
  py::class_<Tokenizer, std::shared_ptr<Tokenizer>>(m, "Tokenizer")
      .def_static(
          "from_pretrained",
          [](const std::string& path) {
            py::gil_scoped_release release;
            return std::shared_ptr<Tokenizer>(Tokenizer::from_pretrained(path));
          },
          py::arg("path"))
      .def(
          "encode",
          [](const Tokenizer& t, const std::string& text, bool add_special_tokens) {
            return t.encode(text, add_special_tokens);
          },
          py::arg("text"), py::arg("add_special_tokens") = true)
      .def(
          "encode_batch",
          [](const Tokenizer& t, const std::vector<std::string>& texts, bool add_special_tokens) {
            py::gil_scoped_release release;
            return t.encode_batch(texts, add_special_tokens);
          },
          py::arg("texts"), py::arg("add_special_tokens") = true)
      .def(
          "decode",
          // Ids past the vocabulary (models often have more embedding rows than tokens) decode
          // to nothing, as in HF tokenizers.
          [](const Tokenizer& t, const std::vector<int64_t>& ids, bool skip_special_tokens) {
            return t.decode_generated(ids, skip_special_tokens);
          },
          py::arg("ids"), py::arg("skip_special_tokens") = false)
      .def(
          "render_chat",
          [](const Tokenizer& t, const std::vector<std::pair<std::string, std::string>>& messages,
             bool add_generation_prompt, const std::string& fallback) {
            std::vector<tokenizer::ChatMessage> msgs;
            for (const auto& [role, content] : messages) msgs.push_back({role, content});
            return t.apply_chat_template(msgs, add_generation_prompt, fallback);
          },
          py::arg("messages"), py::arg("add_generation_prompt") = true, py::arg("fallback_format") = "")
      .def("id_to_token", &Tokenizer::id_to_token)
      .def("token_to_id", &Tokenizer::token_to_id)
      .def("is_special", &Tokenizer::is_special)
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size)
      .def_property_readonly("bos_token_id", &Tokenizer::bos_id)
      .def_property_readonly("eos_token_id", &Tokenizer::eos_id)
      .def_property_readonly("pad_token_id", &Tokenizer::pad_id)
      .def_property_readonly("chat_template", [](const Tokenizer& t) { return t.config().chat_template; });
  m.def(
      "train_sentencepiece",
      [](const std::vector<std::string>& lines, const std::string& out_prefix, int vocab_size,
         const std::string& model_type) {
        tokenizer::SentencePieceTrainOptions o;
        o.vocab_size = vocab_size;
        o.model_type = model_type;
        py::gil_scoped_release release;
        return tokenizer::train_sentencepiece(lines, out_prefix, o);
      },
      py::arg("lines"), py::arg("out_prefix"), py::arg("vocab_size") = 256, py::arg("model_type") = "bpe");

  py::class_<generation::SamplingParams>(m, "_SamplingParams")
      .def(py::init<>())
      .def_readwrite("num_samples", &generation::SamplingParams::num_samples)
      .def_readwrite("max_new_tokens", &generation::SamplingParams::max_new_tokens)
      .def_readwrite("temperature", &generation::SamplingParams::temperature)
      .def_readwrite("top_k", &generation::SamplingParams::top_k)
      .def_readwrite("top_p", &generation::SamplingParams::top_p)
      .def_readwrite("min_p", &generation::SamplingParams::min_p)
      .def_readwrite("seed", &generation::SamplingParams::seed)
      .def_readwrite("stop_token_ids", &generation::SamplingParams::stop_token_ids)
      .def_readwrite("stop_sequences", &generation::SamplingParams::stop_sequences)
      .def_readwrite("ignore_eos", &generation::SamplingParams::ignore_eos)
      .def("validate", &generation::SamplingParams::validate);

  py::class_<generation::RolloutEngine, std::shared_ptr<generation::RolloutEngine>>(m, "_RolloutEngine")
      .def(py::init([](std::shared_ptr<CausalLM> model, int64_t max_batch_size, std::vector<int64_t> eos,
                       bool continuous_batching, bool share_prompt_cache, int64_t kv_block_size) {
             generation::RolloutEngineOptions o;
             o.max_batch_size = max_batch_size;
             o.eos_token_ids = std::move(eos);
             o.continuous_batching = continuous_batching;
             o.share_prompt_cache = share_prompt_cache;
             o.kv_block_size = kv_block_size;
             return std::make_shared<generation::RolloutEngine>(std::move(model), o);
           }),
           py::arg("model"), py::arg("max_batch_size") = 64, py::arg("eos_token_ids") = std::vector<int64_t>{},
           py::arg("continuous_batching") = false, py::arg("share_prompt_cache") = true, py::arg("kv_block_size") = 256)
      .def(
          "generate",
          [](generation::RolloutEngine& e, const std::vector<std::vector<int64_t>>& prompts,
             const generation::SamplingParams& params, const std::vector<uint64_t>& seeds) {
            std::vector<generation::Rollout> out;
            {
              py::gil_scoped_release release;
              torch::NoGradGuard ng;
              out = e.generate(prompts, params, seeds);
            }
            py::list l;
            for (const auto& r : out) {
              py::list comps;
              for (const auto& c : r.completions) comps.append(completion_dict(c));
              l.append(py::make_tuple(r.prompt_ids, comps));
            }
            return l;
          },
          py::arg("prompts"), py::arg("params"), py::arg("request_seeds") = std::vector<uint64_t>{})
      .def("last_timings", [](const generation::RolloutEngine& e) {
        const auto& t = e.last_timings();
        py::dict d;
        d["prefill_seconds"] = t.prefill_seconds;
        d["decode_seconds"] = t.decode_seconds;
        d["prefill_tokens"] = t.prefill_tokens;
        d["decode_tokens"] = t.decode_tokens;
        d["decode_steps"] = t.decode_steps;
        d["peak_cache_bytes"] = t.peak_cache_bytes;
        return d;
      });

  m.def(
      "evaluate",
      [](std::shared_ptr<CausalLM> model, std::shared_ptr<Tokenizer> tok, const std::string& data_path,
         const std::string& extractor, int64_t samples, double temperature, int64_t max_new_tokens, int64_t batch_size,
         uint64_t seed, bool chat_template, std::vector<int64_t> eos, bool per_example) {
        eval::EvalResult r;
        {
          py::gil_scoped_release release;
          data::PromptOptions po;
          po.chat_template = chat_template;
          po.max_prompt_length = model->config().max_position_embeddings - max_new_tokens;
          const auto prompts = data::load_prompts(data_path, tok.get(), po);
          eval::EvalOptions o;
          o.samples = samples;
          o.temperature = temperature;
          o.max_new_tokens = max_new_tokens;
          o.batch_size = batch_size;
          o.seed = seed;
          o.keep_per_example = per_example;
          auto decode = [tok](const std::vector<int64_t>& ids) { return tok->decode_generated(ids); };
          torch::NoGradGuard ng;
          r = eval::evaluate(model, decode, prompts, eval::parse_extractor(extractor), o, eos);
        }
        return to_python(r.to_json());
      },
      py::arg("model"), py::arg("tokenizer"), py::arg("data_path"), py::arg("answer_extractor") = "last_number",
      py::arg("samples") = 1, py::arg("temperature") = 1.0, py::arg("max_new_tokens") = 64, py::arg("batch_size") = 64,
      py::arg("seed") = 0, py::arg("chat_template") = false, py::arg("eos_token_ids") = std::vector<int64_t>{},
      py::arg("per_example") = false);
}

}  // namespace selfrl::python

PYBIND11_MODULE(_selfrl, m) {
  namespace py = pybind11;
  using namespace selfrl::python;
  m.doc() = "libselfrl's C++ engine (use the `selfrl` package, not this module)";
  m.attr("__version__") = selfrl::version();
  m.attr("torch_version") = TORCH_VERSION;  // the LibTorch this extension was compiled against
  // Tensor-sized blocks from the heap instead of fresh mmaps, for this whole Python process
  // (torch's own CPU tensors too); SELFRL_MALLOC_TUNING=0 before the import keeps glibc's defaults.
  m.attr("host_allocator") = selfrl::tune_host_allocator().describe();
  m.def("decode_attention", &selfrl::model::describe_decode_attention);
  m.def("set_fused_decode_attention", &selfrl::model::set_fused_decode_attention, py::arg("on"));
  m.def(
      "memory_usage",
      [](const std::string& device) {
        const auto u = selfrl::memory_usage(selfrl::parse_device(device));
        py::dict d;
        d["cpu_rss_gb"] = u.cpu_rss_gb;
        d["cpu_peak_rss_gb"] = u.cpu_peak_rss_gb;
        if (u.has_device_stats) {
          d["max_memory_allocated_gb"] = u.device_max_allocated_gb;
          d["max_memory_reserved_gb"] = u.device_max_reserved_gb;
        }
        return d;
      },
      py::arg("device") = "cpu");
#ifdef SELFRL_WITH_CUDA
  m.attr("cuda") = true;
#else
  m.attr("cuda") = false;
#endif
  // selfrl::Error → selfrl.Error (message, where, hint); Interrupted → KeyboardInterrupt;
  // trainers::CollapseStopped → selfrl.CollapseStopped (an Error with checkpoint_dir).
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const selfrl::Interrupted& e) {
      PyErr_SetString(PyExc_KeyboardInterrupt, e.what());
    } catch (const selfrl::trainers::CollapseStopped& e) {
      py::object cls = py::module_::import("selfrl.errors").attr("CollapseStopped");
      py::object err = cls(e.what(), e.message(), e.where(), e.hint_text(), e.checkpoint_dir());
      PyErr_SetObject(cls.ptr(), err.ptr());
    } catch (const selfrl::Error& e) {
      py::object cls = py::module_::import("selfrl.errors").attr("Error");
      py::object err = cls(e.what(), e.message(), e.where(), e.hint_text());
      PyErr_SetObject(cls.ptr(), err.ptr());
    }
  });
  bind_models(m);
  bind_rewards(m);
  bind_runs(m);
}
