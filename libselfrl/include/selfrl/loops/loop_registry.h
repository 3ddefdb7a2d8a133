// The loop registry: every run kind `trainer:` / `loop:` can name, with its factory. Built-ins
// register next to their code (grpo_loop.cpp, supervised_runs.cpp, star.cpp, bstar.cpp,
// preference_loops.cpp, knowrl_loop.cpp); a program that links libselfrl registers its own
// before reading a recipe, and `loop: my_loop` then runs it (also under mpirun):
//
//   selfrl::loops::register_loop({"best_of_n", "SFT on the most self-certain of N samples",
//       [](const selfrl::loops::TrainConfig&) { return std::make_unique<BestOfN>(); },
//       /*reads_keys_of=*/"rest_em"});
//
// A program's loop reads the recipe keys of the built-in kind it names in reads_keys_of (the
// generation, optimizer and data keys, e.g. rest_em's) plus its own section `best_of_n.*`,
// handed over unvalidated as TrainConfig::loop_args (JSON). Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "selfrl/loops/self_improvement_loop.h"
#include "selfrl/loops/train_config.h"

namespace selfrl::loops {

using LoopFactory = std::function<std::unique_ptr<SelfImprovementLoop>(const TrainConfig&)>;

struct LoopInfo {
  std::string name;  // what `loop:` (or `trainer:`) names
  std::string doc;
  LoopFactory factory;
  std::string reads_keys_of;  // a built-in kind whose recipe keys this loop reads ("" = its own: built-ins)
  bool trainer = false;       // grpo, sft, dpo: also accepted as `trainer:`
  bool builtin = false;
};

// Registers (or replaces a program's) loop. Built-in names cannot be replaced.
void register_loop(LoopInfo info);
bool unregister_loop(const std::string& name);
// Built-ins in their documented order, then a program's loops in registration order.
std::vector<LoopInfo> registered_loops();
std::optional<LoopInfo> find_loop(const std::string& name);

// Registers a built-in at load time: `static const RegisterLoop r({...});`
struct RegisterLoop {
  explicit RegisterLoop(LoopInfo info) {
    info.builtin = true;
    register_loop(std::move(info));
  }
};

}  // namespace selfrl::loops
