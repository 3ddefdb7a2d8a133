// Token selection for one decode step of a batch: temperature-scaled logits → filtered
// (top-k, top-p, min-p as transformers' TopK/TopP/MinP warpers) → one token per row by
// inverse-CDF sampling with a caller-supplied uniform per row. Taking the uniforms from the
// caller lets every row draw from its own random stream, so a request's tokens do not depend
// on which other requests share its batch.
#pragma once

#include <vector>

#include <torch/types.h>

#include "selfrl/generation/sampling_params.h"

namespace selfrl::generation {

// scaled_logits [rows, vocab] float32 (already divided by the temperature). Returns the logits
// with filtered-out entries set to −inf (same shape).
torch::Tensor filter_logits(const torch::Tensor& scaled_logits, const SamplingParams& params);

// Samples one token per row from softmax(filtered_logits); uniforms in (0, 1], one per row.
torch::Tensor sample_tokens(const torch::Tensor& scaled_logits, const SamplingParams& params,
                            const std::vector<double>& uniforms);

}  // namespace selfrl::generation
