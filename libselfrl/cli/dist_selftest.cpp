// `selfrl dist-selftest`: a self-contained data-parallel training run on a tiny random model,
// for the distributed tests (label `distributed`) and for checking a cluster setup:
//
//   mpirun -np 2 selfrl dist-selftest --trainer sft --steps 4 --out /tmp/run
//
// It builds a tiny Llama from a fixed seed, makes a synthetic dataset, shards each global
// batch over the ranks, trains with SFTTrainer or GRPOTrainer through dist::World, and writes
// (rank 0) losses.json and final.safetensors into --out. Checkpoints every --save-every steps;
// --resume continues from the newest complete one. Fault injection: --die-rank / --stall-rank
// with --fault-step, --kill-self-at-step (SIGKILL the whole process after that step).
#include <torch/torch.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "command.h"
#include "selfrl/core/error.h"
#include "selfrl/core/logging.h"
#include "selfrl/core/seed.h"
#include "selfrl/dist/world.h"
#include "selfrl/io/model_config.h"
#include "selfrl/io/safetensors.h"
#include "selfrl/rewards/reward.h"
#include "selfrl/rewards/reward_pipeline.h"
#include "selfrl/trainers/checkpoint.h"
#include "selfrl/trainers/grpo_trainer.h"
#include "selfrl/trainers/sft_trainer.h"

namespace selfrl::cli {
namespace {

constexpr int64_t kVocab = 61;

std::shared_ptr<model::CausalLM> tiny_model(uint64_t seed) {
  nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}},
                      {"model_type", "llama"},
                      {"vocab_size", kVocab},
                      {"hidden_size", 32},
                      {"intermediate_size", 48},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 4},
                      {"num_key_value_heads", 2},
                      {"max_position_embeddings", 128},
                      {"rms_norm_eps", 1e-5},
                      {"rope_theta", 10000.0},
                      {"tie_word_embeddings", false},
                      {"initializer_range", 0.2},
                      {"eos_token_id", 0},
                      {"pad_token_id", 0}};
  return model::CausalLM::from_config(io::ModelConfig::from_json(j, "dist-selftest"), seed);
}

std::vector<int64_t> random_ids(std::mt19937_64& rng, int64_t lo_len, int64_t hi_len) {
  const int64_t n = lo_len + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi_len - lo_len + 1));
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(1 + static_cast<int64_t>(rng() % (kVocab - 1)));
  return ids;
}

void write_outputs(const std::string& out, const model::CausalLM& m, const std::vector<double>& losses) {
  std::filesystem::create_directories(out);
  io::save_safetensors(out + "/final.safetensors", m.hf_state_dict());
  std::ofstream f(out + "/losses.json");
  f << nlohmann::json(losses).dump() << "\n";
}

