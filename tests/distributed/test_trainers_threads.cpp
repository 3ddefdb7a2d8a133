// Trainers over a 2-rank world whose ranks are threads of this process: SFTTrainer::train
// shards each global batch itself, DPOTrainer::step takes each rank's pairs; both match one
// process on the same global batch.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>

#include <torch/torch.h>

#include "../unit/model/tiny_models.h"
#include "dist_test_util.h"
#include "selfrl/core/seed.h"
#include "selfrl/dist/world.h"
#include "selfrl/dist/named_reduction.h"
#include "selfrl/model/lora.h"
#include "selfrl/rewards/reward_pipeline.h"
#include "selfrl/trainers/dpo_trainer.h"
#include "selfrl/trainers/grpo_trainer.h"
#include "selfrl/trainers/sft_trainer.h"

namespace selfrl::trainers {
namespace {
using selfrl::test::free_port;

std::shared_ptr<dist::World> thread_world(int rank, int size, int port, size_t bucket_bytes = 25u << 20) {
  dist::LaunchInfo li;
  li.rank = rank;
  li.world_size = li.local_world_size = size;
  li.local_rank = rank;
  li.master_addr = "127.0.0.1";
  li.master_port = port;
  dist::WorldOptions o;
  o.timeout = std::chrono::seconds(20);
  o.bucket_bytes = bucket_bytes;
  return dist::World::create(li, o);
}

std::vector<int64_t> ids(std::mt19937_64& rng, int64_t n) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(1 + static_cast<int64_t>(rng() % 60));
  return v;
}

double max_diff(model::CausalLM& a, model::CausalLM& b) {
  double m = 0;
  auto pa = a.parameters(), pb = b.parameters();
  for (size_t i = 0; i < pa.size(); ++i) m = std::max(m, (pa[i] - pb[i]).abs().max().item<double>());
  return m;
}

OptimizerConfig opt_cfg() {
  OptimizerConfig oc;
  oc.learning_rate = 1e-2;
  oc.total_steps = 3;
  return oc;
}

TEST(ThreadRanks, SftTrainShardsTheGlobalBatch) {
  auto rng = make_engine(5, {1});
  std::vector<SFTExample> data;
  for (int i = 0; i < 12; ++i) data.push_back({ids(rng, 2 + i % 3), ids(rng, 1 + i % 5)});
  SFTConfig one_cfg;
  one_cfg.optimizer = opt_cfg();
  one_cfg.per_device_train_batch_size = 4;
  auto one_model = test::tiny_model("llama", 1);
  SFTTrainer one(one_model, one_cfg);
  const auto one_m = one.train(data);
  ASSERT_EQ(one_m.size(), 3u);

  const int port = free_port();
  // Built before the threads start: initialization draws from torch's global generator.
  // Rank 1 starts from other weights on purpose: the trainer's broadcast fixes them.
  std::vector<std::shared_ptr<model::CausalLM>> models{test::tiny_model("llama", 1), test::tiny_model("llama", 2)};
  std::vector<std::future<std::pair<std::vector<metrics::Scalars>, double>>> fs;
  for (int r = 0; r < 2; ++r) {
    fs.push_back(std::async(std::launch::async, [&, r] {
      auto w = thread_world(r, 2, port, 4096);  // small buckets: several per step
      SFTConfig c = one_cfg;
      c.per_device_train_batch_size = 2;
      auto m = models[r];
      SFTTrainer t(m, c, w);
      auto out = t.train(data);
      // The all-reduce overlapped the backward pass: buckets started before it ended.
      const auto [during, total] = t.optimizer().overlapped_buckets();
      EXPECT_GT(total, 3);
      EXPECT_GT(during, 0);
      EXPECT_LE(during, total);
      return std::make_pair(out, max_diff(*m, *one_model));
    }));
  }
  for (auto& f : fs) {
    const auto [m, diff] = f.get();
    ASSERT_EQ(m.size(), 3u);
    for (size_t s = 0; s < 3; ++s) {
      EXPECT_NEAR(m[s].at("loss"), one_m[s].at("loss"), 1e-5);
      EXPECT_NEAR(m[s].at("num_tokens"), one_m[s].at("num_tokens"), 0);
      EXPECT_NEAR(m[s].at("grad_norm"), one_m[s].at("grad_norm"), 1e-5);
    }
    EXPECT_LE(diff, 1e-5);
  }
}

TEST(ThreadRanks, Zero1ShardsTheMomentsAndMatchesOneProcess) {
  auto rng = make_engine(6, {3});
  std::vector<SFTExample> data;
  for (int i = 0; i < 8; ++i) data.push_back({ids(rng, 3), ids(rng, 1 + i % 4)});
  SFTConfig cfg;
  cfg.optimizer = opt_cfg();
  cfg.per_device_train_batch_size = 4;
  auto one_model = test::tiny_model("qwen2", 1);
  SFTTrainer one(one_model, cfg);
  one.train(data);
  const size_t num_params = one_model->parameters().size();

  const int port = free_port();
  std::vector<std::shared_ptr<model::CausalLM>> models{test::tiny_model("qwen2", 1), test::tiny_model("qwen2", 1)};
  std::vector<std::future<std::pair<size_t, double>>> fs;
  for (int r = 0; r < 2; ++r) {
    fs.push_back(std::async(std::launch::async, [&, r] {
      auto w = thread_world(r, 2, port);
      SFTConfig c = cfg;
      c.per_device_train_batch_size = 2;
      c.optimizer.zero_stage = 1;
      SFTTrainer t(models[r], c, w);
      t.train(data);
      return std::make_pair(t.optimizer().adamw().state().size(), max_diff(*models[r], *one_model));
    }));
  }
  size_t states = 0;
  for (auto& f : fs) {
    const auto [n, diff] = f.get();
    EXPECT_GT(n, 0u);
    EXPECT_LT(n, num_params);  // only this rank's share
    states += n;
    EXPECT_LE(diff, 1e-5);
  }
  EXPECT_EQ(states, num_params);
}

TEST(ThreadRanks, DpoStepMatchesOneProcess) {
  auto rng = make_engine(9, {2});
  std::vector<PreferencePair> pairs;
  for (int i = 0; i < 6; ++i) pairs.push_back({ids(rng, 3), ids(rng, 2 + i % 3), ids(rng, 1 + i % 4)});
  DPOConfig c;
  c.optimizer = opt_cfg();
  c.per_device_train_batch_size = 2;
  auto one_model = test::tiny_model("llama", 3);
  DPOTrainer one(one_model, nullptr, c);
  const auto m1 = one.step(pairs);
  const auto m2 = one.step(pairs);

  const int port = free_port();
  std::vector<std::shared_ptr<model::CausalLM>> models{test::tiny_model("llama", 3), test::tiny_model("llama", 4)};
  std::vector<std::future<double>> fs;
  for (int r = 0; r < 2; ++r) {
    fs.push_back(std::async(std::launch::async, [&, r] {
      auto w = thread_world(r, 2, port);
      auto m = models[r];
      DPOTrainer t(m, nullptr, c, w);
      const auto mine = dist::shard(pairs, *w);
      const auto a = t.step(mine);
      const auto b = t.step(mine);
      EXPECT_NEAR(a.at("loss"), m1.at("loss"), 1e-5);
      EXPECT_NEAR(b.at("loss"), m2.at("loss"), 1e-5);
      EXPECT_NEAR(b.at("rewards/margins"), m2.at("rewards/margins"), 1e-5);
      return max_diff(*m, *one_model);
    }));
  }
  for (auto& f : fs) EXPECT_LE(f.get(), 1e-5);
}

// DPO with LoRA over two ranks: the reference is the base with the adapters off (no copy), the
// optimizer (and so the gradient all-reduce) holds the adapters only, and the result equals one
// process on the global batch.
TEST(ThreadRanks, LoraDpoMatchesOneProcessAndSyncsOnlyAdapters) {
  auto rng = make_engine(9, {3});
  std::vector<PreferencePair> pairs;
  for (int i = 0; i < 6; ++i) pairs.push_back({ids(rng, 3), ids(rng, 2 + i % 3), ids(rng, 1 + i % 4)});
  DPOConfig c;
  c.optimizer = opt_cfg();
  c.per_device_train_batch_size = 2;
  model::LoraConfig lc;
  lc.r = 4;
  lc.target_modules = {"all-linear"};
  // Built before the threads start (A's initialization draws from torch's global generator).
  auto adapted = [&](uint64_t base_seed) {
    auto m = test::tiny_model("llama", base_seed);
    torch::manual_seed(11);
    model::add_lora(*m, lc);
    return m;
  };
  auto one_model = adapted(3);
  DPOTrainer one(one_model, nullptr, c);
  EXPECT_EQ(one.optimizer().params().size(), model::lora_parameters(*one_model).size());
  one.step(pairs);
  const auto m2 = one.step(pairs);
  EXPECT_GT(m2.at("rewards/margins"), -1e9);

  const int port = free_port();
  std::vector<std::shared_ptr<model::CausalLM>> models{adapted(3), adapted(4)};  // rank 1's base differs: broadcast
  std::vector<std::future<double>> fs;
  for (int r = 0; r < 2; ++r) {
    fs.push_back(std::async(std::launch::async, [&, r] {
      auto w = thread_world(r, 2, port);
      auto m = models[static_cast<size_t>(r)];
      DPOTrainer t(m, nullptr, c, w);
      EXPECT_EQ(t.optimizer().params().size(), model::lora_parameters(*m).size());
      const auto mine = dist::shard(pairs, *w);
      t.step(mine);
      const auto b = t.step(mine);
      EXPECT_NEAR(b.at("loss"), m2.at("loss"), 1e-5);
      EXPECT_NEAR(b.at("rewards/margins"), m2.at("rewards/margins"), 1e-5);
      return max_diff(*m, *one_model);
    }));
  }
  for (auto& f : fs) EXPECT_LE(f.get(), 1e-5);
}

TEST(ThreadRanks, NamedReductionSumsAndMaximaByName) {
  const int port = free_port();
  std::vector<std::future<std::vector<double>>> fs;
  for (int r = 0; r < 2; ++r) {
    fs.push_back(std::async(std::launch::async, [&, r] {
      auto w = thread_world(r, 2, port);
      dist::NamedReduction s;
      // Declared in different orders on the two ranks: the exchange is by name.
      if (r == 0)
        s.declare("b"), s.declare("a"), s.declare("hi", dist::NamedReduction::Op::kMax);
      else
        s.declare("hi", dist::NamedReduction::Op::kMax), s.declare("a"), s.declare("b");
      s.add("a", 1.0 + r);
      s.add("b", 10.0 * (r + 1));
      if (r == 1) s.raise("hi", 7.0);  // rank 0 contributes nothing: -inf
      s.reduce(w.get(), "test sums");
      return std::vector<double>{s["a"], s["b"], s["hi"]};
    }));
  }
  for (auto& f : fs) EXPECT_EQ(f.get(), (std::vector<double>{3.0, 30.0, 7.0}));
  dist::NamedReduction s;
  s.declare("a");
  EXPECT_THROW(s.add("typo", 1.0), Error);
  EXPECT_THROW(s.raise("a", 1.0), Error);  // declared as a sum
  EXPECT_THROW(s.declare("a"), Error);
}

// DAPO dynamic sampling across ranks: every group of rank 0 has zero reward variance (its
// replacements too), rank 1's groups are informative. Rank 0 joins every collective with an
// empty batch: both ranks finish the step with the same weights and the same global metrics.
TEST(ThreadRanks, GrpoRankWhoseGroupsAreAllDroppedStillJoins) {
  auto reward = rewards::make_function_reward("flat_or_odd", [](const rewards::Group& g) {
    std::vector<double> out;
    for (const auto& s : g.samples) {
      double odd = 0;
      for (auto id : s.completion_ids) odd += id % 2;
      out.push_back(g.prompt.rfind("flat", 0) == 0 ? 1.0 : odd);
    }
    return out;
  });
  const int port = free_port();
  std::vector<std::shared_ptr<model::CausalLM>> models{test::tiny_model("llama", 4), test::tiny_model("llama", 4)};
  std::vector<std::future<metrics::Scalars>> fs;
  for (int r = 0; r < 2; ++r) {
    fs.push_back(std::async(std::launch::async, [&, r] {
      auto w = thread_world(r, 2, port);
      GRPOConfig c;
      c.sampling.num_samples = 4;
      c.sampling.max_new_tokens = 5;
      c.max_resample_rounds = 2;
      c.optimizer = opt_cfg();
      rewards::RewardPipeline pipe;
      pipe.add(reward);
      GRPOTrainer t(models[static_cast<size_t>(r)], pipe, c, w);
      const std::string kind = r == 0 ? "flat" : "odd";
      std::vector<PromptExample> prompts = {{{1, 2, 3}, kind + "0", nullptr}, {{4, 5}, kind + "1", nullptr}};
      auto more = [&](int64_t n) {
        std::vector<PromptExample> v;
        for (int64_t i = 0; i < n; ++i) v.push_back({{6, 7}, kind + "-refill", nullptr});
        return v;
      };
      return t.step(prompts, more).metrics;
    }));
  }
  const auto m0 = fs[0].get(), m1 = fs[1].get();
  EXPECT_EQ(max_diff(*models[0], *models[1]), 0.0);
  EXPECT_EQ(m0.at("dropped_groups"), 2.0 + 2.0 + 2.0);  // 2 prompts, then 2 refill rounds of 2
  for (const char* k : {"loss", "reward", "kl", "entropy", "dropped_groups", "completions/mean_length",
                        "completions/max_length", "completions/min_length", "rewards/flat_or_odd/mean", "num_tokens"})
    EXPECT_EQ(m0.at(k), m1.at(k)) << k;
  EXPECT_EQ(m0.at("frac_reward_zero_std"), 0.0);  // only rank 1's kept groups are reported
}

}  // namespace
}  // namespace selfrl::trainers
