// The two matrix products of attention for a few query rows against a long key/value cache,
// on the CPU in float32: what a decode step does.
//
// At decode time each (row, kv head) pair multiplies n_rep query rows by a [L, head_dim] slice of
// the cache. torch::matmul turns that into a batched GEMM of tiny matrices (one per pair: 512 at
// batch 64 with 8 heads), and when the cache is a view into a larger buffer it first copies the
// keys and values into contiguous ones. Both passes here read each key and each value row once,
// straight from the cache buffer, and compute the dot products / weighted sums with vector
// instructions (an AVX2 clone chosen at run time where the CPU has it), reading ahead across
// pairs by hand. At the 34 M rollout model's batch-64 shape the two products of 8 layers run
// 2.4-3.5x faster than torch::matmul, about as fast as ATen's own sum reads the same keys and
// values, and batch-64 decode is 1.58x faster (docs/benchmarks.md, "Decode attention without
// batched GEMMs"). Single-threaded: at::parallel_for's OpenMP loop is compiled into the caller,
// and the library is not built with OpenMP.
//
// The softmax between the two passes stays the caller's (transformers' eager attention: scores +
// mask, softmax in float32), so only the order of the additions inside each dot product differs
// from the matmul path: results agree to float32 rounding (tested against torch::matmul).
#pragma once

#include <cstdint>
#include <string>

#include <torch/types.h>

namespace selfrl::model {

// Whether the passes below serve these tensors: all on the CPU, float32, last dimension
// contiguous, no gradient needed (inference), at most `max_rows` query rows per pair (decode:
// n_rep rows, or G * n_rep against a shared prompt; a prefill's many rows are a real GEMM, faster
// through BLAS), and the kernels are on (see set_fused_decode_attention).
// q [B, kv, m, d], k / v [B, kv, L, d].
bool decode_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              int64_t max_rows = 64);

// q · kᵀ: q [B, kv, m, d], k [B, kv, L, d] -> [B, kv, m, L] float32 (unscaled).
torch::Tensor decode_attention_scores(const torch::Tensor& q, const torch::Tensor& k);

// probs · v: probs [B, kv, m, L] (last dimension contiguous; other strides free, e.g. a narrow()
// of a wider score matrix), v [B, kv, L, d] -> [B, kv, m, d] float32, contiguous.
torch::Tensor decode_attention_values(const torch::Tensor& probs, const torch::Tensor& v);

// On by default; SELFRL_FUSED_ATTENTION=0 in the environment turns the passes off (the matmul
// path everywhere), as does set_fused_decode_attention(false) (tests and benchmarks compare the two).
bool fused_decode_attention_enabled();
void set_fused_decode_attention(bool on);

// One line for `selfrl info`: "on, AVX2 loops" / "on, baseline vector loops" / "off
// (SELFRL_FUSED_ATTENTION=0 or set_fused_decode_attention(false)): torch::matmul".
std::string describe_decode_attention();

}  // namespace selfrl::model
