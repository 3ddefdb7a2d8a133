// Chunked per-token logprobs / entropy / self-certainty with a memory-bounded backward
// (see token_logprobs.h for the formulas).
#include "selfrl/model/token_logprobs.h"

#include <cmath>

#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/autograd.h>

#include "selfrl/core/error.h"

namespace selfrl::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct ChunkStats {
  torch::Tensor logp;  // [rows, vocab] float32 log-softmax
  torch::Tensor entropy;
};

ChunkStats chunk_log_softmax(const torch::Tensor& h, const torch::Tensor& w, double temperature) {
  // Outside autocast, in the weight's dtype: under bf16 autocast (float32 master weights) the
  // logits are float32 in forward and in the backward recomputation alike — the log-prob ratios
  // of GRPO are sensitive to the ~3 significant digits of bfloat16 logits.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  auto logits = torch::matmul(h.to(w.scalar_type()), w.t()).to(torch::kFloat);
  if (temperature != 1.0) logits.div_(temperature);
  auto logp = torch::log_softmax(logits, -1);
  auto entropy = -(logp.exp() * logp).sum(-1);
  return {logp, entropy};
}

// Forward computes each chunk's stats without grad and keeps nothing of size vocab; backward
// recomputes the chunk's log-softmax and applies the closed-form gradients w.r.t. s = z / T:
//   d logprob / d s   = onehot(target) − p
//   d entropy / d s   = −p ⊙ (log p + H)
//   d selfcert / d s  = p − 1/V
struct ChunkedTokenStats : public torch::autograd::Function<ChunkedTokenStats> {
  static variable_list forward(AutogradContext* ctx, torch::Tensor hidden, torch::Tensor weight, torch::Tensor targets,
                               double temperature, int64_t chunk) {
    ctx->save_for_backward({hidden, weight, targets});
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["chunk"] = chunk;
    const int64_t rows = hidden.size(0), vocab = weight.size(0);
    auto fopts = hidden.options().dtype(torch::kFloat);
    auto lp = torch::empty({rows}, fopts), ent = torch::empty({rows}, fopts), sc = torch::empty({rows}, fopts);
    const double log_v = std::log(static_cast<double>(vocab));
    for (int64_t s = 0; s < rows; s += chunk) {
      const int64_t n = std::min(chunk, rows - s);
      auto c = chunk_log_softmax(hidden.narrow(0, s, n), weight, temperature);
      lp.narrow(0, s, n).copy_(c.logp.gather(1, targets.narrow(0, s, n).unsqueeze(1)).squeeze(1));
      ent.narrow(0, s, n).copy_(c.entropy);
      sc.narrow(0, s, n).copy_(-c.logp.mean(-1) - log_v);
    }
    return {lp, ent, sc};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& hidden = saved[0];
    const auto& weight = saved[1];
    const auto& targets = saved[2];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const int64_t rows = hidden.size(0), vocab = weight.size(0);
    auto w32 = weight.to(torch::kFloat);
    auto grad_h = torch::zeros(hidden.sizes(), hidden.options().dtype(torch::kFloat));
    auto grad_w = torch::zeros(weight.sizes(), weight.options().dtype(torch::kFloat));
    for (int64_t s = 0; s < rows; s += chunk) {
      const int64_t n = std::min(chunk, rows - s);
      auto h = hidden.narrow(0, s, n);
      torch::Tensor grad_s;
      {
        torch::NoGradGuard no_grad;
        auto c = chunk_log_softmax(h, weight, temperature);
        auto p = c.logp.exp();
        grad_s = torch::zeros_like(p);
        if (grads[0].defined()) {
          auto g = grads[0].narrow(0, s, n).unsqueeze(1);
          grad_s.sub_(p * g);
          grad_s.scatter_add_(1, targets.narrow(0, s, n).unsqueeze(1), g.contiguous());
        }
        if (grads[1].defined()) {
          grad_s.sub_(p * (c.logp + c.entropy.unsqueeze(1)) * grads[1].narrow(0, s, n).unsqueeze(1));
        }
        if (grads[2].defined()) {
          grad_s.add_((p - 1.0 / static_cast<double>(vocab)) * grads[2].narrow(0, s, n).unsqueeze(1));
        }
        if (temperature != 1.0) grad_s.div_(temperature);
        grad_h.narrow(0, s, n).copy_(torch::matmul(grad_s, w32));
        grad_w.add_(torch::matmul(grad_s.t(), h.to(torch::kFloat)));
      }
    }
    return {grad_h.to(hidden.scalar_type()), grad_w.to(weight.scalar_type()), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

void check_args(const torch::Tensor& hidden, const torch::Tensor& w, const torch::Tensor& targets, double temperature) {
  SELFRL_CHECK(w.dim() == 2 && hidden.size(-1) == w.size(1), "token_logprobs: hidden ", hidden.sizes(),
               " does not match lm_head weight ", w.sizes());
  SELFRL_CHECK(hidden.numel() / hidden.size(-1) == targets.numel(), "token_logprobs: ", targets.numel(),
               " targets for ", hidden.numel() / hidden.size(-1), " positions");
  SELFRL_CHECK(temperature > 0, "token_logprobs: temperature must be > 0, got ", temperature);
  if (targets.numel() > 0) {
    const int64_t lo = targets.min().item<int64_t>(), hi = targets.max().item<int64_t>();
    SELFRL_CHECK(lo >= 0 && hi < w.size(0), "token_logprobs: target id ", lo < 0 ? lo : hi,
                 " is outside the vocabulary [0, ", w.size(0), ")");
  }
}

}  // namespace

TokenStats token_logprobs(const torch::Tensor& hidden, const torch::Tensor& lm_head_weight,
                          const torch::Tensor& targets, double temperature, int64_t chunk_size) {
  check_args(hidden, lm_head_weight, targets, temperature);
  SELFRL_CHECK(chunk_size > 0, "token_logprobs: chunk_size must be > 0, got ", chunk_size);
  auto h2 = hidden.reshape({-1, hidden.size(-1)});
  auto t1 = targets.reshape({-1}).to(torch::kLong);
  auto out = ChunkedTokenStats::apply(h2, lm_head_weight, t1, temperature, chunk_size);
  return {out[0].view(targets.sizes()), out[1].view(targets.sizes()), out[2].view(targets.sizes())};
}

TokenStats token_logprobs_naive(const torch::Tensor& hidden, const torch::Tensor& lm_head_weight,
                                const torch::Tensor& targets, double temperature) {
  check_args(hidden, lm_head_weight, targets, temperature);
  auto logits = torch::matmul(hidden, lm_head_weight.t()).to(torch::kFloat) / temperature;
  auto logp = torch::log_softmax(logits, -1);
  auto lp = logp.gather(-1, targets.to(torch::kLong).unsqueeze(-1)).squeeze(-1);
  auto ent = -(logp.exp() * logp).sum(-1);
  auto sc = -logp.mean(-1) - std::log(static_cast<double>(lm_head_weight.size(0)));
  return {lp, ent, sc};
}

}  // namespace selfrl::model
