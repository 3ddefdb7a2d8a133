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

// The same rows without padding (TRL's `padding_free`, verl's `use_remove_padding`): each
// sequence (its prompt and completion tokens, no pads) is placed whole in a packed row by
// best-fit decreasing, rows as wide as the padded batch (P + C) so that no row costs more
// attention than a padded one; a row holds as many sequences as fit. Positions restart at 0 for
// each sequence and segment ids keep sequences from attending to each other
// (ForwardOptions::segment_ids), so every real token sees exactly what it sees in the padded
// layout.
struct PackedRows {
  torch::Tensor input_ids;     // [R, P + C] int64 (pad_id in the unused tail of a row)
  torch::Tensor position_ids;  // [R, P + C] int64
  torch::Tensor segment_ids;   // [R, P + C] int64: 1, 2, ... per sequence in the row, 0 = unused
  // One entry per completion token of the batch (attention_mask = 1 in a completion column):
  torch::Tensor predict_index;  // flat index into [R × (P + C)] of the position that predicts it
  torch::Tensor target_ids;     // the token
  torch::Tensor output_index;   // flat index into [B × C]: where its statistics go
  std::vector<int64_t> row_of;  // packed row of each batch row
  int64_t real_tokens = 0;      // tokens without padding (prompts + completions)
};
PackedRows pack_padding_free(const SequenceBatch& batch);

struct TokenStatsOptions {
  double temperature = 1.0;  // scores log-softmax(logits / temperature), as TRL scores the policy
  bool activation_checkpointing = false;
  int64_t chunk_size = 1024;  // rows of the chunked lm_head (selfrl/model/token_logprobs.h)
  bool bf16 = false;          // forward under bfloat16 autocast (selfrl/core/autocast.h)
  bool padding_free = false;  // forward packed rows (pack_padding_free) instead of padded ones
};

// Per-token log-probs, entropy and self-certainty of the completion tokens: [B, C] each,
// float32. Grad flows when enabled. Positions past a completion's end hold garbage in the padded
// layout and 0 in the padding-free one; callers mask them with completion_mask either way.
model::TokenStats completion_token_stats(model::CausalLM& model, const SequenceBatch& batch,
                                         const TokenStatsOptions& options);
// Positional form of the above (padded rows).
model::TokenStats completion_token_stats(model::CausalLM& model, const SequenceBatch& batch, double temperature,
                                         bool activation_checkpointing = false, int64_t chunk_size = 1024,
                                         bool bf16 = false);

// A frozen copy of a model's current weights (the reference policy).
std::shared_ptr<model::CausalLM> clone_model(const model::CausalLM& model);

}  // namespace selfrl::trainers
