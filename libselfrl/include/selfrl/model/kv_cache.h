// KVCache: preallocated key/value buffers for incremental decoding.
//
// One buffer pair per layer, [batch, num_key_value_heads, capacity, head_dim], written in place
// as tokens arrive, so the decode loop allocates nothing per token. All rows share one length:
// batches are left-padded and the attention mask (kept by the caller, like HF's
// `attention_mask` of shape [batch, past + new]) hides the padding.
//
// The rollout engine prefills each prompt once, then `repeat_interleave`s the rows to the G
// samples, and `select_rows` drops finished sequences from the batch.
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
  int64_t capacity() const { return keys_.empty() ? 0 : keys_[0].size(2); }
  // Tokens cached so far (the same for every row).
  int64_t length() const { return length_; }
  bool defined() const { return !keys_.empty(); }

  // Writes new keys/values [batch, kv_heads, n, head_dim] of `layer` at positions
  // [length, length + n) and returns views of the whole valid prefix [0, length + n).
  // The length advances when `advance(n)` is called after the last layer.
  std::pair<torch::Tensor, torch::Tensor> append(int64_t layer, const torch::Tensor& k, const torch::Tensor& v);
  void advance(int64_t n) { length_ += n; }

  // Keeps only rows `index` (int64 on the cache's device), in that order; also used to
  // duplicate rows (prompt → its G samples) since an index may repeat.
  void select_rows(const torch::Tensor& index);
  // Every row repeated `times` times consecutively (row r → rows r*times .. r*times+times-1).
  void repeat_interleave(int64_t times);

  // Continuous batching: a cache holding this cache's rows, then `other`'s, right-aligned at a
  // common length. This cache's columns before `from` must be padding in every row: they are
  // dropped. The result's length is max(length() − from, other.length()), with `capacity`
  // columns; the columns a row is shifted past hold zeros (the caller's attention mask hides
  // them). Either cache may have no rows (default-constructed).
  KVCache merged_with(int64_t from, const KVCache& other, int64_t capacity) const;

  // Bytes held by the buffers.
  int64_t nbytes() const;

 private:
  std::vector<torch::Tensor> keys_, values_;
  int64_t length_ = 0;
};

}  // namespace selfrl::model
