// CausalLM: KV-cache decoding equals the full forward, left padding changes nothing,
// save/load round-trips bit-exactly, activation checkpointing keeps gradients, and bad
// checkpoints / inputs give errors that name the problem.
#include "selfrl/model/causal_lm.h"

#include <gtest/gtest.h>

#include "selfrl/io/safetensors.h"
#include "test_util.h"
#include "tiny_models.h"

using selfrl::model::CausalLM;
using selfrl::model::ForwardOptions;
using selfrl::test::tiny_config;
using selfrl::test::tiny_model;

namespace {

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

class PerArch : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(PerArch, KVCacheDecodeEqualsFullForward) {
  auto m = tiny_model(GetParam(), 1);
  torch::NoGradGuard g;
  auto ids = torch::randint(0, 61, {2, 20}, torch::kLong);
  auto full = m->forward(ids);
  auto cache = m->make_cache(2, 24);
  ForwardOptions fo;
  fo.cache = &cache;
  auto prefix = m->forward(ids.narrow(1, 0, 12), fo);
  std::vector<torch::Tensor> parts{prefix};
  for (int64_t t = 12; t < 20; ++t) parts.push_back(m->forward(ids.narrow(1, t, 1), fo));
  EXPECT_EQ(cache.length(), 20);
  EXPECT_LT(max_diff(torch::cat(parts, 1), full), 1e-5);
}

TEST_P(PerArch, LeftPaddingChangesNothing) {
  auto m = tiny_model(GetParam(), 2);
  torch::NoGradGuard g;
  auto a = torch::randint(0, 61, {1, 9}, torch::kLong);
  auto b = torch::randint(0, 61, {1, 5}, torch::kLong);
  auto batch = torch::zeros({2, 9}, torch::kLong);
  batch[0].copy_(a[0]);
  batch[1].narrow(0, 4, 5).copy_(b[0]);
  auto mask = torch::ones({2, 9}, torch::kLong);
  mask[1].narrow(0, 0, 4).zero_();
  ForwardOptions fo;
  fo.attention_mask = mask;
  auto h = m->forward(batch, fo);
  EXPECT_LT(max_diff(h[0], m->forward(a)[0]), 1e-5);
  EXPECT_LT(max_diff(h[1].narrow(0, 4, 5), m->forward(b)[0]), 1e-5);
}

TEST_P(PerArch, SaveLoadRoundTripsBitExactly) {
  auto m = tiny_model(GetParam(), 3);
  selfrl::test::TempDir dir;
  m->save_pretrained(dir.path(), /*max_shard_bytes=*/20000);  // forces shards
  auto back = CausalLM::from_pretrained(dir.path());
  auto a = m->hf_state_dict(), b = back->hf_state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
  auto ckpt = selfrl::io::SafeTensorsCheckpoint::open(dir.path());
  EXPECT_GT(ckpt.num_shards(), 1u);
  EXPECT_EQ(ckpt.contains("lm_head.weight"), !m->config().tie_word_embeddings);
}

INSTANTIATE_TEST_SUITE_P(Model, PerArch, ::testing::Values("llama", "llama3", "qwen2", "qwen3", "tied"));

TEST(CausalLM, HFParameterNames) {
  auto names = [](const std::string& arch) {
    std::set<std::string> s;
    for (auto& [n, t] : tiny_model(arch)->hf_state_dict()) s.insert(n);
    return s;
  };
  auto q3 = names("qwen3");
  EXPECT_TRUE(q3.count("model.embed_tokens.weight"));
  EXPECT_TRUE(q3.count("model.layers.1.self_attn.q_norm.weight"));
  EXPECT_TRUE(q3.count("model.layers.0.mlp.gate_proj.weight"));
  EXPECT_TRUE(q3.count("lm_head.weight"));
  EXPECT_FALSE(q3.count("model.layers.0.self_attn.q_proj.bias"));
  auto q2 = names("qwen2");
  EXPECT_TRUE(q2.count("model.layers.0.self_attn.q_proj.bias"));
  EXPECT_FALSE(q2.count("model.layers.0.self_attn.o_proj.bias"));
  EXPECT_FALSE(names("tied").count("lm_head.weight"));
}

TEST(CausalLM, ActivationCheckpointingKeepsGradients) {
  auto m = tiny_model("qwen3", 4);
  auto ids = torch::randint(0, 61, {2, 10}, torch::kLong);
  auto grads = [&](bool ckpt) {
    m->zero_grad();
    ForwardOptions fo;
    fo.activation_checkpointing = ckpt;
    m->forward(ids, fo).pow(2).sum().backward();
    std::vector<torch::Tensor> g;
    for (auto& p : m->parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    return g;
  };
  auto plain = grads(false), ckpt = grads(true);
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_LT(max_diff(plain[i], ckpt[i]), 1e-4) << i;
}

TEST(CausalLM, ReducedPrecisionIsCloseToFloat32) {
  auto m = tiny_model("llama", 5);
  torch::NoGradGuard g;
  auto ids = torch::randint(0, 61, {1, 12}, torch::kLong);
  auto ref = m->logits(m->forward(ids)).to(torch::kFloat);
  for (auto dtype : {torch::kBFloat16}) {
    selfrl::test::TempDir dir;
    m->save_pretrained(dir.path());
    auto low = CausalLM::from_pretrained(dir.path(), torch::kCPU, dtype);
    EXPECT_EQ(low->dtype(), dtype);
    auto logits = low->logits(low->forward(ids)).to(torch::kFloat);
    EXPECT_LT(max_diff(logits, ref), 0.25 * ref.abs().max().item<double>());
    EXPECT_GT(torch::eq(logits.argmax(-1), ref.argmax(-1)).to(torch::kFloat).mean().item<double>(), 0.7);
  }
}

TEST(CausalLM, Float16OnCpuIsAClearError) {
  selfrl::test::TempDir dir;
  tiny_model("llama")->save_pretrained(dir.path());
  EXPECT_SELFRL_ERROR(CausalLM::from_pretrained(dir.path(), torch::kCPU, torch::kHalf), "float16", "bfloat16");
}

TEST(CausalLM, OutOfVocabularyIdsAreRejected) {
  auto m = tiny_model("llama");
  EXPECT_SELFRL_ERROR(m->forward(torch::tensor({{1, 61}}, torch::kLong)), "token id 61", "[0, 61)");
  EXPECT_SELFRL_ERROR(m->forward(torch::tensor({{-1, 2}}, torch::kLong)), "token id -1");
}

TEST(CausalLM, UnsupportedArchitectureListsSupported) {
  auto cfg = tiny_config("llama");
  cfg.architectures = {"GPT2LMHeadModel"};
  EXPECT_SELFRL_ERROR(CausalLM{cfg}, "GPT2LMHeadModel", "LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM");
  auto rope = tiny_config("llama");
  rope.rope_scaling = selfrl::io::RopeScaling{"yarn"};
  EXPECT_SELFRL_ERROR(CausalLM{rope}, "yarn", "llama3");
}

namespace {
// Saves the model, then rewrites its safetensors with `edit` applied to the tensor list.
std::string tampered(const selfrl::test::TempDir& dir, const std::shared_ptr<CausalLM>& m,
                     const std::function<void(selfrl::io::NamedTensors&)>& edit) {
  m->save_pretrained(dir.path());
  auto t = m->hf_state_dict();
  for (auto& [n, x] : t) x = x.detach();
  edit(t);
  selfrl::io::save_safetensors_checkpoint(dir.path(), t);
  return dir.path();
}
}  // namespace

TEST(CausalLM, MissingTensorIsNamed) {
  selfrl::test::TempDir dir;
  auto path = tampered(dir, tiny_model("llama"), [](selfrl::io::NamedTensors& t) {
    t.erase(std::remove_if(t.begin(), t.end(), [](auto& p) { return p.first == "model.layers.1.mlp.up_proj.weight"; }),
            t.end());
  });
  EXPECT_SELFRL_ERROR(CausalLM::from_pretrained(path), "1 missing tensors",
                      "model.layers.1.mlp.up_proj.weight [48, 32]", path);
}

TEST(CausalLM, UnexpectedTensorIsNamed) {
  selfrl::test::TempDir dir;
  auto path = tampered(dir, tiny_model("llama"), [](selfrl::io::NamedTensors& t) {
    t.emplace_back("model.layers.2.mlp.up_proj.weight", torch::zeros({48, 32}));
  });
  EXPECT_SELFRL_ERROR(CausalLM::from_pretrained(path), "unexpected tensors", "model.layers.2.mlp.up_proj.weight",
                      "model.safetensors");
}

TEST(CausalLM, MisShapedTensorIsNamed) {
  selfrl::test::TempDir dir;
  auto path = tampered(dir, tiny_model("qwen3"), [](selfrl::io::NamedTensors& t) {
    for (auto& [n, x] : t)
      if (n == "model.layers.0.self_attn.k_proj.weight") x = torch::zeros({16, 32});
  });
  EXPECT_SELFRL_ERROR(CausalLM::from_pretrained(path), "model.layers.0.self_attn.k_proj.weight",
                      "expected shape [32, 32], got [16, 32]", "model.safetensors");
}

TEST(CausalLM, TiedCheckpointMayCarryLmHead) {
  selfrl::test::TempDir dir;
  auto m = tiny_model("tied");
  auto path = tampered(dir, m, [](selfrl::io::NamedTensors& t) { t.emplace_back("lm_head.weight", t[0].second); });
  auto back = CausalLM::from_pretrained(path);
  EXPECT_TRUE(torch::equal(back->lm_head_weight(), m->lm_head_weight()));
}

TEST(CausalLM, RejectsBadMaskShape) {
  auto m = tiny_model("llama");
  ForwardOptions fo;
  fo.attention_mask = torch::ones({1, 3}, torch::kLong);
  EXPECT_SELFRL_ERROR(m->forward(torch::tensor({{1, 2}}, torch::kLong), fo), "attention_mask must be [1, 2]");
}

// KVCache::merged_with, worked out by hand: one layer, one head, head_dim 1, the key of a
// column = its value tag. Running cache: 2 rows, length 5, columns 0-1 padding for both (from =
// 2) → 3 columns kept. New cache: 1 row of length 4. Merged length max(3, 4) = 4: the running
// rows move to columns 1-3 (column 0 zero), the new row fills 0-3.
TEST(KVCacheMerge, RightAlignsBothPartsAndZeroesTheGap) {
  using selfrl::model::KVCache;
  const auto opts = torch::TensorOptions().dtype(torch::kFloat);
  KVCache running(1, 2, 1, 8, 1, opts);
  auto k = torch::tensor({1.f, 2.f, 3.f, 4.f, 5.f}).view({1, 1, 5, 1});
  running.append(0, torch::cat({k, k + 10}, 0), torch::cat({-k, -k - 10}, 0));
  running.advance(5);
  KVCache fresh(1, 1, 1, 4, 1, opts);
  auto f = torch::tensor({100.f, 101.f, 102.f, 103.f}).view({1, 1, 4, 1});
  fresh.append(0, f, -f);
  fresh.advance(4);
  KVCache merged = running.merged_with(2, fresh, 7);
  EXPECT_EQ(merged.batch(), 3);
  EXPECT_EQ(merged.length(), 4);
  EXPECT_EQ(merged.capacity(), 7);
  // append of an empty block returns views of the valid prefix.
  auto [keys, values] = merged.append(0, torch::zeros({3, 1, 0, 1}), torch::zeros({3, 1, 0, 1}));
  const auto expect = torch::tensor({{0.f, 3.f, 4.f, 5.f}, {0.f, 13.f, 14.f, 15.f}, {100.f, 101.f, 102.f, 103.f}});
  EXPECT_TRUE(torch::equal(keys.view({3, 4}), expect)) << keys.view({3, 4});
  EXPECT_TRUE(torch::equal(values.view({3, 4}), -expect)) << values.view({3, 4});
  // Either side may be empty.
  KVCache only_new = KVCache().merged_with(0, fresh, 6);
  EXPECT_EQ(only_new.batch(), 1);
  EXPECT_EQ(only_new.length(), 4);
  KVCache only_old = running.merged_with(4, KVCache(), 3);
  EXPECT_EQ(only_old.length(), 1);
  EXPECT_SELFRL_ERROR(running.merged_with(2, fresh, 3), "capacity 3 < merged length 4");
}

// KVCache::merged_with on shared prefixes, worked out by hand: one layer, one head, head_dim 1.
// Running: one prompt (keys 1 2 3, column 0 padding for its rows: from = 1) shared by G = 2
// rows with two own columns each (10 11 and 20 21); row 0 has finished (its row leaves, slot 1
// stays). New: one prompt of 3 (keys 100 101 102), its 2 rows without own columns yet. Merged
// prefix max(3 − 1, 3) = 3 columns: prompt 0 right-aligned (0 2 3), prompt 1 (100 101 102);
// own columns max(2, 0) = 2: the old row keeps 20 21, the new rows hold zeros (padding between
// their prompt and the tokens they will generate). Slots 1, then 2 3 after the old prompt.
TEST(KVCacheMerge, SharedPrefixesAlignPromptsAndOwnColumnsSeparately) {
  using selfrl::model::KVCache;
  const auto opts = torch::TensorOptions().dtype(torch::kFloat);
  KVCache running(1, 1, 1, 3, 1, opts);
  const auto p0 = torch::tensor({1.f, 2.f, 3.f}).view({1, 1, 3, 1});
  running.append(0, p0, -p0);
  running.advance(3);
  running.share_prompts(2, 4);
  const auto own = torch::tensor({10.f, 20.f}).view({2, 1, 1, 1});
  running.append(0, own, -own);
  running.advance(1);
  running.append(0, own + 1, -own - 1);
  running.advance(1);
  running.select_rows(torch::tensor({1}, torch::kLong));
  KVCache fresh(1, 1, 1, 3, 1, opts);
  const auto p1 = torch::tensor({100.f, 101.f, 102.f}).view({1, 1, 3, 1});
  fresh.append(0, p1, -p1);
  fresh.advance(3);
  fresh.share_prompts(2, 1);

  KVCache merged = running.merged_with(1, fresh, 9);
  EXPECT_TRUE(merged.has_shared_prefix());
  EXPECT_EQ(merged.batch(), 3);
  EXPECT_EQ(merged.group_size(), 2);
  EXPECT_EQ(merged.prefix_length(), 3);
  EXPECT_EQ(merged.length(), 5);
  EXPECT_EQ(merged.capacity(), 9);
  const auto [pk, pv] = merged.prefix(0);
  const auto expect_prefix = torch::tensor({{0.f, 2.f, 3.f}, {100.f, 101.f, 102.f}});
  EXPECT_TRUE(torch::equal(pk.view({2, 3}), expect_prefix)) << pk.view({2, 3});
  EXPECT_TRUE(torch::equal(pv.view({2, 3}), -expect_prefix)) << pv.view({2, 3});
  auto [k, v] = merged.append(0, torch::zeros({3, 1, 0, 1}), torch::zeros({3, 1, 0, 1}));
  const auto expect_own = torch::tensor({{20.f, 21.f}, {0.f, 0.f}, {0.f, 0.f}});
  EXPECT_TRUE(torch::equal(k.view({3, 2}), expect_own)) << k.view({3, 2});
  EXPECT_TRUE(torch::equal(v.view({3, 2}), -expect_own)) << v.view({3, 2});
  EXPECT_TRUE(torch::equal(merged.row_slots(), torch::tensor({1, 2, 3}, torch::kLong))) << merged.row_slots();
  // Own columns before `own_from` (padding for every running row) are dropped: 21 alone stays.
  KVCache trimmed = running.merged_with(1, fresh, 8, 1);
  EXPECT_EQ(trimmed.length(), 4);
  auto [k1, v1] = trimmed.append(0, torch::zeros({3, 1, 0, 1}), torch::zeros({3, 1, 0, 1}));
  EXPECT_TRUE(torch::equal(k1.view({3}), torch::tensor({21.f, 0.f, 0.f}))) << k1.view({3});
  EXPECT_SELFRL_ERROR(running.merged_with(1, fresh, 9, 3), "own_from 3 outside [0, 2]");
  // Room for 4 more own columns; then full.
  merged.append(0, torch::zeros({3, 1, 4, 1}), torch::zeros({3, 1, 4, 1}));
  merged.advance(4);
  EXPECT_SELFRL_ERROR(merged.append(0, torch::zeros({3, 1, 1, 1}), torch::zeros({3, 1, 1, 1})), "KV cache is full");

  // A prefix of copied rows cannot join a shared one; the capacity must hold both parts.
  KVCache plain(1, 1, 1, 3, 1, opts);
  plain.append(0, p1, -p1);
  plain.advance(3);
  EXPECT_SELFRL_ERROR(running.merged_with(1, plain, 9), "one cache has a shared prompt prefix and the other not");
  EXPECT_SELFRL_ERROR(running.merged_with(1, fresh, 4), "capacity 4 < merged length 5");
  // Into an empty cache, the new prompts alone: identity slots.
  KVCache only_new = KVCache().merged_with(0, fresh, 6);
  EXPECT_EQ(only_new.prefix_length(), 3);
  EXPECT_EQ(only_new.length(), 3);
  EXPECT_FALSE(only_new.row_slots().defined());
}

// KVCache::share_prompts and select_rows, worked out by hand: one layer, one head, head_dim 1.
// Two prompts of 2 tokens (keys 1 2 and 3 4) shared by G = 2 samples each: rows 0-3 are slots
// 0-3, the prefix holds each prompt once. Dropping row 0 keeps both prompts (slots 1 2 3);
// dropping prompt 0's last row leaves prompt 1 alone: the prefix shrinks to it and its two
// rows become slots 0 1 again (in order: no slot map).
TEST(KVCacheSharedPrefix, HoldsEachPromptOnceAndDropsFinishedPrompts) {
  using selfrl::model::KVCache;
  const auto opts = torch::TensorOptions().dtype(torch::kFloat);
  KVCache cache(1, 2, 1, 2, 1, opts);
  const auto prompt_keys = torch::tensor({1.f, 2.f, 3.f, 4.f}).view({2, 1, 2, 1});
  cache.append(0, prompt_keys, -prompt_keys);
  cache.advance(2);
  const int64_t prompt_bytes = cache.nbytes();
  cache.share_prompts(2, 3);
  EXPECT_TRUE(cache.has_shared_prefix());
  EXPECT_EQ(cache.batch(), 4);
  EXPECT_EQ(cache.length(), 2);
  EXPECT_EQ(cache.capacity(), 5);
  EXPECT_FALSE(cache.row_slots().defined());
  // The prefix is the prompt buffers themselves (32 bytes); each of the 4 rows owns 3 columns of
  // keys and values: 2 * 4 * 3 * 4 bytes more.
  EXPECT_EQ(cache.nbytes(), prompt_bytes + 2 * 4 * 3 * 4);
  auto own = torch::tensor({10.f, 11.f, 12.f, 13.f}).view({4, 1, 1, 1});
  auto [k, v] = cache.append(0, own, -own);
  cache.advance(1);
  EXPECT_EQ(cache.length(), 3);
  EXPECT_TRUE(torch::equal(k.view({4}), torch::tensor({10.f, 11.f, 12.f, 13.f})));

  cache.select_rows(torch::tensor({1, 2, 3}, torch::kLong));
  EXPECT_EQ(cache.batch(), 3);
  EXPECT_TRUE(torch::equal(cache.row_slots(), torch::tensor({1, 2, 3}, torch::kLong))) << cache.row_slots();
  EXPECT_EQ(cache.prefix(0).first.size(0), 2);

  cache.select_rows(torch::tensor({1, 2}, torch::kLong));  // slots 2 3: prompt 1 only
  EXPECT_EQ(cache.batch(), 2);
  EXPECT_FALSE(cache.row_slots().defined());
  EXPECT_TRUE(torch::equal(cache.prefix(0).first.view({2}), torch::tensor({3.f, 4.f})));
  EXPECT_TRUE(torch::equal(cache.prefix(0).second.view({2}), torch::tensor({-3.f, -4.f})));
  auto [k2, v2] = cache.append(0, torch::zeros({2, 1, 0, 1}), torch::zeros({2, 1, 0, 1}));
  EXPECT_TRUE(torch::equal(k2.view({2}), torch::tensor({12.f, 13.f})));
  EXPECT_TRUE(torch::equal(v2.view({2}), torch::tensor({-12.f, -13.f})));
  EXPECT_EQ(cache.length(), 3);

  EXPECT_SELFRL_ERROR(cache.select_rows(torch::tensor({1, 0}, torch::kLong)), "kept in order");
  EXPECT_SELFRL_ERROR(cache.repeat_interleave(2), "already share a prompt prefix");
}
