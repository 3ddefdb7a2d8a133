// LoRA against an independent computation: tests/python/hf_reference.py writes PEFT-format
// adapters (PEFT's names and config, random non-zero A and B) and computes log-probs of the
// base with W + s·B·A in float64, sharing nothing with our code but the formula. Our forward of
// the unmerged adapted model must match it, merging must not change it, our files must load
// back, and only A and B may train.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "selfrl/generation/rollout_engine.h"
#include "selfrl/io/jsonl.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/model/lora.h"
#include "selfrl/model/token_logprobs.h"
#include "test_util.h"

using json = nlohmann::json;
using selfrl::test::python;
using selfrl::test::run_command;
using selfrl::test::source_dir;
using selfrl::test::TempDir;
namespace sm = selfrl::model;

namespace {

std::string reference() { return python() + " " + source_dir() + "/tests/python/hf_reference.py"; }

void must_run(const std::string& cmd) {
  auto r = run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
}

const std::vector<std::vector<int64_t>> kSeqs = {{1, 5, 9, 22, 40, 3, 7, 8, 9, 10, 11, 12}, {4, 3}, {96, 0, 95, 1, 94}};

void write_seqs(const std::string& path) {
  std::ofstream f(path);
  for (const auto& s : kSeqs) f << json{{"input_ids", s}}.dump() << "\n";
}

// Our log-probs of every sequence, concatenated.
std::vector<double> ours(sm::CausalLM& m) {
  torch::NoGradGuard g;
  m.eval();
  std::vector<double> out;
  for (const auto& s : kSeqs) {
    auto ids = torch::tensor(s, torch::kLong).unsqueeze(0);
    const int64_t n = ids.size(1);
    auto lp =
        sm::token_logprobs(m.forward(ids).narrow(1, 0, n - 1), m.lm_head_weight(), ids.narrow(1, 1, n - 1), 1.0, 4)
            .logprobs;
    for (int64_t t = 0; t < n - 1; ++t) out.push_back(lp[0][t].item<double>());
  }
  return out;
}

std::vector<double> theirs(const std::string& path) {
  std::vector<double> out;
  for (const auto& j : selfrl::io::read_jsonl(path, true))
    for (double v : j["logprobs"].get<std::vector<double>>()) out.push_back(v);
  return out;
}

double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

struct Case {
  std::string name, model_flags, adapter_flags;
};

class LoraParity : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST_P(LoraParity, PeftAdapterMatchesTheFormulaUnmergedAndMerged) {
  const auto& c = GetParam();
  TempDir d;
  write_seqs(d.file("seqs.jsonl"));
  must_run(reference() + " make-model " + c.model_flags + " --out " + d.file("base"));
  must_run(reference() + " make-adapter --model " + d.file("base") + " --out " + d.file("adapter") + " " +
           c.adapter_flags);
  must_run(reference() + " logprobs --model " + d.file("base") + " --adapter " + d.file("adapter") + " --in " +
           d.file("seqs.jsonl") + " --out " + d.file("ref.jsonl"));
  must_run(reference() + " logprobs --model " + d.file("base") + " --in " + d.file("seqs.jsonl") + " --out " +
           d.file("ref_base.jsonl"));
  const auto ref = theirs(d.file("ref.jsonl")), ref_base = theirs(d.file("ref_base.jsonl"));
  ASSERT_GT(max_diff(ref, ref_base), 1e-2) << "the adapter must change the model for the test to mean anything";

