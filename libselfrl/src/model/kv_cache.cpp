// Preallocated key/value cache (see kv_cache.h).
#include "selfrl/model/kv_cache.h"

#include <algorithm>
#include <vector>

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
  if (length_ + n > keys_[static_cast<size_t>(layer)].size(2)) {
    throw Error(detail::concat("KV cache is full: ", length(), " cached + ", n, " new tokens > capacity ", capacity()))
        .hint("allocate the cache with capacity >= prompt length + max_new_tokens");
  }
  SELFRL_CHECK(k.size(0) == batch(), "KV cache holds ", batch(), " rows, got keys for ", k.size(0));
  keys_[layer].narrow(2, length_, n).copy_(k);
  values_[layer].narrow(2, length_, n).copy_(v);
  return {keys_[layer].narrow(2, 0, length_ + n), values_[layer].narrow(2, 0, length_ + n)};
}

void KVCache::select_rows(const torch::Tensor& index) {
  if (has_shared_prefix()) {
    // Each kept row takes its slot along; prompts left without rows leave the prefix, so that
    // attention does not read their keys any more, and the slots are renumbered.
    auto idx = index.to(torch::kCPU).contiguous();
    const int64_t* ix = idx.data_ptr<int64_t>();
    std::vector<int64_t> slots(static_cast<size_t>(idx.size(0)));
    for (size_t r = 0; r < slots.size(); ++r) {
      SELFRL_CHECK(ix[r] >= 0 && ix[r] < batch(), "KVCache::select_rows: row ", ix[r], " outside [0, ", batch(), ")");
      slots[r] = slot_host_.empty() ? ix[r] : slot_host_[static_cast<size_t>(ix[r])];
      SELFRL_CHECK(r == 0 || slots[r] > slots[r - 1],
                   "KVCache::select_rows: rows sharing a prompt prefix must be kept in order, without repeats");
    }
    std::vector<int64_t> groups;  // prompts that keep a row, in order
    for (int64_t s : slots)
      if (groups.empty() || groups.back() != s / group_size_) groups.push_back(s / group_size_);
    const int64_t prompts = prefix_keys_.empty() ? 0 : prefix_keys_[0].size(0);
    if (static_cast<int64_t>(groups.size()) < prompts && !groups.empty()) {
      auto gidx = torch::tensor(groups, torch::TensorOptions().dtype(torch::kLong)).to(prefix_keys_[0].device());
      for (size_t i = 0; i < prefix_keys_.size(); ++i) {
        prefix_keys_[i] = prefix_keys_[i].index_select(0, gidx);
        prefix_values_[i] = prefix_values_[i].index_select(0, gidx);
      }
      for (int64_t& s : slots) {
        const int64_t g = std::lower_bound(groups.begin(), groups.end(), s / group_size_) - groups.begin();
        s = g * group_size_ + s % group_size_;
      }
    }
    bool identity = static_cast<int64_t>(slots.size()) == static_cast<int64_t>(groups.size()) * group_size_;
    for (size_t r = 0; identity && r < slots.size(); ++r) identity = slots[r] == static_cast<int64_t>(r);
    slot_host_ = identity ? std::vector<int64_t>() : slots;
    slots_ = identity ? torch::Tensor()
                      : torch::tensor(slot_host_, torch::TensorOptions().dtype(torch::kLong)).to(keys_[0].device());
  }
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
  SELFRL_CHECK(!has_shared_prefix(), "KVCache::repeat_interleave: the rows already share a prompt prefix");
  auto index = torch::arange(batch(), torch::TensorOptions().dtype(torch::kLong).device(keys_[0].device()))
                   .repeat_interleave(times);
  select_rows(index);
}

