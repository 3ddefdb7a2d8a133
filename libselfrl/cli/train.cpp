// `selfrl train RECIPE.yaml [key.sub=value ...]`: runs the trainer or self-improvement loop a
// recipe names (trainer: grpo | sft | dpo, loop: star | rest_em | bstar | self_rewarding_dpo |
// scpo | sec | knowrl). `--list-keys` prints every recipe key as a Markdown table.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>

#include <unistd.h>

#include "command.h"
#include "selfrl/core/error.h"
#include "selfrl/core/interrupt.h"
#include "selfrl/core/progress.h"
#include "selfrl/dist/world.h"
#include "selfrl/loops/run.h"
#include "selfrl/loops/self_improvement_loop.h"
#include "selfrl/loops/train_config.h"
#include "selfrl/recipe/recipe.h"

namespace selfrl::cli {
namespace {

// Preemption: SIGTERM (SLURM / Kubernetes before the kill), SIGUSR1 (SLURM --signal=USR1@T) and
// Ctrl-C ask the run to stop at the next step boundary, where it writes a checkpoint when
// save_steps > 0 and exits; a second signal kills at once.
std::atomic<int> g_stop_signal{0};

extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal.exchange(sig) != 0) {  // the second one: the default action, now
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  static const char msg[] = "\n[selfrl] signal received: stopping after the current step (send it again to kill)\n";
  [[maybe_unused]] auto n = write(2, msg, sizeof msg - 1);
}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGUSR1, SIGINT}) sigaction(sig, &sa, nullptr);
}

std::string escape_cell(std::string s) {
  for (size_t p = 0; (p = s.find('|', p)) != std::string::npos; p += 2) s.replace(p, 1, "\\|");
  return s;
}

int run_train(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  bool list_keys = false, no_progress = false, check = false;
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::printf(
          "usage: selfrl train RECIPE.yaml [key.sub=value ...] [--no-progress] [--check]\n"
          "       selfrl train --list-keys\n\n"
          "--check validates the recipe (keys, types, ranges, extends, paths, reward names), prints the\n"
          "effective value of every key the run reads and where it came from, and exits without training.\n"
          "Runs the trainer (trainer: grpo | sft | dpo) or loop (loop: star | rest_em | bstar |\n"
          "self_rewarding_dpo | scpo | sec | knowrl) the recipe names. Writes OUTPUT_DIR/metrics.jsonl\n"
          "(one line per step and per iteration), TensorBoard event files and OUTPUT_DIR/final (HF\n"
          "model + tokenizer). Overrides use the recipe's dotted key names. docs/recipes.md lists the keys.\n"
          "Launched by mpirun / torchrun / SLURM it trains data-parallel (docs/distributed.md);\n"
          "save_steps / resume_from_checkpoint=auto write and resume output_dir/checkpoint-STEP.\n");
      return 0;
    }
    if (a == "--list-keys")
      list_keys = true;
    else if (a == "--no-progress")
      no_progress = true;
    else if (a == "--check")
      check = true;
    else
      positional.push_back(a);
  }
  if (list_keys) {
    std::printf("| key | type | default | allowed | description |\n|---|---|---|---|---|\n");
    for (const auto& k : loops::all_documented_keys())
      std::printf("| `%s` | %s | %s | %s | %s |\n", k.key.c_str(), k.type.c_str(), escape_cell(k.default_value).c_str(),
                  escape_cell(k.allowed).c_str(), escape_cell(k.doc).c_str());
    return 0;
  }
  if (positional.empty()) throw Error("selfrl train: no recipe given").hint("selfrl train RECIPE.yaml [key=value ...]");
  // Under mpirun / torchrun / SLURM only rank 0 draws progress bars and prints the summary.
  const bool main_rank = dist::detect_launch().rank == 0;
  if (no_progress || !main_rank) ProgressBar::set_enabled_override(0);
  const std::vector<std::string> overrides(positional.begin() + 1, positional.end());
  auto recipe = recipe::Recipe::load(positional[0], overrides);
  const auto cfg = loops::read_train_config(recipe);
  if (check) {
    std::printf("%s: ok (%s %s)\n", positional[0].c_str(), loops::is_loop_kind(cfg.kind) ? "loop" : "trainer",
                cfg.kind.c_str());
    for (const auto& e : recipe.effective())
      std::printf("%s: %s    # %s\n", e.key.c_str(), e.value.c_str(), e.source.c_str());
    return 0;
  }
  install_stop_handlers();
  loops::RunHooks hooks;
  hooks.should_stop = [] { return g_stop_signal.load() != 0; };
  loops::TrainResult result;
  try {
    result = loops::Run(cfg, std::move(hooks)).train();
  } catch (const trainers::CollapseStopped& e) {
    // The collapse guard ended the run (collapse_guard.action: stop | rollback): not an error
    // of the input, not finished either.
    if (main_rank) std::fprintf(stderr, "selfrl train: %s\n", e.what());
    return 3;
  } catch (const Interrupted& e) {
    if (main_rank)
      std::fprintf(stderr, "selfrl train: %s%s\n", e.what(),
                   e.checkpoint_dir().empty() ? "" : "; continue with resume_from_checkpoint=auto");
    return 128 + g_stop_signal.load();  // the shell's "ended by signal N": not finished
  }
  if (!main_rank) return 0;
  std::printf("metrics: %s\n", result.metrics_path.c_str());
  if (!result.plot_path.empty()) std::printf("curves: %s\n", result.plot_path.c_str());
  if (!result.final_model_dir.empty()) std::printf("final model: %s\n", result.final_model_dir.c_str());
  for (const auto& [k, v] : result.last)
    if (k.rfind("eval/", 0) == 0) std::printf("%s = %g\n", k.c_str(), v);
  return 0;
}

CommandRegistrar reg({"train", "run a trainer or self-improvement loop from a YAML recipe", run_train});

}  // namespace
}  // namespace selfrl::cli
