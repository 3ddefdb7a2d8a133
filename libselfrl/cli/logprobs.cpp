// `selfrl logprobs`: per-token log-probabilities of given sequences under a model,
// log p(token_t | tokens_<t) for t = 1 .. n−1, in float32. The parity tests against the
// Python reference run through this command.
#include <cstdio>

#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "inputs.h"
#include "selfrl/core/blas.h"
#include "selfrl/core/device.h"
#include "selfrl/core/error.h"
#include "selfrl/io/jsonl.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/model/token_logprobs.h"

namespace selfrl::cli {

std::vector<std::vector<int64_t>> read_input_ids(const std::string& path, const io::ModelConfig& cfg,
                                                 int64_t min_length, int64_t length_limit,
                                                 const TextEncoder& encode_prompt) {
  io::JsonlReader reader(path);
  std::vector<std::vector<int64_t>> out;
  nlohmann::json rec;
  while (reader.next(rec)) {
    const bool has_ids = rec.contains("input_ids") && rec["input_ids"].is_array();
    if (!has_ids && encode_prompt && rec.contains("prompt")) {
      if (!rec["prompt"].is_string()) throw Error("\"prompt\" must be a string").at(reader.where());
      try {
        rec["input_ids"] = encode_prompt(rec["prompt"].get<std::string>());
      } catch (Error& e) {
        throw e.at(reader.where());
      }
    } else if (!has_ids && rec.contains("prompt")) {
      throw Error("this line has a \"prompt\" text but there is no tokenizer to encode it")
          .at(reader.where())
          .hint(
              "give token ids ({\"input_ids\": [...]}), or a tokenizer (selfrl generate --tokenizer DIR, or a "
              "model directory holding tokenizer.json / tokenizer.model)");
    } else if (!has_ids) {
      throw Error(encode_prompt ? "record has neither an \"input_ids\" list nor a \"prompt\" string"
                                : "record has no \"input_ids\" list")
          .at(reader.where())
          .hint(encode_prompt ? "each line must be {\"input_ids\": [int, ...]} or {\"prompt\": \"...\"}"
                              : "each line must be {\"input_ids\": [int, ...]}");
    }
    std::vector<int64_t> ids;
    for (const auto& v : rec["input_ids"]) {
      if (!v.is_number_integer()) throw Error("input_ids must hold integers, got " + v.dump()).at(reader.where());
      const int64_t id = v.get<int64_t>();
      if (id < 0 || id >= cfg.vocab_size) {
        throw Error(detail::concat("token id ", id, " is outside the vocabulary [0, ", cfg.vocab_size, ")"))
            .at(reader.where())
            .hint("check that the tokenizer matches the model");
      }
      ids.push_back(id);
    }
    if (static_cast<int64_t>(ids.size()) < min_length) {
      throw Error(ids.empty() ? std::string("input_ids is empty")
                              : detail::concat("input_ids needs at least ", min_length, " tokens, got ", ids.size()))
          .at(reader.where());
    }
    if (static_cast<int64_t>(ids.size()) > length_limit) {
      throw Error(detail::concat("sequence of ", ids.size(), " tokens is longer than allowed (", length_limit,
                                 "; max_position_embeddings ", cfg.max_position_embeddings, ")"))
          .at(reader.where());
    }
    out.push_back(std::move(ids));
  }
  return out;
}

namespace {

int run_logprobs(const std::vector<std::string>& args) {
  ArgParser p("selfrl logprobs",
              "Per-token log-probabilities log p(x_t | x_<t), t = 1..n-1, of each {\"input_ids\": [...]} line; "
              "writes one {\"logprobs\": [...]} line per input.");
  p.option("--model", "DIR", "Hugging Face model directory (config.json + safetensors)");
  p.option("--in", "FILE", "JSONL of {\"input_ids\": [...]}");
  p.option("--out", "FILE", "output JSONL ('-' = stdout)", "-");
  p.option("--dtype", "D", "float32 | bfloat16 | float16", "float32");
  p.option("--device", "D", "cpu | cuda | cuda:N", "cpu");
  p.option("--threads", "N", "intra-op threads (0 = LibTorch's default)", "0");
  p.option("--batch-size", "N", "sequences per forward pass", "8");
  if (!p.parse(args)) return 0;
  if (const int64_t n = p.get_int_in("--threads", 0, kMaxCliThreads); n > 0) set_intra_op_threads(static_cast<int>(n));
  const auto device = parse_device(p.get("--device"));
  auto model = model::CausalLM::from_pretrained(p.get("--model"), device, parse_dtype(p.get("--dtype")));
  const auto& cfg = model->config();
  const auto seqs = read_input_ids(p.get("--in"), cfg, 1, cfg.max_position_embeddings);
  const int64_t batch_size = p.get_int_in("--batch-size", 1, 1'000'000);
  io::JsonlWriter writer(p.get("--out"));
  c10::InferenceMode guard;
  for (size_t first = 0; first < seqs.size(); first += batch_size) {
    const size_t n = std::min<size_t>(batch_size, seqs.size() - first);
    size_t len = 0;
    for (size_t i = 0; i < n; ++i) len = std::max(len, seqs[first + i].size());
    // Right padding: with a causal mask no real token attends to the padding after it.
    auto ids = torch::zeros({static_cast<int64_t>(n), static_cast<int64_t>(len)}, torch::kLong);
    for (size_t i = 0; i < n; ++i)
      std::copy(seqs[first + i].begin(), seqs[first + i].end(), ids[i].data_ptr<int64_t>());
    ids = ids.to(device);
    std::vector<std::vector<float>> results(n);
    if (len > 1) {
      auto hidden = model->forward(ids);
      auto stats = model::token_logprobs(hidden.narrow(1, 0, len - 1), model->lm_head_weight(),
                                         ids.narrow(1, 1, len - 1), 1.0, 1024);
      auto lp = stats.logprobs.to(torch::kCPU).contiguous();
      for (size_t i = 0; i < n; ++i) {
        const float* row = lp[i].data_ptr<float>();
        results[i].assign(row, row + seqs[first + i].size() - 1);
      }
    }
    for (auto& r : results) writer.write({{"logprobs", r}});
  }
  writer.close();
  return 0;
}

CommandRegistrar reg({"logprobs", "per-token log-probabilities of sequences under a model", run_logprobs});

}  // namespace
}  // namespace selfrl::cli
