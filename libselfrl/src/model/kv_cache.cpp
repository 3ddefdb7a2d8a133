// Preallocated key/value cache (see kv_cache.h).
#include "selfrl/model/kv_cache.h"

#include "selfrl/core/error.h"

namespace selfrl::model {

KVCache::KVCache(int64_t num_layers, int64_t batch, int64_t num_kv_heads, int64_t capacity, int64_t head_dim,
                 torch::TensorOptions options) {
  SELFRL_CHECK(num_layers > 0 && batch > 0 && capacity > 0, "KVCache: layers (", num_layers, "), batch (", batch,
               ") and capacity (", capacity, ") must be positive");
  keys_.reserve(num_layers);
  values_.reserve(num_layers);
  for (int64_t i = 0; i < num_layers; ++i) {
    keys_.push_back(torch::empty({batch, num_kv_heads, capacity, head_dim}, options));
    values_.push_back(torch::empty({batch, num_kv_heads, capacity, head_dim}, options));
  }
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(int64_t layer, const torch::Tensor& k, const torch::Tensor& v) {
  const int64_t n = k.size(2);
  if (length_ + n > capacity()) {
    throw Error(detail::concat("KV cache is full: ", length_, " cached + ", n, " new tokens > capacity ", capacity()))
        .hint("allocate the cache with capacity >= prompt length + max_new_tokens");
  }
  SELFRL_CHECK(k.size(0) == batch(), "KV cache holds ", batch(), " rows, got keys for ", k.size(0));
  keys_[layer].narrow(2, length_, n).copy_(k);
  values_[layer].narrow(2, length_, n).copy_(v);
  return {keys_[layer].narrow(2, 0, length_ + n), values_[layer].narrow(2, 0, length_ + n)};
}

void KVCache::select_rows(const torch::Tensor& index) {
  // Only the valid prefix is copied; the rest of the capacity stays uninitialized.
  for (size_t i = 0; i < keys_.size(); ++i) {
    auto k = torch::empty({index.size(0), keys_[i].size(1), keys_[i].size(2), keys_[i].size(3)}, keys_[i].options());
    auto v = torch::empty_like(k);
    if (length_ > 0) {
      k.narrow(2, 0, length_).copy_(keys_[i].narrow(2, 0, length_).index_select(0, index));
      v.narrow(2, 0, length_).copy_(values_[i].narrow(2, 0, length_).index_select(0, index));
    }
    keys_[i] = k;
    values_[i] = v;
  }
}

void KVCache::repeat_interleave(int64_t times) {
  if (times == 1) return;
  auto index = torch::arange(batch(), torch::TensorOptions().dtype(torch::kLong).device(keys_[0].device()))
                   .repeat_interleave(times);
  select_rows(index);
}

int64_t KVCache::nbytes() const {
  int64_t total = 0;
  for (size_t i = 0; i < keys_.size(); ++i) total += keys_[i].nbytes() + values_[i].nbytes();
  return total;
}

}  // namespace selfrl::model
