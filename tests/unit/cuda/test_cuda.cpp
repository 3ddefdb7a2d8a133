// CUDA: the same model, rollouts, log-probs and trainers on a GPU as on the CPU. Every test
// skips where LibTorch sees no CUDA device (CI, the development machine); scripts/gpu_check.sh
// runs them on a lent GPU (results in docs/benchmarks.md, "GPU").
//
// References are the CPU float32 (or float64) computations of this library, whose own CPU
// parity with an independent Python forward is tested elsewhere (tests/integration/model), and
// scripts/gpu_check.sh compares the CUDA numbers with Hugging Face transformers on the GPU.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "../model/tiny_models.h"
#include "selfrl/core/autocast.h"
#include "selfrl/generation/rollout_engine.h"
#include "selfrl/model/token_logprobs.h"
#include "selfrl/trainers/sft_trainer.h"
#include "../trainers/grpo_toy_step.h"
#include "test_util.h"

using namespace selfrl;

namespace {

#define SKIP_WITHOUT_CUDA()                                             \
  do {                                                                  \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

const c10::Device kCuda(c10::DeviceType::CUDA, 0);

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kCPU, torch::kDouble) - b.to(torch::kCPU, torch::kDouble)).abs().max().item<double>();
}

// The same weights on another device / dtype, through the Hugging Face files (as a user would).
std::shared_ptr<model::CausalLM> reload(const model::CausalLM& m, const test::TempDir& dir, const c10::Device& d,
                                        c10::ScalarType dtype) {
  m.save_pretrained(dir.path());
  return model::CausalLM::from_pretrained(dir.path(), d, dtype);
}

// Log-probs of each next token of `ids` (full forward, left padding from `mask`).
torch::Tensor next_token_logprobs(model::CausalLM& m, const torch::Tensor& ids, const torch::Tensor& mask) {
  torch::NoGradGuard g;
  model::ForwardOptions fo;
  fo.attention_mask = mask.to(m.device());
  auto h = m.forward(ids.to(m.device()), fo);
  auto logits = m.logits(h).to(torch::kFloat);
  auto lp = torch::log_softmax(logits.narrow(1, 0, ids.size(1) - 1), -1);
  return lp.gather(2, ids.narrow(1, 1, ids.size(1) - 1).to(m.device()).unsqueeze(2)).squeeze(2);
}

std::pair<torch::Tensor, torch::Tensor> padded_batch(int64_t vocab) {
  // Three rows, the shorter two left-padded.
  auto ids = torch::randint(1, vocab, {3, 12}, torch::kLong);
  auto mask = torch::ones({3, 12}, torch::kLong);
  mask[1].narrow(0, 0, 3).zero_();
  mask[2].narrow(0, 0, 7).zero_();
  ids.masked_fill_(mask == 0, 0);
  return {ids, mask};
}

}  // namespace

TEST(Cuda, LogitsMatchCpuForEveryArchitecture) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(0);
  for (const std::string arch : {"llama", "llama3", "qwen2", "qwen3", "tied"}) {
    auto cpu = test::tiny_model(arch, 1);
    test::TempDir dir;
    auto gpu = reload(*cpu, dir, kCuda, torch::kFloat);
    EXPECT_TRUE(gpu->device().is_cuda());
    auto [ids, mask] = padded_batch(cpu->config().vocab_size);
    const auto ref = next_token_logprobs(*cpu, ids, mask);
    const auto got = next_token_logprobs(*gpu, ids, mask);
    const auto valid = mask.narrow(1, 1, ids.size(1) - 1).to(torch::kBool);
    const double d = max_diff(got.masked_select(valid.to(kCuda)), ref.masked_select(valid));
    std::printf("%s: CUDA fp32 vs CPU fp32 max |Δ logprob| = %.3g\n", arch.c_str(), d);
    EXPECT_LT(d, 1e-4) << arch;
  }
}

