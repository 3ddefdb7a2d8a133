// The BPE model of a tokenizer.json: vocabulary, ranked merges, and the merge loop applied to
// one pre-token. Byte-level vocabularies are stored as raw bytes (the GPT-2 alphabet decoded
// at load time), so a pre-token is merged from its bytes without building the mapped string.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace selfrl::tokenizer::detail {

class BpeModel {
 public:
  std::unordered_map<std::string, int> vocab;  // raw bytes when byte_level
  std::vector<std::string> pieces;             // id -> vocab key ("" for ids not in vocab)
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<int, int>> merges;
  bool byte_level = false, byte_fallback = false, fuse_unk = false, ignore_merges = false;
  std::optional<int> unk_id;
  std::array<int, 256> byte_ids{};  // byte_level: id of each byte; byte_fallback: <0xNN>; -1 absent

  // Appends the ids of one pre-token. Results of short pre-tokens are cached.
  void tokenize(std::string_view word, std::vector<int>* out) const;
  // Builds byte_ids after vocab is filled.
  void index_bytes();

 private:
  void merge_word(std::string_view word, std::vector<int>* out) const;
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxCachedWordBytes = 64;
  static constexpr size_t kMaxEntriesPerShard = 1 << 15;
  struct CacheShard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int>> map;
  };
  mutable std::array<CacheShard, kShards> cache_;
};

}  // namespace selfrl::tokenizer::detail
