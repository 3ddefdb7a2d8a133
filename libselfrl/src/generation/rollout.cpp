// Rollouts packed into a flat array of doubles (see selfrl/generation/rollout.h).
#include "selfrl/generation/rollout.h"

#include <cmath>
#include <string>

#include "selfrl/core/error.h"

namespace selfrl::generation {
namespace {

// Layout: count, then per rollout: prompt_index, |prompt_ids|, prompt_ids, |completions|, then
// per completion: finish_reason (0 stop, 1 length), sample_index, and five length-prefixed
// arrays (token_ids, logprobs, raw_logprobs, entropy, self_certainty).
template <typename T>
void put(std::vector<double>& out, const std::vector<T>& v) {
  out.push_back(static_cast<double>(v.size()));
  for (const T& x : v) out.push_back(static_cast<double>(x));
}

class Reader {
 public:
  Reader(const double* data, size_t size) : data_(data), size_(size) {}
  double next() {
    if (pos_ >= size_) throw Error("packed rollouts end after " + std::to_string(size_) + " values, mid-record");
    return data_[pos_++];
  }
  int64_t count() {
    const double v = next();  // every element takes at least one more value
    if (!(v >= 0) || v != std::floor(v) || v > static_cast<double>(size_ - pos_))
      throw Error("packed rollouts: bad count " + std::to_string(v) + " at value " + std::to_string(pos_ - 1));
    return static_cast<int64_t>(v);
  }
  template <typename T>
  std::vector<T> array() {
    const int64_t n = count();
    std::vector<T> v(static_cast<size_t>(n));
    for (auto& x : v) x = static_cast<T>(data_[pos_++]);
    return v;
  }
  bool done() const { return pos_ == size_; }

 private:
  const double* data_;
  size_t size_, pos_ = 0;
};

}  // namespace

std::vector<double> pack_rollouts(const std::vector<Rollout>& rollouts) {
  std::vector<double> out;
  out.push_back(static_cast<double>(rollouts.size()));
  for (const auto& r : rollouts) {
    out.push_back(static_cast<double>(r.prompt_index));
    put(out, r.prompt_ids);
    out.push_back(static_cast<double>(r.completions.size()));
    for (const auto& c : r.completions) {
      out.push_back(c.finish_reason == FinishReason::kStop ? 0.0 : 1.0);
      out.push_back(static_cast<double>(c.sample_index));
      put(out, c.token_ids);
      put(out, c.logprobs);
      put(out, c.raw_logprobs);
      put(out, c.entropy);
      put(out, c.self_certainty);
    }
  }
  return out;
}

std::vector<Rollout> unpack_rollouts(const double* data, size_t size) {
  Reader in(data, size);
  std::vector<Rollout> out(static_cast<size_t>(in.count()));
  for (auto& r : out) {
    r.prompt_index = static_cast<int64_t>(in.next());
    r.prompt_ids = in.array<int64_t>();
    r.completions.resize(static_cast<size_t>(in.count()));
    for (auto& c : r.completions) {
      c.finish_reason = in.next() == 0.0 ? FinishReason::kStop : FinishReason::kLength;
      c.sample_index = static_cast<int64_t>(in.next());
      c.token_ids = in.array<int64_t>();
      c.logprobs = in.array<float>();
      c.raw_logprobs = in.array<float>();
      c.entropy = in.array<float>();
      c.self_certainty = in.array<float>();
    }
  }
  if (!in.done()) throw Error("packed rollouts: " + std::to_string(size) + " values, more than the records use");
  return out;
}

}  // namespace selfrl::generation
