// KVCache: preallocated key/value buffers for incremental decoding.
//
// One buffer pair per layer, [batch, num_key_value_heads, capacity, head_dim], written in place
// as tokens arrive, so the decode loop allocates nothing per token. All rows share one length:
// batches are left-padded and the attention mask (kept by the caller, like HF's
// `attention_mask` of shape [batch, past + new]) hides the padding.
//
// The rollout engine prefills each prompt once, then either `repeat_interleave`s the rows to the
// G samples or, by default, shares them (`share_prompts`): the prompt's keys and values are kept
// once per prompt (the *shared prefix*) and each sample's row holds only the tokens it generates.
// Attention then reads a prompt's keys once for all its samples (one matrix product with G rows
// instead of G vector products; see shared_prefix_attention in layers.cpp) and the cache holds
// the prompt once instead of G times. `select_rows` drops finished sequences from the batch.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

namespace selfrl::model {

class KVCache {
 public:
  KVCache() = default;
  KVCache(int64_t num_layers, int64_t batch, int64_t num_kv_heads, int64_t capacity, int64_t head_dim,
          torch::TensorOptions options);

  int64_t num_layers() const { return static_cast<int64_t>(keys_.size()); }
  int64_t batch() const { return keys_.empty() ? 0 : keys_[0].size(0); }
  // Columns (positions) the cache can hold, the shared prefix included.
  int64_t capacity() const { return keys_.empty() ? 0 : prefix_length_ + keys_[0].size(2); }
  // Tokens cached so far (the same for every row), the shared prefix included.
  int64_t length() const { return prefix_length_ + length_; }
  bool defined() const { return !keys_.empty(); }

  // Writes new keys/values [batch, kv_heads, n, head_dim] of `layer` at positions
  // [length, length + n) and returns views of the row's own valid columns: [0, length + n)
  // without a shared prefix, the columns after it with one. The length advances when
  // `advance(n)` is called after the last layer.
  std::pair<torch::Tensor, torch::Tensor> append(int64_t layer, const torch::Tensor& k, const torch::Tensor& v);
  void advance(int64_t n) { length_ += n; }

  // Keeps only rows `index` (int64 on the cache's device), in that order; also used to
  // duplicate rows (prompt → its G samples) since an index may repeat. With a shared prefix the
  // index must not repeat (a row is one sample), and prompts left without rows are dropped.
  void select_rows(const torch::Tensor& index);
  // Every row repeated `times` times consecutively (row r → rows r*times .. r*times+times-1).
  void repeat_interleave(int64_t times);

  // Turns a cache of P prompt rows into a shared prefix for P × `group_size` rows (row
  // p*group_size + g is sample g of prompt p), each with room for `capacity` own columns.
  // The prompt buffers become the prefix as they are (no copy): prefill into a cache of the
  // prompts' length.
  void share_prompts(int64_t group_size, int64_t capacity);
  bool has_shared_prefix() const { return prefix_length_ > 0; }
  int64_t prefix_length() const { return prefix_length_; }
  // The shared prefix of `layer`: keys and values [prompts, kv_heads, prefix_length, head_dim].
  std::pair<torch::Tensor, torch::Tensor> prefix(int64_t layer) const {
    return {prefix_keys_[static_cast<size_t>(layer)], prefix_values_[static_cast<size_t>(layer)]};
  }
  // Slots per prompt (G) and, per row, its slot prompt * G + sample (int64 on the cache's
  // device); undefined while every slot holds its row in order (no row has finished).
  int64_t group_size() const { return group_size_; }
  const torch::Tensor& row_slots() const { return slots_; }

  // Continuous batching: a cache holding this cache's rows, then `other`'s, right-aligned at a
  // common length. This cache's columns before `from` must be padding in every row: they are
  // dropped. The result's length is max(length() − from, other.length()), with `capacity`
  // columns; the columns a row is shifted past hold zeros (the caller's attention mask hides
  // them). Either cache may have no rows (default-constructed).
  // With shared prefixes (both caches, the same group size) the two parts are aligned
  // separately: the prompts' prefixes right-aligned at max(prefix_length() − from, other's)
  // columns (`from` counts prefix columns), the rows' own columns right-aligned at the longer
  // of the two, so a row's padding can sit between its prompt and its own tokens; this cache's
  // own columns before `own_from` must be padding in every row and are dropped. The other
  // cache's prompts follow this cache's in the prefix and its rows take the slots after them.
  KVCache merged_with(int64_t from, const KVCache& other, int64_t capacity, int64_t own_from = 0) const;

  // Grows the buffers to hold at least `capacity` columns (the shared prefix included), keeping
  // the cached ones; nothing when they already do. The rollout engine grows its cache a block at
  // a time instead of reserving every row's whole token budget up front.
  void reserve(int64_t capacity);

  // Bytes held by the buffers.
  int64_t nbytes() const;

 private:
  std::vector<torch::Tensor> keys_, values_;
  int64_t length_ = 0;  // own columns written (after the shared prefix, if any)
  // Shared prefix (share_prompts): one row per prompt still running.
  std::vector<torch::Tensor> prefix_keys_, prefix_values_;
  int64_t prefix_length_ = 0;
  int64_t group_size_ = 0;
  std::vector<int64_t> slot_host_;  // row -> slot; empty: the identity
  torch::Tensor slots_;             // slot_host_ on the cache's device
};

}  // namespace selfrl::model
