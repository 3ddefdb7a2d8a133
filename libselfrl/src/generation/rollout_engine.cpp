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
#include "selfrl/core/host_allocator.h"
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
  int64_t max_new;        // this row's token budget (max_new_tokens, less where the context ends first)
  int64_t start;          // cache column of the row's first prompt token (columns before it are padding)
  int64_t own_start = 0;  // with a shared prefix: the row's first own column (its first generated token)
};

}  // namespace

const char* to_string(FinishReason reason) { return reason == FinishReason::kStop ? "stop" : "length"; }

RolloutEngine::RolloutEngine(std::shared_ptr<model::CausalLM> model, RolloutEngineOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  SELFRL_CHECK(model_ != nullptr, "RolloutEngine needs a model");
  SELFRL_CHECK(options_.max_batch_size > 0, "max_batch_size must be > 0, got ", options_.max_batch_size);
  SELFRL_CHECK(options_.kv_block_size >= 0, "kv_block_size must be >= 0 (0: no growth), got ", options_.kv_block_size);
  tune_host_allocator();  // prefill activations are megabytes each: keep their pages
}

std::vector<Rollout> RolloutEngine::generate(const std::vector<std::vector<int64_t>>& prompts,
                                             const SamplingParams& params, const std::vector<uint64_t>& request_seeds,
                                             const ProgressFn& on_done) {
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
  decode(prompts, params, seeds, out, on_done);
  return out;
}