TEST(Cuda, Bfloat16WeightsStayCloseToFloat32) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(0);
  for (const std::string arch : {"llama", "qwen2", "qwen3"}) {
    // The default initialization (std 0.02), as a trained model's scale, not the peaked test one.
    auto cpu = model::CausalLM::from_config(test::tiny_config(arch), 3);
    test::TempDir dir;
    auto f32 = reload(*cpu, dir, kCuda, torch::kFloat);
    auto b16 = model::CausalLM::from_pretrained(dir.path(), kCuda, torch::kBFloat16);
    EXPECT_EQ(b16->dtype(), torch::kBFloat16);
    auto [ids, mask] = padded_batch(cpu->config().vocab_size);
    const auto valid = mask.narrow(1, 1, ids.size(1) - 1).to(torch::kBool).to(kCuda);
    const double d = max_diff(next_token_logprobs(*b16, ids, mask).masked_select(valid),
                              next_token_logprobs(*f32, ids, mask).masked_select(valid));
    std::printf("%s: CUDA bf16 vs fp32 max |Δ logprob| = %.3g\n", arch.c_str(), d);
    EXPECT_GT(d, 0.0);  // it is a different precision
    EXPECT_LT(d, 5e-2) << arch;
  }
}

TEST(Cuda, RolloutsMatchTheCpuEngine) {
  SKIP_WITHOUT_CUDA();
  // Greedy and seeded sampling: the per-row uniforms come from the same CPU generators, so a
  // CUDA engine draws the same tokens as the CPU one unless a probability differs by ~1e-6 at a
  // draw's boundary; prompts of different lengths exercise left padding in the KV cache.
  for (const std::string arch : {"llama", "qwen3"}) {
    auto cpu = test::tiny_model(arch, 4);
    test::TempDir dir;
    auto gpu = reload(*cpu, dir, kCuda, torch::kFloat);
    const std::vector<std::vector<int64_t>> prompts = {{1, 2, 3, 4, 5}, {7}, {9, 10, 11}};
    for (double temperature : {0.0, 1.0}) {
      generation::SamplingParams sp;
      sp.temperature = temperature;
      sp.top_p = temperature > 0 ? 0.9 : 1.0;
      sp.num_samples = 3;
      sp.max_new_tokens = 12;
      sp.seed = 11;
      sp.ignore_eos = true;
      generation::RolloutEngineOptions eo;
      eo.max_batch_size = 4;  // several waves
      auto a = generation::RolloutEngine(cpu, eo).generate(prompts, sp);
      auto b = generation::RolloutEngine(gpu, eo).generate(prompts, sp);
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        for (size_t g = 0; g < a[i].completions.size(); ++g) {
          const auto& x = a[i].completions[g];
          const auto& y = b[i].completions[g];
          EXPECT_EQ(x.token_ids, y.token_ids) << arch << " T=" << temperature << " prompt " << i << " sample " << g;
          ASSERT_EQ(x.logprobs.size(), y.logprobs.size());
          for (size_t t = 0; t < x.logprobs.size(); ++t) {
            EXPECT_NEAR(x.logprobs[t], y.logprobs[t], 1e-4);
            EXPECT_NEAR(x.entropy[t], y.entropy[t], 1e-4);
            EXPECT_NEAR(x.self_certainty[t], y.self_certainty[t], 1e-4);
          }
        }
      }
    }
  }
}

TEST(Cuda, ChunkedLogprobsMatchFloat64InValuesAndGradients) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(0);
  auto h64 = torch::randn({4, 9, 32}, torch::kDouble);
  auto w64 = torch::randn({1000, 32}, torch::kDouble) * 0.3;
  auto t = torch::randint(0, 1000, {4, 9}, torch::kLong);
  auto gl = torch::randn({4, 9}), ge = torch::randn({4, 9}), gs = torch::randn({4, 9});
  auto run = [&](const c10::Device& d, c10::ScalarType dt, bool chunked) {
    auto h = h64.to(d, dt).requires_grad_(true);
    auto w = w64.to(d, dt).requires_grad_(true);
    auto tt = t.to(d);
    auto s = chunked ? model::token_logprobs(h, w, tt, 0.8, 7) : model::token_logprobs_naive(h, w, tt, 0.8);
    auto loss = (s.logprobs.to(torch::kDouble) * gl.to(d, torch::kDouble)).sum() +
                (s.entropy.to(torch::kDouble) * ge.to(d, torch::kDouble)).sum() +
                (s.self_certainty.to(torch::kDouble) * gs.to(d, torch::kDouble)).sum();
    auto g = torch::autograd::grad({loss}, {h, w});
    return std::make_tuple(s.logprobs.detach(), s.entropy.detach(), s.self_certainty.detach(), g[0], g[1]);
  };
  auto [lr, er, sr, ghr, gwr] = run(c10::kCPU, torch::kDouble, false);
  auto [lc, ec, sc, ghc, gwc] = run(kCuda, torch::kFloat, true);
  EXPECT_LT(max_diff(lc, lr), 1e-4);
  EXPECT_LT(max_diff(ec, er), 1e-4);
  EXPECT_LT(max_diff(sc, sr), 1e-4);
  EXPECT_LT(max_diff(ghc, ghr), 1e-3);
  EXPECT_LT(max_diff(gwc, gwr), 1e-3);
}