  auto m = sm::CausalLM::from_pretrained(d.file("base"));
  const auto cfg = sm::load_lora(*m, d.file("adapter"));
  const auto unmerged = ours(*m);
  EXPECT_LE(max_diff(unmerged, ref), 1e-4) << c.name;
  {
    sm::LoraDisabled off(*m);  // the base, without a second copy
    EXPECT_LE(max_diff(ours(*m), ref_base), 1e-4) << c.name;
  }
  // Our adapter files round-trip, and Python reads them with the same result.
  m->train();
  sm::save_lora(*m, cfg, d.file("ours"));
  must_run(reference() + " logprobs --model " + d.file("base") + " --adapter " + d.file("ours") + " --in " +
           d.file("seqs.jsonl") + " --out " + d.file("ref_ours.jsonl"));
  EXPECT_LE(max_diff(theirs(d.file("ref_ours.jsonl")), ref), 1e-9);
  auto back = sm::CausalLM::from_pretrained(d.file("base"));
  sm::load_lora(*back, d.file("ours"));
  const auto a = sm::lora_parameters(*m), b = sm::lora_parameters(*back);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  // Merged into the weights: the same function (≤ 1e-5), a plain model that saves as HF.
  sm::merge_lora(*m);
  EXPECT_FALSE(sm::has_lora(*m));
  EXPECT_LE(max_diff(ours(*m), unmerged), 1e-5);
  m->save_pretrained(d.file("merged"));
  must_run(reference() + " logprobs --model " + d.file("merged") + " --in " + d.file("seqs.jsonl") + " --out " +
           d.file("ref_merged.jsonl"));
  EXPECT_LE(max_diff(theirs(d.file("ref_merged.jsonl")), ref), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(
    Archs, LoraParity,
    ::testing::Values(
        Case{"llama_qv", "--arch llama --seed 3", "--r 4 --alpha 8 --targets q_proj,v_proj"},
        Case{"qwen2_all", "--arch qwen2 --seed 3 --bias",
             "--r 2 --alpha 16 --rslora --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"},
        Case{"qwen3_mlp_head", "--arch qwen3 --seed 4", "--r 3 --alpha 6 --targets gate_proj,down_proj,lm_head"}),
    [](const auto& info) { return info.param.name; });

// PEFT's start: B = 0, so the adapted model equals its base; the base is frozen; gradients
// reach A and B only (B first: dL/dA is 0 while B is 0).
TEST(Lora, StartsAtTheBaseAndTrainsOnlyTheAdapters) {
  TempDir d;
  must_run(reference() + " make-model --arch llama --seed 5 --out " + d.file("base"));
  write_seqs(d.file("seqs.jsonl"));
  auto m = sm::CausalLM::from_pretrained(d.file("base"));
  const auto before = ours(*m);
  sm::LoraConfig cfg;
  cfg.r = 4;
  cfg.lora_alpha = 8;
  cfg.target_modules = {"all-linear"};
  EXPECT_EQ(sm::add_lora(*m, cfg), 7 * m->config().num_hidden_layers);
  EXPECT_EQ(max_diff(ours(*m), before), 0.0);
  int64_t trainable = 0;
  for (const auto& p : m->named_parameters()) {
    const bool adapter = p.key().find(".lora_") != std::string::npos;
    EXPECT_EQ(p.value().requires_grad(), adapter) << p.key();
    trainable += p.value().requires_grad() ? p.value().numel() : 0;
  }
  EXPECT_GT(trainable, 0);
  m->train();
  auto ids = torch::tensor(kSeqs[0], torch::kLong).unsqueeze(0);
  const int64_t n = ids.size(1);
  auto lp =
      sm::token_logprobs(m->forward(ids).narrow(1, 0, n - 1), m->lm_head_weight(), ids.narrow(1, 1, n - 1), 1.0, 4);
  (-lp.logprobs.sum()).backward();
  for (const auto& [name, w] : sm::lora_parameters(*m)) {
    ASSERT_TRUE(w.grad().defined()) << name;
    if (name.find("lora_B") != std::string::npos) EXPECT_GT(w.grad().abs().sum().item<double>(), 0.0) << name;
  }
  for (const auto& p : m->named_parameters())
    if (p.key().find(".lora_") == std::string::npos) EXPECT_FALSE(p.value().grad().defined()) << p.key();
  // The base's own save never carries adapter tensors.
  for (const auto& [name, t] : m->hf_state_dict()) EXPECT_EQ(name.find(".lora_"), std::string::npos) << name;
}

TEST(Lora, BadAdapterFilesAreClearErrors) {
  TempDir d;
  must_run(reference() + " make-model --arch llama --seed 5 --out " + d.file("base"));
  must_run(reference() + " make-adapter --model " + d.file("base") + " --out " + d.file("a") +
           " --r 4 --targets q_proj");
  // The config says r = 8; the tensors have rank 4.
  {
    std::ifstream in(d.file("a/adapter_config.json"));
    auto j = json::parse(in);
    j["r"] = 8;
    std::ofstream(d.file("a/adapter_config.json")) << j.dump();
  }
  auto m = sm::CausalLM::from_pretrained(d.file("base"));
  EXPECT_SELFRL_ERROR(sm::load_lora(*m, d.file("a")), "adapter_model.safetensors", "q_proj.lora_A.weight",
                      "expected [8, ", "rank 4 vs r = 8");
  // An unknown target module names itself and the known ones.
  {
    std::ifstream in(d.file("a/adapter_config.json"));
    auto j = json::parse(in);
    j["r"] = 4;
    j["target_modules"] = {"q_proj", "qkv_proj"};
    std::ofstream(d.file("a/adapter_config.json")) << j.dump();
  }
  auto m2 = sm::CausalLM::from_pretrained(d.file("base"));
  EXPECT_SELFRL_ERROR(sm::load_lora(*m2, d.file("a")), "adapter_config.json", "unknown module 'qkv_proj'", "known:");
  // Options that change the computation and that we do not implement are refused, not ignored.
  {
    std::ifstream in(d.file("a/adapter_config.json"));
    auto j = json::parse(in);
    j["target_modules"] = {"q_proj"};
    j["use_dora"] = true;
    std::ofstream(d.file("a/adapter_config.json")) << j.dump();
  }
  auto m3 = sm::CausalLM::from_pretrained(d.file("base"));
  EXPECT_SELFRL_ERROR(sm::load_lora(*m3, d.file("a")), "adapter_config.json", "use_dora", "not supported");
  auto m4 = sm::CausalLM::from_pretrained(d.file("base"));
  EXPECT_SELFRL_ERROR(sm::load_lora(*m4, d.file("nothing")), "nothing", "no adapter_config.json");
}

// Rollouts with the adapters merged (model::LoraMerged) generate what the unmerged adapters
// generate, and the base comes back bit for bit.
TEST(Lora, MergedRolloutsMatchUnmergedAndRestoreTheBaseExactly) {
  TempDir d;
  must_run(reference() + " make-model --arch qwen2 --seed 6 --out " + d.file("base"));
  must_run(reference() + " make-adapter --model " + d.file("base") + " --out " + d.file("a") +
           " --r 4 --alpha 8 --targets q_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,lm_head");
  auto m = sm::CausalLM::from_pretrained(d.file("base"));
  sm::load_lora(*m, d.file("a"));
  std::vector<torch::Tensor> before;
  for (const auto& p : m->named_parameters()) before.push_back(p.value().clone());
  selfrl::generation::RolloutEngine engine(m, {64, {}});
  selfrl::generation::SamplingParams sp;
  sp.temperature = 0;
  sp.max_new_tokens = 12;
  const std::vector<std::vector<int64_t>> prompts = {{1, 5, 9}, {4, 3, 22, 8}};
  torch::NoGradGuard g;
  m->eval();
  const auto unmerged = engine.generate(prompts, sp);
  std::vector<selfrl::generation::Rollout> merged;
  {
    sm::LoraMerged guard(*m);
    merged = engine.generate(prompts, sp);
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(merged[i].completions[0].token_ids, unmerged[i].completions[0].token_ids) << i;
    const auto& a = merged[i].completions[0].logprobs;
    const auto& b = unmerged[i].completions[0].logprobs;
    for (size_t t = 0; t < a.size() && t < b.size(); ++t) EXPECT_NEAR(a[t], b[t], 1e-4) << i << " " << t;
  }
  size_t k = 0;
  for (const auto& p : m->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), before[k++])) << p.key();
  // The adapters are on again: the same function as before the guard.
  const auto again = engine.generate(prompts, sp);
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(again[i].completions[0].logprobs, unmerged[i].completions[0].logprobs) << i;
}
