// Decode-time attention products on the CPU (see decode_attention.h).
#include "selfrl/model/decode_attention.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include <ATen/Parallel.h>
#include <torch/torch.h>

namespace selfrl::model {
namespace {

// The vector helpers below are internal to this file, so GCC's note that passing 32-byte vectors
// by value differs between AVX and non-AVX builds does not concern any caller.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

// Eight floats; GCC and Clang lower it to one AVX register, two SSE ones, or two NEON ones.
typedef float Vec8 __attribute__((vector_size(32)));

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// An AVX2 build of the loop next to the baseline one, picked when the library loads. No "fma":
// a fused multiply-add rounds differently, and the same machine type should give the same
// numbers whichever clone runs.
#define SELFRL_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SELFRL_VECTOR_CLONES
#endif

inline Vec8 load8(const float* p) {
  Vec8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline float sum8(Vec8 v) { return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])); }

// A pair's keys (or values) are L contiguous rows, but the next pair's start one cache capacity
// further on: the hardware prefetcher runs past the end of each pair's rows into the unused
// capacity and starts late on the next one. Reading ahead by hand, `ahead` rows on and across
// into the next pair, took a prototype of these loops from ~12 to ~16-19 GB/s on the AMD EPYC
// development VM (capacity 128, 96 rows used); bench_decode_attention shows the passes now read
// as fast as ATen's sum of the same tensors, at every capacity.
struct Prefetch {
  const float* next = nullptr;  // the next pair's first row, or null
  int64_t ahead = 0;            // rows
  void row(const float* base, int64_t row_stride, int64_t L, int64_t j, int64_t d) const {
    const int64_t t = j + ahead;
    // Past the next pair's rows only when a pair has fewer rows than `ahead`; a prefetch never
    // faults. (Bounding it by the next pair's rows measured 30-45 % slower passes, though the
    // bound never bites at 96 rows: left out.)
    const float* p = t < L ? base + t * row_stride : (next != nullptr ? next + (t - L) * row_stride : nullptr);
    if (p == nullptr) return;
    for (int64_t i = 0; i < d; i += 16) __builtin_prefetch(p + i, 0, 3);  // every 64-byte line of the row
  }
};

// About 8 KiB ahead.
int64_t rows_ahead(int64_t d) { return std::max<int64_t>(4, 8192 / (4 * std::max<int64_t>(1, d))); }

// s[r * L + j] = q_r · k_j for one (row, kv head) pair. Each key row is read once and meets all
// m query rows while it is in cache.
SELFRL_VECTOR_CLONES
void scores_of_pair(const float* q, int64_t q_row_stride, int64_t m, int64_t d, const float* k, int64_t k_row_stride,
                    int64_t L, float* s, Prefetch pf) {
  for (int64_t j = 0; j < L; ++j) {
    pf.row(k, k_row_stride, L, j, d);
    const float* kj = k + j * k_row_stride;
    for (int64_t r = 0; r < m; ++r) {
      const float* qr = q + r * q_row_stride;
      Vec8 a0 = {0, 0, 0, 0, 0, 0, 0, 0}, a1 = a0;
      int64_t i = 0;
      for (; i + 16 <= d; i += 16) {
        a0 += load8(qr + i) * load8(kj + i);
        a1 += load8(qr + i + 8) * load8(kj + i + 8);
      }
      for (; i + 8 <= d; i += 8) a0 += load8(qr + i) * load8(kj + i);
      float t = sum8(a0 + a1);
      for (; i < d; ++i) t += qr[i] * kj[i];
      s[r * L + j] = t;
    }
  }
}

// out_r = sum_j p[r, j] v_j for one pair; each value row is read once.
SELFRL_VECTOR_CLONES
void values_of_pair(const float* p, int64_t p_row_stride, int64_t m, int64_t L, const float* v, int64_t v_row_stride,
                    int64_t d, float* out, Prefetch pf) {
  std::memset(out, 0, sizeof(float) * m * d);
  for (int64_t j = 0; j < L; ++j) {
    pf.row(v, v_row_stride, L, j, d);
    const float* vj = v + j * v_row_stride;
    for (int64_t r = 0; r < m; ++r) {
      const float a = p[r * p_row_stride + j];
      float* o = out + r * d;
      const Vec8 av = {a, a, a, a, a, a, a, a};
      int64_t i = 0;
      for (; i + 8 <= d; i += 8) {
        Vec8 x = load8(o + i) + av * load8(vj + i);
        std::memcpy(o + i, &x, sizeof x);
      }
      for (; i < d; ++i) o[i] += a * vj[i];
    }
  }
}

