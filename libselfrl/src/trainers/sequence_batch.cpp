// Training batches of prompt + completion (see selfrl/trainers/sequence_batch.h).
#include "selfrl/trainers/sequence_batch.h"

#include <torch/torch.h>

#include <optional>

#include "selfrl/core/autocast.h"
#include "selfrl/core/error.h"

namespace selfrl::trainers {

SequenceBatch pack_sequences(const std::vector<std::vector<int64_t>>& prompts,
                             const std::vector<std::vector<int64_t>>& completions, int64_t pad_id) {
  SELFRL_CHECK(prompts.size() == completions.size() && !prompts.empty(), "pack_sequences: ", prompts.size(),
               " prompts for ", completions.size(), " completions");
  const int64_t b = static_cast<int64_t>(prompts.size());
  int64_t p = 0, c = 1;
  for (size_t i = 0; i < prompts.size(); ++i) {
    SELFRL_CHECK(!prompts[i].empty(), "pack_sequences: prompt ", i, " is empty");
    p = std::max<int64_t>(p, static_cast<int64_t>(prompts[i].size()));
    c = std::max<int64_t>(c, static_cast<int64_t>(completions[i].size()));
  }
  SequenceBatch out;
  out.prompt_length = p;
  out.input_ids = torch::full({b, p + c}, pad_id, torch::kLong);
  out.attention_mask = torch::zeros({b, p + c}, torch::kLong);
  out.completion_ids = torch::full({b, c}, pad_id, torch::kLong);
  out.completion_mask = torch::zeros({b, c}, torch::kFloat);
  auto ids = out.input_ids.accessor<int64_t, 2>();
  auto am = out.attention_mask.accessor<int64_t, 2>();
  auto cids = out.completion_ids.accessor<int64_t, 2>();
  auto cm = out.completion_mask.accessor<float, 2>();
  for (int64_t i = 0; i < b; ++i) {
    const auto& pr = prompts[i];
    const int64_t off = p - static_cast<int64_t>(pr.size());
    for (size_t t = 0; t < pr.size(); ++t) {
      ids[i][off + static_cast<int64_t>(t)] = pr[t];
      am[i][off + static_cast<int64_t>(t)] = 1;
    }
    const auto& co = completions[i];
    for (size_t t = 0; t < co.size(); ++t) {
      ids[i][p + static_cast<int64_t>(t)] = co[t];
      am[i][p + static_cast<int64_t>(t)] = 1;
      cids[i][static_cast<int64_t>(t)] = co[t];
      cm[i][static_cast<int64_t>(t)] = 1.0f;
    }
  }
  return out;
}

SequenceBatch slice_rows(const SequenceBatch& batch, int64_t begin, int64_t end) {
  SequenceBatch s;
  s.prompt_length = batch.prompt_length;
  s.input_ids = batch.input_ids.slice(0, begin, end);
  s.attention_mask = batch.attention_mask.slice(0, begin, end);
  s.completion_ids = batch.completion_ids.slice(0, begin, end);
  s.completion_mask = batch.completion_mask.slice(0, begin, end);
  return s;
}

model::TokenStats completion_token_stats(model::CausalLM& model, const SequenceBatch& batch, double temperature,
                                         bool activation_checkpointing, int64_t chunk_size, bool bf16) {
  const auto dev = model.device();
  std::optional<AutocastGuard> autocast;
  if (bf16) autocast.emplace(dev.type(), true, torch::kBFloat16);
  model::ForwardOptions fo;
  fo.attention_mask = batch.attention_mask.to(dev);
  fo.activation_checkpointing = activation_checkpointing;
  const auto hidden = model.forward(batch.input_ids.to(dev), fo);
  const int64_t p = batch.prompt_length, c = batch.completion_ids.size(1);
  // Position t predicts token t + 1: completion token j is predicted at column p − 1 + j.
  const auto h = hidden.slice(1, p - 1, p - 1 + c);
  return model::token_logprobs(h, model.lm_head_weight(), batch.completion_ids.to(dev),
                               temperature > 0 ? temperature : 1.0, chunk_size);
}

std::shared_ptr<model::CausalLM> clone_model(const model::CausalLM& src) {
  auto copy = std::make_shared<model::CausalLM>(src.config(), /*init_weights=*/false);
  copy->to(src.device(), src.dtype());
  torch::NoGradGuard no_grad;
  const auto from = src.named_parameters();
  for (auto& p : copy->named_parameters()) {
    p.value().copy_(from[p.key()]);
    p.value().set_requires_grad(false);
  }
  copy->eval();
  return copy;
}

}  // namespace selfrl::trainers
