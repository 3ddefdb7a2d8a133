// The embedded demo (`selfrl demo`, `make demo`): from nothing to a tiny Llama that improves
// itself without labels, in a few minutes on two CPU cores.
//
//   data       addition task: labelled seed set (1–3 digits), unlabelled pool and held-out
//              eval_dev / eval_test (1–5 digits)
//   tokenizer  sentencepiece (BPE, split digits) trained in-process on the task text
//   base       a ~1M-parameter Llama SFT-trained on the seed set, plus a self-knowledge warm-up
//              ("Q: a+b ? CAN:" → yes/no) calibrated on a held-back fifth of the seed set
//   ttrl       unlabelled GRPO, consensus (majority-vote) reward               (from base)
//   intuitor   unlabelled GRPO, self-certainty reward                           (from base)
//   rest_em    ReST-EM / STaR iterations: SFT on majority-vote pseudo-labels, an easy-to-hard
//              curriculum (iteration i votes on 4 … 4 + i digits; rest_em_2, … from the previous)
//   introspect KnowRL-style: "CAN" targets from the model's own vote agreement  (from the last)
//
// Every stage is evaluated on eval_test (greedy accuracy, maj@k, self-knowledge F1) and saved
// as a Hugging Face model directory; the run writes summary.json and curves.svg.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "demo/arithmetic_task.h"
#include "demo/evaluation.h"

namespace selfrl::demo {

// The demo's task: sums of up to 5-digit numbers; the labelled seed set has 1–3 digits only
// (weights 1:4:1), the unlabelled pool and the held-out sets all five levels (1:2:3:4:4), so
// 4- and 5-digit items (57 % of the test set) are learnt without labels, one level per round.
TaskConfig default_demo_task();

struct DemoConfig {
  std::string out_dir = "runs/demo";
  uint64_t seed = 0;
  int threads = 1;      // see docs/demo.md: 2 threads are much slower on a shared 2-core machine
  bool quick = false;   // tiny sizes everywhere (tests, smoke runs)
  bool verbose = true;  // progress lines on stderr

  TaskConfig task = default_demo_task();
  // Model (LlamaForCausalLM).
  int64_t hidden_size = 128, intermediate_size = 384, num_hidden_layers = 3, num_attention_heads = 4;
  int vocab_size = 64;  // requested sentencepiece pieces (hard_vocab_limit off)
  // Seed SFT.
  double sft_learning_rate = 3e-3;
  // 80 epochs (~3000 steps): at 40 the base was still far from its seed-only plateau (seed 1:
  // 0.41 at 40 epochs, 0.98 at 80 with the old 1:4:0.25 seed mix), so that any further training,
  // labelled or not, gained (docs/demo.md).
  int64_t sft_epochs = 80, sft_batch_size = 32;
  double calibration_fraction = 0.2;  // of the seed set, held back for the self-knowledge warm-up
  // Unlabelled GRPO (TTRL, Intuitor). 80 steps (40 before 2026-12-02): on the ten AMD bases
  // TTRL's eval_dev gain rose with every run that had room left (docs/demo.md, "Longer GRPO").
  int64_t grpo_steps = 80, grpo_prompts_per_step = 32, num_generations = 8;
  double grpo_learning_rate = 1e-4, grpo_temperature = 1.0;
  // The self-certainty Intuitor stage's learning rate (Borda uses grpo_learning_rate). At 1e-4
  // it collapsed on all ten AMD runs; at 5e-6 on none (eval_dev mean -60.3 -> +2.0 points,
  // docs/demo.md, "A smaller learning rate for the self-certainty Intuitor stage").
  double intuitor_learning_rate = 5e-6;
  // TTRL's own group size and temperature. With the curriculum, 8 samples at T = 1 gained more on
  // eval_dev than 16 at T = 1.5 (+2.5 vs +1.3 points over five seeds, docs/demo.md); before it,
  // 16 at T = 1.5 had been the better choice.
  int64_t ttrl_num_generations = 8;
  double ttrl_temperature = 1.0;
  // The consensus rewards' (TTRL's and Borda's) confidence filter: a group whose winning answer
  // holds less than this share of its samples scores 0 (consensus_min_vote_share; 0: off).
  double ttrl_min_vote_share = 0.0;
  // With the curriculum: how many levels above the seed set the GRPO stages (TTRL, Intuitor) draw
  // their prompts from (1: the next level only; 0: every level above the seed set).
  int64_t grpo_levels = 0;
  double grpo_beta = 0.0;  // KL to the base model (0: no reference model)
  // DAPO's dynamic sampling in the GRPO stages (GRPOConfig::max_resample_rounds): groups whose
  // rewards are all equal are dropped and the step's batch refilled with new prompts, for at
  // most this many extra generation rounds (0: off).
  int64_t grpo_max_resample_rounds = 0;
  // TTRL's (and Borda's) vote also counts num_generations samples of the commuted prompt "b+a"
  // (trainers::PromptExample::vote_prompt_ids), as the ReST-EM rounds' votes do; they are not
  // trained on. On the ten AMD bases it raised TTRL's eval_dev gain from +4.17 to +6.37 points
  // on the mean (worst run −0.3 → +1.0) and Borda's from +3.07 to +5.40 (worst −5.7 → +0.3), for
  // ~3 s per stage (docs/demo.md). Off: the vote is the group's own samples (TTRL as published).
  bool grpo_vote_commuted = true;
  // The intuitor stage's reward: "self_certainty" (Intuitor) or "borda" (answers ranked by
  // self-certainty-weighted votes, Kang et al. 2025: self-certainty combined with consensus).
  std::string intuitor_reward = "self_certainty";
  // ReST-EM.
  // 4, not 3: with the curriculum a fourth round added +2.3 / +1.7 points on eval_dev (seeds 0, 1;
  // docs/demo.md) for about a minute of CPU.
  int64_t rest_iterations = 4;
  int64_t rest_pool = 2000;       // unlabelled prompts sampled per iteration (fresh each time)
  double rest_temperature = 1.0;  // of the voting samples
  double rest_min_vote_share = 0.75;
  int64_t rest_votes = 8;          // samples per prompt for the vote
  bool rest_pool_commuted = true;  // vote over the samples of a+b and of b+a together
  int64_t rest_epochs = 3;
  double rest_learning_rate = 1e-3;
  // Self-knowledge kept through ReST-EM (KnowRL-style introspection in every iteration): this
  // many of the iteration's voted prompts also become "CAN" examples, "yes" where the vote share
  // is >= introspect_yes_share, trained together with the pseudo-labels. 0: none (the ReST-EM
  // iterations then forget the CAN head, docs/demo.md).
  int64_t rest_introspect_pool = 500;
  // Balance those CAN examples: keep as many "no" as "yes" (the first of the larger class in the
  // shuffled order), so that a round whose votes are mostly unconfident cannot teach "no" to all.
  bool rest_introspect_balance = false;
  // Introspection.
  int64_t introspect_pool = 1500;
  double introspect_yes_share = 0.75;  // vote share at or above which the target is "yes"
  int64_t introspect_epochs = 2;
  double introspect_learning_rate = 1e-3;
  // Evaluation.
  EvalOptions eval;
  bool eval_on_dev = false;  // evaluate on eval_dev (for choosing knobs) instead of eval_test
  // Also evaluate every stage on eval_dev (greedy accuracy by difficulty, maj@k) into the stage's
  // notes.eval_dev, so one run serves both choosing knobs (dev) and reporting them (test).
  bool also_eval_dev = false;

