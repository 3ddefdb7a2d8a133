// Training batches of prompt + completion (see selfrl/trainers/sequence_batch.h).
#include "selfrl/trainers/sequence_batch.h"

#include <torch/torch.h>

#include <algorithm>
#include <optional>
#include <vector>

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

PackedRows pack_padding_free(const SequenceBatch& batch) {
  const auto am = batch.attention_mask.to(torch::kCPU, torch::kLong).contiguous();
  const auto ids = batch.input_ids.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t B = am.size(0), W = am.size(1), P = batch.prompt_length, C = W - P;
  SELFRL_CHECK(B > 0 && C >= 0 && P > 0, "pack_padding_free: batch of ", B, " rows, width ", W, ", prompt length ", P);
  const auto* m = am.data_ptr<int64_t>();
  const auto* x = ids.data_ptr<int64_t>();
  // Each row's real tokens are one run: the left-padded prompt, then the completion.
  std::vector<int64_t> begin(B), length(B), prompt_len(B);
  for (int64_t i = 0; i < B; ++i) {
    int64_t b = 0;
    while (b < P && m[i * W + b] == 0) ++b;
    int64_t e = P;
    while (e < W && m[i * W + e] != 0) ++e;
    begin[i] = b;
    prompt_len[i] = P - b;
    length[i] = e - b;
  }
  // Best-fit decreasing: longest first, each into the fullest row it fits (ties: lower index).
  std::vector<int64_t> order(B);
  for (int64_t i = 0; i < B; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return length[a] > length[b]; });
  std::vector<int64_t> used;  // tokens in each packed row
  std::vector<int64_t> offset(B);
  PackedRows out;
  out.row_of.assign(B, -1);
  for (int64_t i : order) {
    int64_t best = -1;
    for (size_t r = 0; r < used.size(); ++r)
      if (used[r] + length[i] <= W && (best < 0 || used[r] > used[static_cast<size_t>(best)]))
        best = static_cast<int64_t>(r);
    if (best < 0) {
      best = static_cast<int64_t>(used.size());
      used.push_back(0);
    }
    out.row_of[i] = best;
    offset[i] = used[static_cast<size_t>(best)];
    used[static_cast<size_t>(best)] += length[i];
  }
  const int64_t R = static_cast<int64_t>(used.size());
  out.input_ids = torch::zeros({R, W}, torch::kLong);  // the unused tail: id 0, attended by nothing
  out.position_ids = torch::zeros({R, W}, torch::kLong);
  out.segment_ids = torch::zeros({R, W}, torch::kLong);
  auto* pid = out.input_ids.data_ptr<int64_t>();
  auto* pos = out.position_ids.data_ptr<int64_t>();
  auto* seg = out.segment_ids.data_ptr<int64_t>();
  std::vector<int64_t> segments_in_row(static_cast<size_t>(R), 0);
  std::vector<int64_t> predict, target, dest;
  for (int64_t i = 0; i < B; ++i) {
    const int64_t r = out.row_of[i], base = r * W + offset[i];
    const int64_t s = ++segments_in_row[static_cast<size_t>(r)];
    for (int64_t t = 0; t < length[i]; ++t) {
      pid[base + t] = x[i * W + begin[i] + t];
      pos[base + t] = t;
      seg[base + t] = s;
    }
    // Completion token j sits at t = prompt_len + j and is predicted by position t - 1.
    for (int64_t j = 0; j < length[i] - prompt_len[i]; ++j) {
      predict.push_back(base + prompt_len[i] + j - 1);
      target.push_back(x[i * W + P + j]);
      dest.push_back(i * C + j);
    }
    out.real_tokens += length[i];
  }
  auto to_tensor = [](const std::vector<int64_t>& v) {
    return torch::from_blob(const_cast<int64_t*>(v.data()), {static_cast<int64_t>(v.size())}, torch::kLong).clone();
  };
  out.predict_index = to_tensor(predict);
  out.target_ids = to_tensor(target);
  out.output_index = to_tensor(dest);
  return out;
}

namespace {

model::TokenStats padding_free_stats(model::CausalLM& model, const SequenceBatch& batch, const TokenStatsOptions& o) {
  const auto dev = model.device();
  const PackedRows packed = pack_padding_free(batch);
  model::ForwardOptions fo;
  fo.position_ids = packed.position_ids.to(dev);
  fo.segment_ids = packed.segment_ids.to(dev);
  fo.activation_checkpointing = o.activation_checkpointing;
  const auto hidden = model.forward(packed.input_ids.to(dev), fo);
  const int64_t B = batch.completion_ids.size(0), C = batch.completion_ids.size(1);
  const auto h = hidden.reshape({-1, hidden.size(-1)}).index_select(0, packed.predict_index.to(dev));
  const auto stats = model::token_logprobs(h, model.lm_head_weight(), packed.target_ids.to(dev),
                                           o.temperature > 0 ? o.temperature : 1.0, o.chunk_size);
  // Back to the padded [B, C] layout; index_copy (out of place) keeps the graph to h.
  const auto where = packed.output_index.to(dev);
  auto spread = [&](const torch::Tensor& v) {
    return torch::zeros({B * C}, v.options()).index_copy(0, where, v).view({B, C});
  };
  return {spread(stats.logprobs), spread(stats.entropy), spread(stats.self_certainty)};
}

}  // namespace

model::TokenStats completion_token_stats(model::CausalLM& model, const SequenceBatch& batch,
                                         const TokenStatsOptions& o) {
  const auto dev = model.device();
  std::optional<AutocastGuard> autocast;
  if (o.bf16) autocast.emplace(dev.type(), true, torch::kBFloat16);
  if (o.padding_free) return padding_free_stats(model, batch, o);
  model::ForwardOptions fo;
  fo.attention_mask = batch.attention_mask.to(dev);
  fo.activation_checkpointing = o.activation_checkpointing;
  const auto hidden = model.forward(batch.input_ids.to(dev), fo);
  const int64_t p = batch.prompt_length, c = batch.completion_ids.size(1);
  // Position t predicts token t + 1: completion token j is predicted at column p − 1 + j.
  const auto h = hidden.slice(1, p - 1, p - 1 + c);
  return model::token_logprobs(h, model.lm_head_weight(), batch.completion_ids.to(dev),
                               o.temperature > 0 ? o.temperature : 1.0, o.chunk_size);
}

model::TokenStats completion_token_stats(model::CausalLM& model, const SequenceBatch& batch, double temperature,
                                         bool activation_checkpointing, int64_t chunk_size, bool bf16) {
  TokenStatsOptions o;
  o.temperature = temperature;
  o.activation_checkpointing = activation_checkpointing;
  o.chunk_size = chunk_size;
  o.bf16 = bf16;
  return completion_token_stats(model, batch, o);
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
