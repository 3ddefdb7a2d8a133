// Where a GRPO step's time goes: generation / scoring / log-probs / update, from the trainer's
// own time/* metrics, for a tiny-recipe-sized setup (the scale the CPU demo trains at): a
// Llama of hidden 256, 4 layers, vocab 512; 8 prompts × num_generations 8, up to 32 new tokens;
// consensus reward (last number of the completion), beta 0, μ = 1.
//
//   bench_grpo_step [--prompts 8] [--generations 8] [--max-new 32] [--runs 5] [--threads 2] [--beta 0]
//                   [--lora-r 0] [--lora-merge 0] [--stop-every 0] [--padding-free 0|1]
//                   [--gen-batch ROWS] [--continuous 0|1]
//
// Prints the median of each time/* metric over --runs steps after one warm-up step, the
// trainable parameters, the AdamW state they need (2 float32 moments each) and the process's
// peak RSS. --lora-r R > 0 trains LoRA adapters (all-linear, lora_alpha = 2R) on the frozen base;
// --lora-merge 1 generates with them merged into the weights (model::LoraMerged).
// --stop-every K > 0 makes every K-th token id a stop id (0, K, 2K, ...), so completions end at
// mixed lengths (about K tokens on average for the untrained model) and the training batch holds
// padding, as real GRPO batches do; --padding-free 1 trains on packed rows instead
// (trainers::pack_padding_free). --gen-batch sets generation_batch_size (default: all rows of the
// step in one wave); --continuous 1 turns on continuous batching in the rollout engine.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <sys/resource.h>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include "selfrl/model/causal_lm.h"
#include "selfrl/model/lora.h"
#include "selfrl/rewards/builtin_rewards.h"
#include "selfrl/trainers/grpo_trainer.h"

int main(int argc, char** argv) {
  int64_t prompts = 8, generations = 8, max_new = 32, runs = 5, threads = 2, lora_r = 0, stop_every = 0, gen_batch = 0;
  bool lora_merge = false, padding_free = false, continuous = false;
  double beta = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--beta") {
      beta = std::stod(argv[i + 1]);
      continue;
    }
    const int64_t v = std::stoll(argv[i + 1]);
    if (a == "--prompts")
      prompts = v;
    else if (a == "--generations")
      generations = v;
    else if (a == "--max-new")
      max_new = v;
    else if (a == "--runs")
      runs = v;
    else if (a == "--threads")
      threads = v;
    else if (a == "--lora-r")
      lora_r = v;
    else if (a == "--lora-merge")
      lora_merge = v != 0;
    else if (a == "--stop-every")
      stop_every = v;
    else if (a == "--padding-free")
      padding_free = v != 0;
    else if (a == "--gen-batch")
      gen_batch = v;
    else if (a == "--continuous")
      continuous = v != 0;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  at::set_num_threads(static_cast<int>(threads));
  nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}},
                      {"model_type", "llama"},
                      {"vocab_size", 512},
                      {"hidden_size", 256},
                      {"intermediate_size", 704},
                      {"num_hidden_layers", 4},
                      {"num_attention_heads", 4},
                      {"num_key_value_heads", 4},
                      {"max_position_embeddings", 256},
                      {"rms_norm_eps", 1e-5},
                      {"rope_theta", 10000.0},
                      {"tie_word_embeddings", true}};
  auto model = selfrl::model::CausalLM::from_config(selfrl::io::ModelConfig::from_json(j), 0);
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  if (lora_r > 0) {
    selfrl::model::LoraConfig lc;
    lc.r = lora_r;
    lc.lora_alpha = 2.0 * static_cast<double>(lora_r);
    lc.target_modules = {"all-linear"};
    selfrl::model::add_lora(*model, lc);
  }
  int64_t trainable = 0;
  for (const auto& p : model->parameters()) trainable += p.requires_grad() ? p.numel() : 0;

  selfrl::rewards::RewardPipeline rewards;
  rewards.add(selfrl::rewards::make_consensus_reward(selfrl::rewards::AnswerExtractor::create("last_number")));
  selfrl::trainers::GRPOConfig cfg;
  cfg.sampling.num_samples = generations;
  cfg.sampling.max_new_tokens = max_new;
  cfg.generation_batch_size = gen_batch > 0 ? gen_batch : prompts * generations;
  cfg.continuous_batching = continuous;
  cfg.loss.beta = beta;
  cfg.merge_lora_for_generation = lora_merge;
  cfg.padding_free = padding_free;
  for (int64_t id = 0; stop_every > 0 && id < 512; id += stop_every) cfg.sampling.stop_token_ids.push_back(id);
  cfg.optimizer.learning_rate = 1e-5;
  cfg.optimizer.total_steps = runs + 1;
  selfrl::trainers::GRPOTrainer trainer(model, std::move(rewards), cfg);
  std::vector<selfrl::trainers::PromptExample> batch(prompts);
  for (int64_t p = 0; p < prompts; ++p)
    for (int64_t t = 0; t < 12; ++t) batch[p].prompt_ids.push_back((p * 37 + t * 11) % 512);

  std::map<std::string, std::vector<double>> times;
  for (int64_t r = 0; r < runs + 1; ++r) {
    const auto res = trainer.step(batch);
    if (r == 0) continue;
    for (const auto& [k, v] : res.metrics)
      if (k.rfind("time/", 0) == 0 || k.rfind("completions/", 0) == 0) times[k].push_back(v);
  }
  nlohmann::json out = {{"bench", "grpo_step"},
                        {"params", params},
                        {"prompts", prompts},
                        {"num_generations", generations},
                        {"max_completion_length", max_new},
                        {"threads", threads},
                        {"beta", beta},
                        {"lora_r", lora_r},
                        {"lora_merge", lora_merge},
                        {"stop_every", stop_every},
                        {"padding_free", padding_free},
                        {"generation_batch_size", cfg.generation_batch_size},
                        {"continuous_batching", continuous},
                        {"trainable_params", trainable},
                        {"adamw_state_bytes", trainable * 8},
                        {"runs", runs}};
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  out["peak_rss_mib"] = static_cast<double>(ru.ru_maxrss) / 1024.0;
  for (auto& [k, v] : times) {
    std::sort(v.begin(), v.end());
    out[k] = v[v.size() / 2];
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