// The decode loop of both batching modes. Each iteration samples one token for every row,
// drops the rows that finished, feeds the others their token, and admits waiting prompts:
// in waves, only when the batch has emptied (then `max_batch_size / G` prompts at once); with
// continuous batching, whenever G rows are free. Admitted prompts are prefilled once
// (left-padded), their cache rows shared by their G samples (or copied to each) and spliced
// into the running cache right-aligned with it (KVCache::merged_with), so that every row's
// newest token sits in the last column; columns that are padding for every row are dropped at
// each splice.
void RolloutEngine::decode(const std::vector<std::vector<int64_t>>& prompts, const SamplingParams& params,
                           const std::vector<uint64_t>& seeds, std::vector<Rollout>& out, const ProgressFn& on_done) {
  c10::InferenceMode inference_mode;
  model::CausalLM& m = *model_;
  const auto& cfg = m.config();
  const auto dev = m.device();
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong);
  const int64_t G = params.num_samples;
  const int64_t vocab = cfg.vocab_size;
  const double log_vocab = std::log(static_cast<double>(vocab));
  const int64_t per_wave = std::max<int64_t>(1, options_.max_batch_size / G);

  std::set<int64_t> stop_ids(params.stop_token_ids.begin(), params.stop_token_ids.end());
  if (!params.ignore_eos) stop_ids.insert(options_.eos_token_ids.begin(), options_.eos_token_ids.end());

  model::KVCache cache;  // the running rows' keys and values
  torch::Tensor mask;    // [rows, capacity] int64 on dev: 1 on real tokens
  torch::Tensor logits;  // [rows, vocab] float32: the distribution of each row's next token
  std::vector<Row> rows;
  std::vector<int64_t> running_samples(prompts.size(), G);  // per prompt, for on_done
  size_t next_prompt = 0;
  model::ForwardOptions fo;
  fo.check_ids = false;  // ids and lengths validated by generate()

  // A row's token budget: max_new_tokens, less where the context ends first.
  auto budget_of = [&](size_t prompt) {
    return std::min<int64_t>(params.max_new_tokens,
                             cfg.max_position_embeddings - static_cast<int64_t>(prompts[prompt].size()));
  };
  // Columns to reserve now for `needed` more: a block at most (kv_block_size), or all of them.
  auto reserve_of = [&](int64_t needed) {
    return options_.kv_block_size > 0 ? std::min(needed, options_.kv_block_size) : needed;
  };
  // The most columns any running row may still need after the cached ones.
  auto still_needed = [&]() {
    int64_t n = 0;
    for (const auto& r : rows)
      n = std::max<int64_t>(n, r.max_new - static_cast<int64_t>(out[r.rollout].completions[r.sample].token_ids.size()));
    return n;
  };
  // Prefills prompts [first, first + count) and splices their G rows after the running ones.
  auto admit = [&](size_t first, size_t count) {
    const auto t0 = std::chrono::steady_clock::now();
    int64_t prompt_len = 0;
    for (size_t i = 0; i < count; ++i) prompt_len = std::max<int64_t>(prompt_len, prompts[first + i].size());
    auto ids = torch::zeros({static_cast<int64_t>(count), prompt_len}, long_opts);
    auto new_mask = torch::zeros({static_cast<int64_t>(count), prompt_len}, long_opts);
    for (size_t i = 0; i < count; ++i) {
      const auto& p = prompts[first + i];
      const int64_t pad = prompt_len - static_cast<int64_t>(p.size());
      std::copy(p.begin(), p.end(), ids[i].data_ptr<int64_t>() + pad);
      new_mask[i].narrow(0, pad, p.size()).fill_(1);
    }
    ids = ids.to(dev);
    new_mask = new_mask.to(dev);
    int64_t new_budget = 0;  // the most new tokens an admitted row may generate
    for (size_t i = 0; i < count; ++i) new_budget = std::max(new_budget, budget_of(first + i));
    // Into an empty batch (every wave, the first admission) the prompts are prefilled straight
    // into a cache of the final capacity: no splice, no second copy of the cache.
    const bool alone = rows.empty();
    // Shared prompt rows: the prefill cache (prompt columns only) becomes the shared prefix.
    const bool share = G > 1 && options_.share_prompt_cache;
    model::KVCache fresh =
        m.make_cache(static_cast<int64_t>(count), prompt_len + (alone && !share ? reserve_of(new_budget) : 0));
    model::ForwardOptions pf;
    pf.cache = &fresh;
    pf.attention_mask = new_mask;
    pf.check_ids = false;
    auto new_logits = m.logits(m.forward(ids, pf).select(1, prompt_len - 1)).to(torch::kFloat);
    if (G > 1) {
      if (share)
        fresh.share_prompts(G, alone ? reserve_of(new_budget) : 1);  // spliced: the merged cache gets the room
      else
        fresh.repeat_interleave(G);
      new_logits = new_logits.repeat_interleave(G, 0);
      new_mask = new_mask.repeat_interleave(G, 0);
    }
    // The splice: drop the columns before the earliest running row, right-align both parts.
    // The prompt part (the "head": all columns, or the shared prefix) and a shared-prefix
    // cache's own columns (the "tail") are aligned separately (KVCache::merged_with).
    const int64_t old_head = share ? cache.prefix_length() : cache.length();
    const int64_t old_tail = cache.length() - old_head;  // 0 without a shared prefix or running rows
    int64_t from = old_head, own_from = old_tail;
    for (const auto& r : rows) {
      from = std::min(from, r.start);
      own_from = std::min(own_from, r.own_start);
    }
    const int64_t running = old_head - from;
    const int64_t tail = old_tail - own_from;  // own columns kept: from the oldest running row's first
    const int64_t head = std::max(running, prompt_len);
    int64_t budget = still_needed();  // columns still needed after the cached ones, the most any row needs
    for (size_t i = 0; i < count; ++i) {
      Rollout& ro = out[first + i];
      ro.prompt_index = static_cast<int64_t>(first + i);
      ro.prompt_ids = prompts[first + i];
      ro.completions.resize(G);
      const int64_t len = static_cast<int64_t>(prompts[first + i].size());
      const int64_t max_new = budget_of(first + i);
      budget = std::max(budget, max_new);
      for (int64_t g = 0; g < G; ++g) {
        ro.completions[g].sample_index = g;
        ro.completions[g].token_ids.reserve(max_new);
        rows.push_back({first + i, g, std::mt19937_64(derive_seed(seeds[first + i], {static_cast<uint64_t>(g)})),
                        max_new, head - len, tail});
      }
    }
    const size_t old_rows = rows.size() - static_cast<size_t>(count * G);
    for (size_t r = 0; r < old_rows; ++r) {
      rows[r].start += head - running - from;
      rows[r].own_start -= own_from;
    }
    const int64_t capacity = head + tail + reserve_of(budget);
    auto merged_mask = torch::zeros({static_cast<int64_t>(rows.size()), capacity}, long_opts.device(dev));
    if (old_rows > 0 && running > 0) {
      auto old_mask = merged_mask.narrow(0, 0, old_rows);
      old_mask.narrow(1, head - running, running).copy_(mask.narrow(1, from, running));
      if (tail > 0) old_mask.narrow(1, head, tail).copy_(mask.narrow(1, old_head + own_from, tail));
    }
    merged_mask.narrow(0, old_rows, count * G).narrow(1, head - prompt_len, prompt_len).copy_(new_mask);
    cache = alone ? std::move(fresh) : cache.merged_with(from, fresh, capacity, own_from);
    mask = merged_mask;
    logits = alone ? new_logits : torch::cat({logits, new_logits}, 0);
    timings_.peak_cache_bytes = std::max(timings_.peak_cache_bytes, cache.nbytes());
    // CUDA kernels run asynchronously: wait for the prefill so that the split below is honest.
    if (dev.is_cuda()) torch::cuda::synchronize(dev.index());
    timings_.prefill_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (size_t i = 0; i < count; ++i) timings_.prefill_tokens += prompts[first + i].size();
  };
  // Admits what the mode allows into `free` free rows (an empty batch takes at least one prompt).
  auto admit_waiting = [&]() {
    if (next_prompt >= prompts.size()) return;
    size_t count = 0;
    if (options_.continuous_batching) {
      // Admit in groups of at least a quarter of the batch (or what is left to admit): each
      // admission costs a prefill forward and a copy of the running cache.
      const int64_t free = options_.max_batch_size - static_cast<int64_t>(rows.size());
      const int64_t group =
          std::min<int64_t>(std::max<int64_t>(1, per_wave / 4), static_cast<int64_t>(prompts.size() - next_prompt));
      count = static_cast<size_t>(free / G >= group ? free / G : 0);
      if (rows.empty()) count = std::max<size_t>(count, 1);
    } else if (rows.empty()) {
      count = static_cast<size_t>(per_wave);
    }
    count = std::min(count, prompts.size() - next_prompt);
    if (count == 0) return;
    admit(next_prompt, count);
    next_prompt += count;
  };

  admit_waiting();
  const double temperature = params.greedy() ? 1.0 : params.temperature;
  std::vector<double> uniforms;
  while (!rows.empty()) {
    const auto t1 = std::chrono::steady_clock::now();
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
    int64_t prompts_done = 0;
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
      else if (static_cast<int64_t>(c.token_ids.size()) == rows[b].max_new)
        c.finish_reason = FinishReason::kLength;
      else
        keep.push_back(b);
      const bool finished = keep.empty() || keep.back() != b;
      if (finished && --running_samples[rows[b].rollout] == 0) ++prompts_done;
    }
    if (prompts_done > 0 && on_done) on_done(prompts_done);
    if (static_cast<int64_t>(keep.size()) < batch) {
      // Finished rows leave the batch: compact rows, cache, mask and the tokens to feed.
      std::vector<Row> kept;
      kept.reserve(keep.size());
      for (int64_t b : keep) kept.push_back(std::move(rows[b]));
      rows = std::move(kept);
      if (rows.empty()) {
        cache = model::KVCache();
      } else {
        auto index = torch::tensor(keep, long_opts).to(dev);
        cache.select_rows(index);
        mask = mask.index_select(0, index);
        tokens = tokens.index_select(0, index);
      }
    }
    if (!rows.empty()) {
      const int64_t pos = cache.length();  // column of the token fed now
      if (pos >= cache.capacity()) {
        // The next block of KV memory (kv_block_size): cache and mask grow together.
        cache.reserve(pos + reserve_of(still_needed()));
        mask = torch::cat({mask, torch::zeros({mask.size(0), cache.capacity() - mask.size(1)}, mask.options())}, 1);
        timings_.peak_cache_bytes = std::max(timings_.peak_cache_bytes, cache.nbytes());
      }
      mask.select(1, pos).fill_(1);
      fo.cache = &cache;
      fo.attention_mask = mask.narrow(1, 0, pos + 1);
      logits = m.logits(m.forward(tokens.unsqueeze(1), fo).select(1, 0)).to(torch::kFloat);
      ++timings_.decode_steps;
    }
    timings_.decode_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    admit_waiting();
  }
}

}  // namespace selfrl::generation
