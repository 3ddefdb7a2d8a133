// Per-token log-probabilities, entropy and self-certainty from final hidden states, computed in
// chunks of rows so that [batch, seq, vocab] float32 logits never exist at once — neither in
// forward nor in backward (a custom autograd function recomputes each chunk's logits in
// backward instead of saving them).
//
// With s = (h · Wᵀ) / temperature and p = softmax(s) over the vocabulary V:
//   logprob_t        = log p[target_t]
//   entropy_t        = −Σⱼ pⱼ log pⱼ
//   self_certainty_t = KL(U ‖ p) = −log V − (1/V) Σⱼ log pⱼ
//     (Kang et al. 2025, "Scalable Best-of-N Selection for LLMs via Self-Certainty"; Intuitor)
// Logits are computed in the weight's dtype (as HF's lm_head) and converted to float32 before
// the softmax, like TRL's selective_log_softmax path. Autocast does not apply to them: under
// bf16 autocast with float32 weights the hidden states are upcast and the logits stay float32.
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace selfrl::model {

struct TokenStats {
  torch::Tensor logprobs;        // [batch, seq] float32
  torch::Tensor entropy;         // [batch, seq] float32
  torch::Tensor self_certainty;  // [batch, seq] float32
};

// hidden [batch, seq, hidden] (or [rows, hidden]), lm_head_weight [vocab, hidden],
// targets [batch, seq] int64. Gradients flow to hidden and lm_head_weight through all three
// outputs. chunk_size counts rows (batch × seq positions) per chunk.
TokenStats token_logprobs(const torch::Tensor& hidden, const torch::Tensor& lm_head_weight,
                          const torch::Tensor& targets, double temperature = 1.0, int64_t chunk_size = 1024);

// The same quantities computed the plain way (full logits, autograd through log_softmax).
// For tests and benchmarks only: it materializes [rows, vocab] float32.
TokenStats token_logprobs_naive(const torch::Tensor& hidden, const torch::Tensor& lm_head_weight,
                                const torch::Tensor& targets, double temperature = 1.0);

}  // namespace selfrl::model