std::atomic<int>& enabled_flag() {
  static std::atomic<int> flag{[] {
    const char* env = std::getenv("SELFRL_FUSED_ATTENTION");
    return (env != nullptr && std::strcmp(env, "0") == 0) ? 0 : 1;
  }()};
  return flag;
}

bool is_cpu_float(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.dim() == 4 && t.stride(3) == 1 &&
         !t.requires_grad();
}

// Where pair `pair` (= b * H + h) of a [B, H, ...] tensor starts.
const float* pair_start(const float* data, const torch::Tensor& t, int64_t pair, int64_t H) {
  return data + pair / H * t.stride(0) + pair % H * t.stride(1);
}

// Calls fn(pair, prefetch) for every (row, head) pair of `cache` ([B, H, L, d]), the prefetch
// reading ahead into the next pair's rows. Every pair is at least `work_per_pair` multiply-adds;
// a few pairs per task keep the scheduling cost small.
template <typename Fn>
void for_each_pair(const torch::Tensor& cache, const float* data, int64_t work_per_pair, const Fn& fn) {
  const int64_t H = cache.size(1), pairs = cache.size(0) * H, d = cache.size(3);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, work_per_pair));
  at::parallel_for(0, pairs, grain, [&](int64_t begin, int64_t end) {
    for (int64_t pair = begin; pair < end; ++pair)
      fn(pair, Prefetch{pair + 1 < pairs ? pair_start(data, cache, pair + 1, H) : nullptr, rows_ahead(d)});
  });
}

}  // namespace

bool fused_decode_attention_enabled() { return enabled_flag().load() != 0; }
void set_fused_decode_attention(bool on) { enabled_flag().store(on ? 1 : 0); }

std::string describe_decode_attention() {
  if (!fused_decode_attention_enabled())
    return "off (SELFRL_FUSED_ATTENTION=0 or set_fused_decode_attention(false)): torch::matmul";
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  if (__builtin_cpu_supports("avx2")) return "on, AVX2 loops";
#endif
  return "on, baseline vector loops";
}

bool decode_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              int64_t max_rows) {
  return fused_decode_attention_enabled() && is_cpu_float(q) && is_cpu_float(k) && is_cpu_float(v) &&
         q.size(2) <= max_rows && q.size(0) == k.size(0) && q.size(1) == k.size(1) && q.size(3) == k.size(3) &&
         k.sizes() == v.sizes();
}

torch::Tensor decode_attention_scores(const torch::Tensor& q, const torch::Tensor& k) {
  TORCH_CHECK(
      is_cpu_float(q) && is_cpu_float(k) && q.size(0) == k.size(0) && q.size(1) == k.size(1) && q.size(3) == k.size(3),
      "decode_attention_scores: q ", q.sizes(), " and k ", k.sizes(),
      " must be float32 CPU [B, kv, *, d] with a contiguous last dimension");
  const int64_t H = q.size(1), m = q.size(2), d = q.size(3), L = k.size(2);
  auto s = torch::empty({q.size(0), H, m, L}, q.options());
  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  float* sp = s.data_ptr<float>();
  for_each_pair(k, kp, m * L * d, [&](int64_t pair, const Prefetch& pf) {
    scores_of_pair(pair_start(qp, q, pair, H), q.stride(2), m, d, pair_start(kp, k, pair, H), k.stride(2), L,
                   sp + pair * m * L, pf);
  });
  return s;
}

torch::Tensor decode_attention_values(const torch::Tensor& probs, const torch::Tensor& v) {
  TORCH_CHECK(is_cpu_float(probs) && is_cpu_float(v) && probs.size(0) == v.size(0) && probs.size(1) == v.size(1) &&
                  probs.size(3) == v.size(2),
              "decode_attention_values: probs ", probs.sizes(), " and v ", v.sizes(),
              " must be float32 CPU [B, kv, m, L] and [B, kv, L, d] with contiguous last dimensions");
  const int64_t H = probs.size(1), m = probs.size(2), L = probs.size(3), d = v.size(3);
  auto out = torch::empty({probs.size(0), H, m, d}, v.options());
  const float* pp = probs.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  float* op = out.data_ptr<float>();
  for_each_pair(v, vp, m * L * d, [&](int64_t pair, const Prefetch& pf) {
    values_of_pair(pair_start(pp, probs, pair, H), probs.stride(2), m, L, pair_start(vp, v, pair, H), v.stride(2), d,
                   op + pair * m * d, pf);
  });
  return out;
}

}  // namespace selfrl::model
