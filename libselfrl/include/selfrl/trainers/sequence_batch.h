// Prompt + completion batches for training passes, laid out as TRL does: prompts left-padded,
// completions right-padded, concatenated, so every completion starts at the same column and
// only the completion positions go through the (chunked) lm_head.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/types.h>

#include "selfrl/model/causal_lm.h"
#include "selfrl/model/token_logprobs.h"

namespace selfrl::trainers {

struct SequenceBatch {
  torch::Tensor input_ids;        // [B, P + C] int64
  torch::Tensor attention_mask;   // [B, P + C] int64
  torch::Tensor completion_ids;   // [B, C] int64 (pad_id past each completion's end)
  torch::Tensor completion_mask;  // [B, C] float32, 1 on completion tokens
  int64_t prompt_length = 0;      // P
};

SequenceBatch pack_sequences(const std::vector<std::vector<int64_t>>& prompts,
                             const std::vector<std::vector<int64_t>>& completions, int64_t pad_id);

// Rows [begin, end) of a batch (for micro-batching), keeping the common layout.
SequenceBatch slice_rows(const SequenceBatch& batch, int64_t begin, int64_t end);

// Per-token log-probs (temperature-scaled, as TRL scores the policy), entropy and
// self-certainty of the completion tokens: [B, C] each. Grad flows when enabled. `bf16`: the
// forward runs under bfloat16 autocast on the model's device type (selfrl/core/autocast.h); the
// results are float32 either way.
model::TokenStats completion_token_stats(model::CausalLM& model, const SequenceBatch& batch, double temperature,
                                         bool activation_checkpointing = false, int64_t chunk_size = 1024,
                                         bool bf16 = false);

// A frozen copy of a model's current weights (the reference policy).
std::shared_ptr<model::CausalLM> clone_model(const model::CausalLM& model);

}  // namespace selfrl::trainers
