// BPE merging as Hugging Face tokenizers does it (tokenizers/src/models/bpe/word.rs): the
// symbols of a word form a linked list and candidate merges sit in a min-heap ordered by
// (rank, position); a popped merge is applied only if the pair it was built for is still there.
// O(n log n) in the word length, so a 10,000-character word is fine.
#include "tokenizer/bpe_model.h"

#include <cstdio>
#include <functional>
#include <queue>

#include "selfrl/core/error.h"
#include "tokenizer/unicode.h"

namespace selfrl::tokenizer::detail {
namespace {

struct Symbol {
  int id;
  int prev, next;
  size_t len;  // bytes covered; 0 once merged into its left neighbour
};

struct Candidate {
  int rank, pos, new_id;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

inline uint64_t pair_key(int a, int b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

}  // namespace

void BpeModel::index_bytes() {
  byte_ids.fill(-1);
  for (int b = 0; b < 256; ++b) {
    std::string key;
    if (byte_level) {
      key.assign(1, static_cast<char>(b));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
      key = buf;
    }
    auto it = vocab.find(key);
    if (it != vocab.end()) byte_ids[b] = it->second;
  }
}

void BpeModel::tokenize(std::string_view word, std::vector<int>* out) const {
  if (word.empty()) return;
  if (ignore_merges) {
    // Llama-3: a pre-token that is itself in the vocabulary is one token, merges or not.
    auto it = vocab.find(std::string(word));
    if (it != vocab.end()) {
      out->push_back(it->second);
      return;
    }
  }
  if (word.size() > kMaxCachedWordBytes) {
    merge_word(word, out);
    return;
  }
  auto& shard = cache_[std::hash<std::string_view>()(word) % kShards];
  std::string key(word);
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto it = shard.map.find(key);
    if (it != shard.map.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int> ids;
  merge_word(word, &ids);
  out->insert(out->end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(shard.mutex);
  if (shard.map.size() >= kMaxEntriesPerShard) shard.map.clear();
  shard.map.emplace(std::move(key), std::move(ids));
}

void BpeModel::merge_word(std::string_view word, std::vector<int>* out) const {
  std::vector<Symbol> syms;
  syms.reserve(word.size());
  auto push = [&](int id, size_t len) {
    const int n = static_cast<int>(syms.size());
    syms.push_back({id, n - 1, n + 1, len});
  };
  if (byte_level) {
    for (unsigned char b : word) {
      if (byte_ids[b] < 0) {
        SELFRL_CHECK(unk_id.has_value(), "byte 0x", std::hex, int(b),
                     " has no token in the byte-level vocabulary and the model has no unk_token");
        push(*unk_id, 1);
      } else {
        push(byte_ids[b], 1);
      }
    }
  } else {
    bool last_unk = false;
    std::string ch;
    for (size_t i = 0; i < word.size();) {
      const size_t len = utf8_length(static_cast<unsigned char>(word[i]));
      ch.assign(word.substr(i, len));
      auto it = vocab.find(ch);
      if (it != vocab.end()) {
        push(it->second, len);
        last_unk = false;
      } else {
        bool done = false;
        if (byte_fallback) {
          bool all = true;
          for (size_t k = 0; k < len; ++k) all = all && byte_ids[static_cast<unsigned char>(word[i + k])] >= 0;
          if (all) {
            for (size_t k = 0; k < len; ++k) push(byte_ids[static_cast<unsigned char>(word[i + k])], 1);
            done = true;
            last_unk = false;
          }
        }
        if (!done) {
          SELFRL_CHECK(unk_id.has_value(), "character '", ch,
                       "' is not in the vocabulary and the BPE model has no unk_token");
          if (fuse_unk && last_unk) {
            syms.back().len += len;
          } else {
            push(*unk_id, len);
          }
          last_unk = true;
        }
      }
      i += len;
    }
  }
  if (syms.empty()) return;
  syms.back().next = -1;

  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto consider = [&](int pos) {
    const int nxt = syms[pos].next;
    if (nxt < 0) return;
    auto it = merges.find(pair_key(syms[pos].id, syms[nxt].id));
    if (it != merges.end()) heap.push({it->second.first, pos, it->second.second});
  };
  for (int i = 0; i + 1 < static_cast<int>(syms.size()); ++i) consider(i);
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    Symbol& left = syms[top.pos];
    if (left.len == 0 || left.next < 0) continue;
    Symbol& right = syms[left.next];
    auto it = merges.find(pair_key(left.id, right.id));
    if (it == merges.end() || it->second.first != top.rank || it->second.second != top.new_id) continue;
    left.id = top.new_id;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (left.next >= 0) syms[left.next].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  for (int i = 0; i >= 0 && i < static_cast<int>(syms.size()); i = syms[i].next) out->push_back(syms[i].id);
}

}  // namespace selfrl::tokenizer::detail