KVCache KVCache::merged_with(int64_t from, const KVCache& other, int64_t capacity, int64_t own_from) const {
  const KVCache* any = defined() ? this : &other;
  SELFRL_CHECK(any->defined(), "KVCache::merged_with: both caches are empty");
  SELFRL_CHECK(!defined() || !other.defined() || num_layers() == other.num_layers(),
               "KVCache::merged_with: ", num_layers(), " layers vs ", other.num_layers());
  const bool shared = any->has_shared_prefix();
  SELFRL_CHECK(!defined() || !other.defined() || other.has_shared_prefix() == shared,
               "KVCache::merged_with: one cache has a shared prompt prefix and the other not");
  SELFRL_CHECK(!shared || !defined() || !other.defined() || group_size_ == other.group_size_,
               "KVCache::merged_with: shared prefixes of group size ", group_size_, " and ", other.group_size_);
  // The "head" of a cache is where `from` applies and that is right-aligned: the shared prefix
  // when there is one, else all columns. Its "tail" is a shared-prefix cache's own columns.
  auto head_of = [&](const KVCache& c) { return shared ? c.prefix_length_ : c.length_; };
  auto tail_of = [&](const KVCache& c) { return shared ? c.length_ : int64_t{0}; };
  SELFRL_CHECK(!defined() || (from >= 0 && from <= head_of(*this)), "KVCache::merged_with: from ", from,
               " outside [0, ", defined() ? head_of(*this) : 0, "]");
  SELFRL_CHECK(own_from == 0 || (shared && defined() && own_from > 0 && own_from <= length_),
               "KVCache::merged_with: own_from ", own_from, " outside [0, ", shared && defined() ? length_ : 0, "]");
  const int64_t mine = defined() ? head_of(*this) - from : 0;
  const int64_t theirs = other.defined() ? head_of(other) : 0;
  const int64_t head = std::max(mine, theirs);
  const int64_t my_tail = defined() ? tail_of(*this) - own_from : 0;
  const int64_t tail = std::max(my_tail, other.defined() ? tail_of(other) : 0);
  SELFRL_CHECK(!shared || head > 0, "KVCache::merged_with: the merged shared prefix would be empty");
  SELFRL_CHECK(capacity >= head + tail, "KVCache::merged_with: capacity ", capacity, " < merged length ", head + tail);
  const int64_t rows = batch() + other.batch();

  // Right-aligns rows [r0, r0 + n) of `dst` (columns [0, width)): `src`'s columns
  // [src_from, src_from + len) go to [width − len, width), zeros before.
  auto place = [](torch::Tensor& dst, int64_t r0, int64_t n, int64_t width, const torch::Tensor& src, int64_t src_from,
                  int64_t len) {
    if (n == 0) return;
    auto d = dst.narrow(0, r0, n);
    d.narrow(2, 0, width - len).zero_();
    if (len > 0) d.narrow(2, width - len, len).copy_(src.narrow(2, src_from, len));
  };
  KVCache out;
  for (int64_t l = 0; l < any->num_layers(); ++l) {
    const auto li = static_cast<size_t>(l);
    const auto& ref = any->keys_[li];
    if (!shared) {
      const std::vector<int64_t> shape = {rows, ref.size(1), capacity, ref.size(3)};
      auto k = torch::empty(shape, ref.options()), v = torch::empty(shape, ref.options());
      if (defined()) {
        place(k, 0, batch(), head, keys_[li], from, mine);
        place(v, 0, batch(), head, values_[li], from, mine);
      }
      if (other.defined()) {
        place(k, batch(), other.batch(), head, other.keys_[li], 0, theirs);
        place(v, batch(), other.batch(), head, other.values_[li], 0, theirs);
      }
      out.keys_.push_back(k);
      out.values_.push_back(v);
      continue;
    }
    // Shared prefix: the prompts' prefixes (one row per prompt) right-aligned at `head`
    // columns, the rows' own columns right-aligned at `tail` columns.
    const int64_t my_prompts = defined() ? prefix_keys_[li].size(0) : 0;
    const int64_t their_prompts = other.defined() ? other.prefix_keys_[li].size(0) : 0;
    const std::vector<int64_t> pshape = {my_prompts + their_prompts, ref.size(1), head, ref.size(3)};
    auto pk = torch::empty(pshape, ref.options()), pv = torch::empty(pshape, ref.options());
    const std::vector<int64_t> shape = {rows, ref.size(1), capacity - head, ref.size(3)};
    auto k = torch::empty(shape, ref.options()), v = torch::empty(shape, ref.options());
    if (defined()) {
      place(pk, 0, my_prompts, head, prefix_keys_[li], from, mine);
      place(pv, 0, my_prompts, head, prefix_values_[li], from, mine);
      place(k, 0, batch(), tail, keys_[li], own_from, my_tail);
      place(v, 0, batch(), tail, values_[li], own_from, my_tail);
    }
    if (other.defined()) {
      place(pk, my_prompts, their_prompts, head, other.prefix_keys_[li], 0, theirs);
      place(pv, my_prompts, their_prompts, head, other.prefix_values_[li], 0, theirs);
      place(k, batch(), other.batch(), tail, other.keys_[li], 0, other.length_);
      place(v, batch(), other.batch(), tail, other.values_[li], 0, other.length_);
    }
    out.prefix_keys_.push_back(pk);
    out.prefix_values_.push_back(pv);
    out.keys_.push_back(k);
    out.values_.push_back(v);
  }
  if (!shared) {
    out.length_ = head;
    return out;
  }
  out.prefix_length_ = head;
  out.length_ = tail;
  out.group_size_ = any->group_size_;
  // Row -> slot: this cache's slots, then the other's after this cache's prompts.
  const int64_t G = out.group_size_;
  const int64_t my_prompts = defined() ? prefix_keys_[0].size(0) : 0;
  std::vector<int64_t> slots;
  slots.reserve(static_cast<size_t>(rows));
  auto add = [&](const KVCache& c, int64_t offset) {
    for (int64_t r = 0; r < c.batch(); ++r)
      slots.push_back(offset + (c.slot_host_.empty() ? r : c.slot_host_[static_cast<size_t>(r)]));
  };
  if (defined()) add(*this, 0);
  if (other.defined()) add(other, my_prompts * G);
  const int64_t prompts = out.prefix_keys_[0].size(0);
  bool identity = static_cast<int64_t>(slots.size()) == prompts * G;
  for (size_t r = 0; identity && r < slots.size(); ++r) identity = slots[r] == static_cast<int64_t>(r);
  if (!identity) {
    out.slot_host_ = std::move(slots);
    out.slots_ = torch::tensor(out.slot_host_, torch::TensorOptions().dtype(torch::kLong)).to(any->keys_[0].device());
  }
  return out;
}

