// Mixed precision (recipe `bf16: true`, as HF TrainingArguments): the trainers run their forward
// passes (policy, reference, the log-probs of the loss) under autocast to bfloat16 on the
// model's device type — CUDA autocast on CUDA, CPU autocast on CPU; the same code either way.
// Master weights, gradients and optimizer state stay float32, and so does the log-prob and loss
// math (token_logprobs computes the lm_head outside autocast, in the weight dtype). Rollout
// generation is not autocast. docs/model.md lists what runs in which dtype.
#pragma once

#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace selfrl {

bool autocast_enabled(c10::DeviceType device);
c10::ScalarType autocast_dtype(c10::DeviceType device);

// Sets autocast for `device` to (enabled, dtype) for its scope and restores the previous state
// on exit, exceptions included; leaving the outermost enabled scope clears autocast's cache of
// cast weights (they go stale at the next optimizer step). Devices: cpu, cuda.
class AutocastGuard {
 public:
  AutocastGuard(c10::DeviceType device, bool enabled, c10::ScalarType dtype = c10::kBFloat16);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_;
  bool prev_enabled_;
  c10::ScalarType prev_dtype_;
  bool nested_ = false;
};

}  // namespace selfrl
