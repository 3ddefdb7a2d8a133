// Batched KV-cached rollouts (see rollout_engine.h).
#include "selfrl/generation/rollout_engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <set>

#include <ATen/core/grad_mode.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>

#include "selfrl/core/error.h"
#include "selfrl/core/seed.h"
#include "selfrl/generation/sampler.h"

namespace selfrl::generation {
namespace {

// A uniform in (0, 1] from 53 random bits (never 0, see sample_tokens).
double uniform_open0(std::mt19937_64& engine) {
  return (static_cast<double>(engine() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

bool ends_with(const std::vector<int64_t>& seq, const std::vector<int64_t>& tail) {
  return seq.size() >= tail.size() && std::equal(tail.rbegin(), tail.rend(), seq.rbegin());
}

struct Row {
  size_t rollout;  // index into the output
  int64_t sample;
  std::mt19937_64 engine;
};

}  // namespace

const char* to_string(FinishReason reason) { return reason == FinishReason::kStop ? "stop" : "length"; }

RolloutEngine::RolloutEngine(std::shared_ptr<model::CausalLM> model, RolloutEngineOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  SELFRL_CHECK(model_ != nullptr, "RolloutEngine needs a model");
  SELFRL_CHECK(options_.max_batch_size > 0, "max_batch_size must be > 0, got ", options_.max_batch_size);
}

std::vector<Rollout> RolloutEngine::generate(const std::vector<std::vector<int64_t>>& prompts,
                                             const SamplingParams& params, const std::vector<uint64_t>& request_seeds) {
  params.validate();
  const auto& cfg = model_->config();
  SELFRL_CHECK(request_seeds.empty() || request_seeds.size() == prompts.size(), "got ", request_seeds.size(),
               " request seeds for ", prompts.size(), " prompts");
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto& p = prompts[i];
    const std::string where = "prompt " + std::to_string(i);
    if (p.empty()) throw Error("input_ids is empty").at(where);
    for (int64_t id : p) {
      if (id < 0 || id >= cfg.vocab_size) {
        throw Error(detail::concat("token id ", id, " is outside the vocabulary [0, ", cfg.vocab_size, ")"))
            .at(where)
            .hint("check that the tokenizer matches the model");
      }
    }
    if (static_cast<int64_t>(p.size()) >= cfg.max_position_embeddings) {
      throw Error(detail::concat("prompt of ", p.size(), " tokens leaves no room under max_position_embeddings ",
                                 cfg.max_position_embeddings))
          .at(where);
    }
  }
  std::vector<uint64_t> seeds(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    seeds[i] = request_seeds.empty() ? derive_seed(params.seed, {static_cast<uint64_t>(i)}) : request_seeds[i];
  }
  std::vector<Rollout> out(prompts.size());
  timings_ = {};
  const int64_t per_wave = std::max<int64_t>(1, options_.max_batch_size / params.num_samples);
  for (size_t first = 0; first < prompts.size(); first += per_wave) {
    const size_t count = std::min<size_t>(per_wave, prompts.size() - first);
    generate_wave(prompts, first, count, params, seeds, out);
  }
  return out;
}

void RolloutEngine::generate_wave(const std::vector<std::vector<int64_t>>& prompts, size_t first, size_t count,
                                  const SamplingParams& params, const std::vector<uint64_t>& seeds,
                                  std::vector<Rollout>& out) {
  c10::InferenceMode inference_mode;
  model::CausalLM& m = *model_;
  const auto& cfg = m.config();
  const auto dev = m.device();
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong);
  const int64_t G = params.num_samples;
  const int64_t vocab = cfg.vocab_size;
  const double log_vocab = std::log(static_cast<double>(vocab));

  int64_t prompt_len = 0;
  for (size_t i = 0; i < count; ++i) prompt_len = std::max<int64_t>(prompt_len, prompts[first + i].size());
  const int64_t max_new = std::min<int64_t>(params.max_new_tokens, cfg.max_position_embeddings - prompt_len);
  const int64_t capacity = prompt_len + max_new;

  std::set<int64_t> stop_ids(params.stop_token_ids.begin(), params.stop_token_ids.end());
  if (!params.ignore_eos) stop_ids.insert(options_.eos_token_ids.begin(), options_.eos_token_ids.end());

  // Left-padded prompts; the mask buffer spans the whole capacity so decode steps only flip a column.
  auto ids = torch::zeros({static_cast<int64_t>(count), prompt_len}, long_opts);
  auto mask = torch::zeros({static_cast<int64_t>(count), capacity}, long_opts);
  for (size_t i = 0; i < count; ++i) {
    const auto& p = prompts[first + i];
    const int64_t pad = prompt_len - static_cast<int64_t>(p.size());
    std::copy(p.begin(), p.end(), ids[i].data_ptr<int64_t>() + pad);
    mask[i].narrow(0, pad, p.size()).fill_(1);
  }
  ids = ids.to(dev);
  mask = mask.to(dev);

  // Prefill each prompt once, then copy its cache rows to its G samples.
  auto t0 = std::chrono::steady_clock::now();
  model::KVCache cache = m.make_cache(static_cast<int64_t>(count), capacity);
  model::ForwardOptions fo;
  fo.cache = &cache;
  fo.attention_mask = mask.narrow(1, 0, prompt_len);
  fo.check_ids = false;  // validated by generate()
  auto hidden = m.forward(ids, fo).select(1, prompt_len - 1);
  auto logits = m.logits(hidden).to(torch::kFloat);
  if (G > 1) {
    cache.repeat_interleave(G);
    logits = logits.repeat_interleave(G, 0);
    mask = mask.repeat_interleave(G, 0);
  }
  // CUDA kernels run asynchronously: wait for the prefill so that the split below is honest.
  if (dev.is_cuda()) torch::cuda::synchronize(dev.index());
  auto t1 = std::chrono::steady_clock::now();
  timings_.prefill_seconds += std::chrono::duration<double>(t1 - t0).count();
  for (size_t i = 0; i < count; ++i) timings_.prefill_tokens += prompts[first + i].size();

  std::vector<Row> rows;
  for (size_t i = 0; i < count; ++i) {
    Rollout& r = out[first + i];
    r.prompt_index = static_cast<int64_t>(first + i);
    r.prompt_ids = prompts[first + i];
    r.completions.resize(G);
    for (int64_t g = 0; g < G; ++g) {
      r.completions[g].sample_index = g;
      r.completions[g].token_ids.reserve(max_new);
      rows.push_back({first + i, g, std::mt19937_64(derive_seed(seeds[first + i], {static_cast<uint64_t>(g)}))});
    }
  }

  const double temperature = params.greedy() ? 1.0 : params.temperature;
  std::vector<double> uniforms;
  for (int64_t step = 0; step < max_new; ++step) {
    const int64_t batch = static_cast<int64_t>(rows.size());
    // Stats of the raw and the temperature-scaled distributions, all rows at once.
    auto raw_logp = torch::log_softmax(logits, -1);
    auto scaled = temperature == 1.0 ? logits : logits / temperature;
    auto logp = temperature == 1.0 ? raw_logp : torch::log_softmax(scaled, -1);
    auto entropy = -(logp.exp() * logp).sum(-1);
    auto self_certainty = -logp.mean(-1) - log_vocab;
    torch::Tensor tokens;
    if (params.greedy()) {
      tokens = logits.argmax(-1);
    } else {
      uniforms.resize(batch);
      for (int64_t b = 0; b < batch; ++b) uniforms[b] = uniform_open0(rows[b].engine);
      tokens = sample_tokens(scaled, params, uniforms);
    }
    auto picked = tokens.unsqueeze(1);
    auto stats = torch::stack({logp.gather(1, picked).squeeze(1), raw_logp.gather(1, picked).squeeze(1), entropy,
                               self_certainty})
                     .to(torch::kCPU);
    auto tokens_cpu = tokens.to(torch::kCPU);
    const int64_t* tok = tokens_cpu.data_ptr<int64_t>();
    auto st = stats.accessor<float, 2>();

    std::vector<int64_t> keep;
    keep.reserve(batch);
    for (int64_t b = 0; b < batch; ++b) {
      Completion& c = out[rows[b].rollout].completions[rows[b].sample];
      c.token_ids.push_back(tok[b]);
      ++timings_.decode_tokens;
      c.logprobs.push_back(st[0][b]);
      c.raw_logprobs.push_back(st[1][b]);
      c.entropy.push_back(st[2][b]);
      c.self_certainty.push_back(st[3][b]);
      bool stop = stop_ids.count(tok[b]) != 0;
      for (size_t s = 0; !stop && s < params.stop_sequences.size(); ++s)
        stop = ends_with(c.token_ids, params.stop_sequences[s]);
      if (stop)
        c.finish_reason = FinishReason::kStop;
      else if (step + 1 == max_new)
        c.finish_reason = FinishReason::kLength;
      else
        keep.push_back(b);
    }
    if (keep.empty()) break;
    if (static_cast<int64_t>(keep.size()) < batch) {
      // Finished rows leave the batch: compact rows, cache, mask and the tokens to feed.
      std::vector<Row> kept;
      kept.reserve(keep.size());
      for (int64_t b : keep) kept.push_back(std::move(rows[b]));
      rows = std::move(kept);
      auto index = torch::tensor(keep, long_opts).to(dev);
      cache.select_rows(index);
      mask = mask.index_select(0, index);
      tokens = tokens.index_select(0, index);
    }
    const int64_t pos = prompt_len + step;  // column of the token fed now
    mask.select(1, pos).fill_(1);
    fo.attention_mask = mask.narrow(1, 0, pos + 1);
    hidden = m.forward(tokens.unsqueeze(1), fo).select(1, 0);
    logits = m.logits(hidden).to(torch::kFloat);
  }
  timings_.decode_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
}

}  // namespace selfrl::generation