void KVCache::reserve(int64_t capacity) {
  SELFRL_CHECK(defined(), "KVCache::reserve: the cache has no buffers");
  if (capacity <= this->capacity()) return;
  const int64_t own = capacity - prefix_length_;
  for (size_t i = 0; i < keys_.size(); ++i) {
    const auto& k = keys_[i];
    auto nk = torch::empty({k.size(0), k.size(1), own, k.size(3)}, k.options());
    auto nv = torch::empty_like(nk);
    if (length_ > 0) {
      nk.narrow(2, 0, length_).copy_(k.narrow(2, 0, length_));
      nv.narrow(2, 0, length_).copy_(values_[i].narrow(2, 0, length_));
    }
    keys_[i] = nk;
    values_[i] = nv;
  }
}

int64_t KVCache::nbytes() const {
  int64_t total = 0;
  for (size_t i = 0; i < keys_.size(); ++i) total += keys_[i].nbytes() + values_[i].nbytes();
  for (size_t i = 0; i < prefix_keys_.size(); ++i) total += prefix_keys_[i].nbytes() + prefix_values_[i].nbytes();
  return total;
}

void KVCache::share_prompts(int64_t group_size, int64_t capacity) {
  SELFRL_CHECK(defined() && !has_shared_prefix(), "KVCache::share_prompts: needs a cache of prompt rows");
  SELFRL_CHECK(group_size > 0 && capacity > 0, "KVCache::share_prompts: group size (", group_size, ") and capacity (",
               capacity, ") must be positive");
  SELFRL_CHECK(length_ > 0, "KVCache::share_prompts: the prompts are not cached yet");
  const int64_t rows = batch() * group_size;
  for (size_t i = 0; i < keys_.size(); ++i) {
    prefix_keys_.push_back(keys_[i].narrow(2, 0, length_));
    prefix_values_.push_back(values_[i].narrow(2, 0, length_));
    const auto& k = keys_[i];
    keys_[i] = torch::empty({rows, k.size(1), capacity, k.size(3)}, k.options());
    values_[i] = torch::empty_like(keys_[i]);
  }
  prefix_length_ = length_;
  length_ = 0;
  group_size_ = group_size;
  slot_host_.clear();
  slots_ = torch::Tensor();
}

}  // namespace selfrl::model