TEST(Cuda, Bf16SftTrainsOnTheGpuAndSavesForTransformers) {
  SKIP_WITHOUT_CUDA();
  auto cpu = test::tiny_model("llama", 10);
  test::TempDir dir;
  auto m = reload(*cpu, dir, kCuda, torch::kFloat);
  trainers::SFTConfig cfg;
  cfg.bf16 = true;
  cfg.per_device_train_batch_size = 4;
  cfg.optimizer.learning_rate = 1e-2;
  cfg.optimizer.lr_scheduler_type = trainers::LrSchedulerType::kConstant;
  std::vector<trainers::SFTExample> data = {{{1, 2}, {7, 8, 9}}, {{3}, {10, 11}}, {{4, 5}, {12, 13, 14}}, {{6}, {15}}};
  // The first step's loss equals the CPU float32 one up to bf16 rounding.
  trainers::SFTConfig cpu_cfg = cfg;
  cpu_cfg.bf16 = false;
  trainers::SFTTrainer cpu_trainer(cpu, cpu_cfg);
  const double cpu_loss = cpu_trainer.step(data).at("loss");
  trainers::SFTTrainer trainer(m, cfg);
  std::vector<double> losses;
  for (int s = 0; s < 30; ++s) losses.push_back(trainer.step(data).at("loss"));
  std::printf("CUDA bf16 SFT loss %.4f -> %.4f (CPU fp32 first step %.4f)\n", losses.front(), losses.back(), cpu_loss);
  EXPECT_NEAR(losses.front(), cpu_loss, 2e-2 * cpu_loss);
  EXPECT_LT(losses.back(), 0.3 * losses.front());
  EXPECT_FALSE(autocast_enabled(c10::DeviceType::CUDA));
  for (auto& p : m->parameters()) {
    EXPECT_EQ(p.scalar_type(), torch::kFloat);
    EXPECT_TRUE(p.device().is_cuda());
  }
  // scripts/gpu_check.sh loads this directory with transformers and compares its log-probs
  // with `selfrl logprobs` on it.
  if (const char* out = std::getenv("SELFRL_GPU_EXPORT")) m->save_pretrained(out);
  // Saved from the GPU, loaded back on the CPU: bit-exact weights.
  test::TempDir dir2;
  m->save_pretrained(dir2.path());
  auto back = model::CausalLM::from_pretrained(dir2.path());
  auto a = m->hf_state_dict();
  auto b = back->hf_state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(torch::equal(a[i].second.to(torch::kCPU), b[i].second)) << a[i].first;
  }
}

TEST(Cuda, GrpoStepOnTheGpuMatchesTheCpuStep) {
  SKIP_WITHOUT_CUDA();
  double grad_norm[3], reward_mean[3];
  for (int run = 0; run < 3; ++run) {  // CPU fp32, CUDA fp32, CUDA bf16 autocast
    auto m = test::tiny_model("llama", 9);
    test::TempDir dir;
    if (run > 0) m = reload(*m, dir, kCuda, torch::kFloat);
    const auto res = test::grpo_toy_step(m, run == 2);
    grad_norm[run] = res.metrics.at("grad_norm");
    reward_mean[run] = res.metrics.at("reward");
    EXPECT_TRUE(std::isfinite(res.metrics.at("loss")));
  }
  std::printf("GRPO grad_norm CPU fp32 %.6f, CUDA fp32 %.6f, CUDA bf16 %.6f\n", grad_norm[0], grad_norm[1],
              grad_norm[2]);
  EXPECT_EQ(reward_mean[1], reward_mean[0]);  // the same rollouts
  EXPECT_EQ(reward_mean[2], reward_mean[0]);
  EXPECT_NEAR(grad_norm[1], grad_norm[0], 1e-4 * grad_norm[0]);
  EXPECT_NEAR(grad_norm[2], grad_norm[0], 2e-2 * grad_norm[0]);
}