  // Easy-to-hard curriculum ("Self-Improving Transformers Overcome Easy-to-Hard and Length
  // Generalization Challenges", Lee et al. 2025): with a seed set that stops at some number of
  // digits L (zero seed weight above it), ReST-EM iteration i votes only on unlabelled items with
  // L + 1 … L + 1 + i digits, so each round pseudo-labels one new level with a model that has
  // just learnt the level below; the GRPO stages (TTRL, Intuitor) draw from the levels above L.
  // Off: every stage draws from the whole unlabelled pool (the demo before 2026-12-01).
  bool curriculum = true;
  // Lee et al.'s length filter (same paper): a self-generated answer counts only when it has the
  // width + 1 digits that the prompt's zero-padded format fixes — in the ReST-EM and introspection
  // votes (a shorter answer casts no vote but stays in the share's denominator) and in the TTRL /
  // Borda consensus (it neither forms nor joins the majority). Uses the prompt, never a label.
  // Off: any run of digits votes (the demo before 2026-12-01).
  bool length_filter = true;

  // A previous run's --out directory, made with the same seed and the same task and model knobs:
  // its base/ model is evaluated and used instead of training a new one (for trying stage knobs
  // without paying for the seed SFT each time). Its data and tokenizer must equal this run's.
  std::string base_from;

  // Which label-free stages run, in order; "base" always runs first. ttrl, rest_em (×
  // rest_iterations) and introspect form a chain, each starting from the previous one (ttrl only
  // with ttrl_in_chain); intuitor and control are branches from base. control: the same SFT as the
  // ReST-EM iterations on the seed set alone (no pseudo-labels), as many steps as all ReST-EM iterations
  // together — what the ReST-EM gain must beat.
  std::vector<std::string> stages = {"ttrl", "intuitor", "rest_em", "introspect", "control"};
  // Whether the chain goes on from ttrl (else ttrl is a branch from base, like intuitor). On since
  // 2026-12-02: with the commuted vote and 80 steps, chosen on eval_dev over the ten AMD runs
  // (docs/demo.md, "TTRL at the head of the chain"); before the commuted vote it lowered the chain.
  bool ttrl_in_chain = true;

  // The control's length and batch order, for measuring how much the control alone varies
  // (docs/demo.md, "The control itself moves"): control_examples > 0 trains it on that many seed
  // examples per epoch instead of as many as all ReST-EM iterations had together; control_order
  // > 0 draws its mini-batches in another order (another shuffling seed).
  int64_t control_examples = 0;
  int64_t control_order = 0;

  // Applies --quick: a few dozen items, a handful of steps.
  void make_quick();
  // Sets a knob by name ("sft_epochs", "task.num_seed", "task.seed_difficulty_weights" = "1,4,0.5",
  // "stages" = "ttrl,rest_em", ...). Throws Error naming the key (with the known keys) or the value.
  void set(const std::string& key, const std::string& value);
  static std::vector<std::string> knob_names();
};

struct StageResult {
  std::string stage;
  std::string from;  // the stage it started from ("" for base)
  std::string model_dir;
  EvalResult eval;
  double train_seconds = 0;  // the stage's training (data generation and eval excluded)
  double eval_seconds = 0;
  nlohmann::json notes = nlohmann::json::object();  // stage-specific diagnostics
  nlohmann::json to_json() const;
};

struct DemoResult {
  std::vector<StageResult> stages;
  double total_seconds = 0;
};

DemoResult run_demo(const DemoConfig& cfg);

// The table printed at the end (also in docs/demo.md).
std::string format_table(const DemoResult& result);

}  // namespace selfrl::demo
