// Training checkpoints that survive faults: output_dir/checkpoint-STEP/ holds
//
//   config.json, model.safetensors (or shards + index)  Hugging Face model (save_pretrained)
//   tokenizer files                                       copied from SaveOptions::tokenizer_dir
//   optimizer.safetensors                                 AdamW moments by parameter name
//   rng.safetensors                                       every rank's torch CPU (and CUDA) generator state
//   trainer_state.json                                    step, data position, scheduler, optimizer
//                                                         counters, world size, `extra` (loop / controller state)
//   COMPLETE                                              written last: every file with its size
//
// The directory is written as checkpoint-STEP.tmp-<pid>, every file fsynced, then renamed in
// one step and the parent directory fsynced; a crash leaves either no checkpoint-STEP or a
// complete one. find_latest_complete() skips (with a warning) directories without COMPLETE,
// with files whose sizes differ from it or whose safetensors headers do not parse.
//
// In a distributed world save() and load() are collective: every rank passes its RNG state,
// rank 0 alone writes, and every rank reads the same directory (a shared filesystem).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "selfrl/model/causal_lm.h"
#include "selfrl/trainers/optimizer.h"

namespace selfrl::dist {
class World;
}

namespace selfrl::checkpoint {

struct TrainerState {
  int64_t step = 0;           // optimizer/trainer steps completed
  int64_t data_position = 0;  // how far the data stream got (the caller's unit: steps, prompts, rows)
  nlohmann::json extra = nlohmann::json::object();  // loop iteration, B-STaR temperature, ...
};

struct SaveOptions {
  std::string tokenizer_dir;  // tokenizer files copied from here when set
  int keep_last = 0;          // keep the newest K complete checkpoints (0: keep all)
};

// Writes output_dir/checkpoint-<state.step>/ and returns its path. A collective in a
// distributed world (pass the world the optimizer uses).
std::string save(const std::string& output_dir, const model::CausalLM& model, trainers::TrainingOptimizer& optimizer,
                 const TrainerState& state, const SaveOptions& options = {}, dist::World* world = nullptr);

// The newest complete checkpoint under output_dir, or nullopt. Partial or corrupt ones are
// skipped with a warning naming what is wrong.
std::optional<std::string> find_latest_complete(const std::string& output_dir);

// Why `dir` is not a complete checkpoint ("" when it is).
std::string check_complete(const std::string& dir);

// Restores the weights, the AdamW moments and counters, and this rank's RNG state; returns
// the trainer state. Throws Error when the checkpoint does not match the model or world.
TrainerState load(const std::string& checkpoint_dir, model::CausalLM& model, trainers::TrainingOptimizer& optimizer,
                  dist::World* world = nullptr);

}  // namespace selfrl::checkpoint
