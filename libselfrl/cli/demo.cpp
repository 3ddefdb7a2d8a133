// `selfrl demo`: the embedded end-to-end demo (see selfrl/demo/demo_pipeline.h) — a tiny Llama
// trained from scratch on a labelled seed set, then improved with no labels (TTRL, Intuitor,
// ReST-EM, KnowRL-style introspection). Prints the per-stage table; writes runs/demo/.
#include <cstdio>

#include "command.h"
#include "selfrl/core/error.h"
#include "demo/demo_pipeline.h"

namespace selfrl::cli {

namespace {

int run_demo_command(const std::vector<std::string>& raw_args) {
  // --set KEY=VALUE (repeatable) sets any knob of DemoConfig; the parser takes the rest.
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> knobs;
  for (size_t i = 0; i < raw_args.size(); ++i) {
    std::string kv;
    if (raw_args[i] == "--set") {
      if (i + 1 >= raw_args.size()) throw Error("option --set needs a value (KEY=VALUE)").at("selfrl demo");
      kv = raw_args[++i];
    } else if (raw_args[i].rfind("--set=", 0) == 0) {
      kv = raw_args[i].substr(6);
    } else {
      args.push_back(raw_args[i]);
      continue;
    }
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error("--set expects KEY=VALUE, got \"" + kv + "\"").at("selfrl demo").hint("e.g. --set task.num_seed=300");
    knobs.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  std::string knob_list;
  for (const auto& k : demo::DemoConfig::knob_names()) knob_list += (knob_list.empty() ? "" : ", ") + k;
  ArgParser p(
      "selfrl demo",
      "Train a tiny Llama on a small labelled seed set of additions, then improve it without labels "
      "(TTRL consensus GRPO, Intuitor self-certainty GRPO, ReST-EM iterations on voted pseudo-labels, KnowRL-style "
      "introspection); evaluate every stage on held-out items and print the table.");
  p.option("--out", "DIR", "output directory (data/, base/, one model dir per stage, summary.json, curves.svg)",
           "runs/demo");
  p.option("--seed", "S", "run seed (data, initialization, sampling)", "0");
  p.option("--threads", "N", "intra-op threads (1 is fastest for this tiny model on a busy machine)", "1");
  p.flag("--quick", "tiny sizes everywhere (a smoke run of a few seconds; numbers are meaningless)");
  p.flag("--quiet", "no progress lines on stderr");
  // Knobs: unset keeps the documented run's value (--quick: the tiny one's), shown in --help.
  const demo::DemoConfig d;
  auto num = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", v);
    return std::string(buf);
  };
  auto knob = [&](const char* name, const char* metavar, const std::string& help, const std::string& value) {
    p.option(name, metavar, help + " (the documented run: " + value + ")");
  };
  knob("--sft-epochs", "N", "epochs of seed SFT", std::to_string(d.sft_epochs));
  knob("--grpo-steps", "N", "steps of each unlabelled GRPO stage", std::to_string(d.grpo_steps));
  knob("--grpo-lr", "LR",
       "learning rate of the GRPO stages (TTRL, Borda; self-certainty: --set intuitor_learning_rate)",
       num(d.grpo_learning_rate));
  knob("--rest-pool", "N", "unlabelled prompts sampled by each ReST-EM iteration", std::to_string(d.rest_pool));
  knob("--num-seed", "N", "labelled seed items", std::to_string(d.task.num_seed));
  knob("--rest-iterations", "N", "ReST-EM iterations", std::to_string(d.rest_iterations));
  knob("--sft-lr", "LR", "learning rate of the seed SFT", num(d.sft_learning_rate));
  knob("--hidden", "N", "hidden size of the model", std::to_string(d.hidden_size));
  knob("--layers", "N", "decoder layers", std::to_string(d.num_hidden_layers));
  p.option("--set", "KEY=VALUE", "set any knob (repeatable), one of: " + knob_list);
  if (!p.parse(args)) return 0;

  demo::DemoConfig cfg;
  if (p.get_flag("--quick")) cfg.make_quick();
  cfg.out_dir = p.get("--out");
  cfg.seed = static_cast<uint64_t>(p.get_int("--seed"));
  cfg.threads = static_cast<int>(p.get_int_in("--threads", 0, kMaxCliThreads));
  cfg.verbose = !p.get_flag("--quiet");
  auto set_int = [&](const char* name, int64_t& field) {
    if (p.get_opt(name)) field = p.get_int(name);
  };
  set_int("--sft-epochs", cfg.sft_epochs);
  set_int("--grpo-steps", cfg.grpo_steps);
  set_int("--rest-pool", cfg.rest_pool);
  set_int("--rest-iterations", cfg.rest_iterations);
  set_int("--num-seed", cfg.task.num_seed);
  set_int("--hidden", cfg.hidden_size);
  set_int("--layers", cfg.num_hidden_layers);
  if (p.get_opt("--sft-lr")) cfg.sft_learning_rate = p.get_double("--sft-lr");
  if (p.get_opt("--grpo-lr")) cfg.grpo_learning_rate = p.get_double("--grpo-lr");
  for (const auto& [k, v] : knobs) cfg.set(k, v);

  const auto result = demo::run_demo(cfg);
  std::printf("\nselfrl demo (seed %llu%s): held-out accuracy on %s/data/%s.jsonl, maj@%lld at T=%.1f\n\n",
              static_cast<unsigned long long>(cfg.seed), cfg.quick ? ", --quick" : "", cfg.out_dir.c_str(),
              cfg.eval_on_dev ? "eval_dev" : "eval_test", static_cast<long long>(cfg.eval.k), cfg.eval.temperature);
  std::printf("%s", demo::format_table(result).c_str());
  std::printf("wrote %s/{summary.json,curves.svg}\n", cfg.out_dir.c_str());
  return 0;
}

const CommandRegistrar kRegistrar{
    {"demo", "the tiny end-to-end self-improvement demo (no downloads)", run_demo_command}};

}  // namespace

}  // namespace selfrl::cli
