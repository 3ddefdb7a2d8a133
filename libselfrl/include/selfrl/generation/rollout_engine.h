// RolloutEngine: batched, KV-cached generation of G completions for each of many prompts.
//
// Prompts are processed in waves of at most max_batch_size rows (prompts × G). In a wave each
// prompt is prefilled once (left-padded batch, HF attention mask and positions) and its KV
// cache rows are shared by its G samples (or copied to each); then all rows decode in
// lockstep, and rows that finish leave the batch (the cache, mask and token tensors are
// compacted) so later steps cost only what is still running.
//
// Reproducibility: sample g of request r draws its uniforms from its own stream,
// derive_seed(request_seed, {g}), one draw per generated token, where request_seed is given per
// request or derive_seed(params.seed, {r}). The random numbers a completion sees therefore do not
// depend on batch composition, wave size or the other requests. The logits can still differ in
// the last float bits between batch shapes (BLAS blocking, padding), which can flip a sample
// whose uniform falls within that distance of a CDF boundary; identical inputs with identical
// batch composition are bit-for-bit reproducible.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "selfrl/generation/rollout.h"
#include "selfrl/generation/sampling_params.h"
#include "selfrl/model/causal_lm.h"

namespace selfrl::generation {

struct RolloutEngineOptions {
  int64_t max_batch_size = 64;         // rows (prompts × samples) decoded together; a single prompt's
                                       // G samples are never split
  std::vector<int64_t> eos_token_ids;  // stop ids of the model (config + generation_config.json)
  // Continuous batching (vLLM's scheduling): a waiting prompt joins the running batch as soon
  // as G rows are free, instead of waiting for the whole wave to finish. Off: waves.
  bool continuous_batching = false;
  // A prompt's G samples share one copy of its keys and values (KVCache::share_prompts):
  // decode reads the prompt's cache once per step for all G samples, and holds it once. In
  // waves and with continuous batching (admitted prompts join the shared prefix).
  // The same tokens and numbers as without, up to the order of floating-point sums.
  bool share_prompt_cache = true;
  // KV memory grows in blocks of this many columns (token positions, all rows together) as the
  // longest running row needs them, instead of reserving every row's max_new_tokens up front,
  // so a long budget that completions do not use costs no memory. 0: reserve it all up front.
  // Rows leave the cache as they finish, so it holds about the longest running row plus a block.
  int64_t kv_block_size = 256;
};

// Wall-clock split of the last generate() call (for throughput metrics and benchmarks).
struct RolloutTimings {
  double prefill_seconds = 0;    // prompt forward passes (one per prompt, all waves)
  double decode_seconds = 0;     // everything after: sampling, stats, decode steps, compaction
  int64_t decode_steps = 0;      // forward passes of the decode loop (one token for every running row)
  int64_t prefill_tokens = 0;    // prompt tokens (without padding)
  int64_t decode_tokens = 0;     // generated tokens, all completions
  int64_t peak_cache_bytes = 0;  // the KV cache's largest size (KVCache::nbytes)
};

class RolloutEngine {
 public:
  RolloutEngine(std::shared_ptr<model::CausalLM> model, RolloutEngineOptions options = {});

  // Called with the number of prompts whose samples all finished at a decode step (progress).
  using ProgressFn = std::function<void(int64_t prompts_done)>;

  // One Rollout per prompt, in order. `request_seeds`, when not empty, gives one seed per
  // prompt. Throws Error for empty prompts, ids outside the vocabulary or prompts that leave no
  // room under max_position_embeddings.
  std::vector<Rollout> generate(const std::vector<std::vector<int64_t>>& prompts, const SamplingParams& params,
                                const std::vector<uint64_t>& request_seeds = {}, const ProgressFn& on_done = {});

  const RolloutTimings& last_timings() const { return timings_; }

 private:
  void decode(const std::vector<std::vector<int64_t>>& prompts, const SamplingParams& params,
              const std::vector<uint64_t>& seeds, std::vector<Rollout>& out, const ProgressFn& on_done);
  std::shared_ptr<model::CausalLM> model_;
  RolloutEngineOptions options_;
  RolloutTimings timings_;
};

}  // namespace selfrl::generation
