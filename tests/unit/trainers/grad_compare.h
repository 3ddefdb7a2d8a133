// Parameter gradients of a model, copied, and their relative L2 distance: shared by the tests
// that compare one training pass computed two ways (precisions, layouts, checkpointing).
#pragma once

#include <cmath>
#include <vector>

#include <torch/torch.h>

#include "selfrl/model/causal_lm.h"

namespace selfrl::test {

// A copy of every parameter's gradient (zeros where none was computed).
inline std::vector<torch::Tensor> grads_of(model::CausalLM& m) {
  std::vector<torch::Tensor> out;
  for (auto& p : m.parameters()) out.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  return out;
}

// ‖a − b‖ / ‖b‖ over all parameter gradients.
inline double relative_grad_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]).pow(2).sum().item<double>();
    den += b[i].pow(2).sum().item<double>();
  }
  return std::sqrt(num / den);
}

}  // namespace selfrl::test