int run_selftest(const std::vector<std::string>& args) {
  ArgParser p("selfrl dist-selftest", "Data-parallel training of a tiny random model (distributed tests).");
  p.option("--trainer", "sft|grpo", "which trainer", "sft");
  p.option("--steps", "N", "optimizer steps", "4");
  p.option("--global-batch", "B", "examples (sft) or prompts (grpo) per global step", "8");
  p.option("--grad-accum", "K", "gradient_accumulation_steps", "1");
  p.option("--loss-type", "T", "GRPO loss_type", "dapo");
  p.option("--scale-rewards", "S", "GRPO scale_rewards", "group");
  p.option("--top-k", "K", "GRPO sampling top_k (1: the same rollouts whatever the seed)", "0");
  p.option("--seed", "S", "run seed", "7");
  p.option("--zero", "STAGE", "0, or 1 for AdamW moments sharded over the ranks (ZeRO-1)", "0");
  p.option("--out", "DIR", "output directory (losses.json, final.safetensors, checkpoints)");
  p.option("--save-every", "K", "checkpoint every K steps (0: never)", "0");
  p.option("--keep-last", "K", "checkpoints to keep", "2");
  p.flag("--resume", "continue from the newest complete checkpoint in --out");
  p.option("--timeout-ms", "MS", "collective timeout", "60000");
  p.option("--fault-step", "S", "step at which --die-rank / --stall-rank act", "-1");
  p.option("--die-rank", "R", "this rank SIGKILLs itself at --fault-step", "-1");
  p.option("--stall-rank", "R", "this rank sleeps forever at --fault-step", "-1");
  p.option("--kill-self-at-step", "S", "SIGKILL the process after step S completes (and its checkpoint)", "-1");
  p.option("--step-sleep-ms", "MS", "sleep after every step (lets a test kill the run mid-way)", "0");
  if (!p.parse(args)) return 0;

  at::set_num_threads(1);
  dist::WorldOptions wo;
  wo.timeout = std::chrono::milliseconds(p.get_int("--timeout-ms"));
  auto world = dist::World::from_environment(wo);
  const std::string trainer = p.get("--trainer");
  const int64_t steps = p.get_int("--steps"), global_batch = p.get_int("--global-batch");
  const uint64_t seed = static_cast<uint64_t>(p.get_int("--seed"));
  const std::string out = p.get("--out");
  const int64_t save_every = p.get_int("--save-every");
  const int64_t fault_step = p.get_int("--fault-step");
  seed_everything(seed, world->rank());

  // Rank 0's random init reaches every rank through the trainers' broadcast; the other ranks
  // start from a different seed on purpose, so that the broadcast is exercised.
  auto model = tiny_model(seed + static_cast<uint64_t>(world->rank()));
  trainers::OptimizerConfig oc;
  oc.learning_rate = 1e-2;
  oc.weight_decay = 0.01;
  oc.max_grad_norm = 1.0;
  oc.warmup_steps = 1;
  oc.total_steps = steps;
  oc.zero_stage = static_cast<int>(p.get_int("--zero"));

  std::unique_ptr<trainers::SFTTrainer> sft;
  std::unique_ptr<trainers::GRPOTrainer> grpo;
  trainers::TrainingOptimizer* opt = nullptr;
  if (trainer == "sft") {
    trainers::SFTConfig c;
    c.optimizer = oc;
    c.gradient_accumulation_steps = p.get_int("--grad-accum");
    c.per_device_train_batch_size = std::max<int64_t>(1, global_batch / world->size() / c.gradient_accumulation_steps);
    c.seed = seed;
    sft = std::make_unique<trainers::SFTTrainer>(model, c, world);
    opt = &sft->optimizer();
  } else if (trainer == "grpo") {
    trainers::GRPOConfig c;
    c.optimizer = oc;
    c.sampling.num_samples = 4;
    c.sampling.max_new_tokens = 6;
    c.sampling.top_k = p.get_int("--top-k");
    c.loss.loss_type = trainers::parse_grpo_loss_type(p.get("--loss-type"));
    c.loss.beta = 0.04;
    c.scale_rewards = trainers::parse_scale_rewards(p.get("--scale-rewards"));
    c.gradient_accumulation_steps = p.get_int("--grad-accum");
    c.seed = seed;
    rewards::RewardPipeline rp;
    // Depends on the sample's index too, so that identical (top_k = 1) completions still get
    // different rewards and non-zero advantages.
    rp.add(rewards::make_function_reward("selftest", [](const rewards::Group& g) {
      std::vector<double> s;
      for (size_t j = 0; j < g.samples.size(); ++j) {
        int64_t sum = 0;
        for (auto id : g.samples[j].completion_ids) sum += id % 7;
        s.push_back(static_cast<double>((sum + 3 * static_cast<int64_t>(j)) % 5) / 4.0);
      }
      return s;
    }));
    grpo = std::make_unique<trainers::GRPOTrainer>(model::Policy{model, nullptr, {0}}, rp, c, world);
    opt = &grpo->optimizer();
  } else {
    throw Error("unknown --trainer '" + trainer + "'").hint("use sft or grpo");
  }

  // Synthetic data, the same on every rank; each global batch is sharded by rank.
  auto rng = make_engine(seed, {12345});
  const int64_t num_rows = steps * global_batch;
  std::vector<trainers::SFTExample> sft_rows;
  std::vector<trainers::PromptExample> prompt_rows;
  for (int64_t i = 0; i < num_rows; ++i) {
    trainers::SFTExample e{random_ids(rng, 2, 6), random_ids(rng, 1, 7)};
    sft_rows.push_back(e);
    trainers::PromptExample pe;
    pe.prompt_ids = e.prompt_ids;
    pe.prompt_text = "row " + std::to_string(i);
    prompt_rows.push_back(pe);
  }

  int64_t start = 0;
  std::vector<double> losses;
  if (p.get_flag("--resume")) {
    if (auto ckpt = checkpoint::find_latest_complete(out)) {
      const auto st = checkpoint::load(*ckpt, *model, *opt, world.get());
      start = st.data_position;
      losses = st.extra.at("losses").get<std::vector<double>>();
      if (sft) sft->resume_at(st.step);
      if (grpo) {
        grpo->set_global_step(st.step);
        grpo->set_num_tokens_seen(st.extra.at("num_tokens").get<double>());
      }
      if (world->is_main()) std::fprintf(stderr, "resumed from %s at step %lld\n", ckpt->c_str(), (long long)start);
    }
  }

  for (int64_t s = start; s < steps; ++s) {
    if (s == fault_step && world->rank() == p.get_int("--die-rank")) ::kill(::getpid(), SIGKILL);
    if (s == fault_step && world->rank() == p.get_int("--stall-rank")) {
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    double loss = 0;
    if (sft) {
      std::vector<trainers::SFTExample> batch(sft_rows.begin() + s * global_batch,
                                              sft_rows.begin() + (s + 1) * global_batch);
      loss = sft->step(dist::shard(batch, *world)).at("loss");
    } else {
      std::vector<trainers::PromptExample> batch(prompt_rows.begin() + s * global_batch,
                                                 prompt_rows.begin() + (s + 1) * global_batch);
      loss = grpo->step(dist::shard(batch, *world)).metrics.at("loss");
    }
    losses.push_back(loss);
    if (save_every > 0 && (s + 1) % save_every == 0) {
      checkpoint::TrainerState st;
      st.step = s + 1;
      st.data_position = s + 1;
      st.extra = {{"losses", losses}, {"num_tokens", grpo ? grpo->num_tokens_seen() : 0.0}};
      checkpoint::SaveOptions so;
      so.keep_last = static_cast<int>(p.get_int("--keep-last"));
      checkpoint::save(out, *model, *opt, st, so, world.get());
    }
    if (s == p.get_int("--kill-self-at-step")) ::kill(::getpid(), SIGKILL);
    if (const int64_t ms = p.get_int("--step-sleep-ms"); ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  }
  if (world->is_main() && !out.empty()) write_outputs(out, *model, losses);
  world->barrier("end of run");
  return 0;
}

CommandRegistrar reg({"dist-selftest",
                      "(testing) data-parallel training of a tiny random model; see docs/distributed.md",
                      run_selftest});

}  // namespace
}  // namespace selfrl::cli
