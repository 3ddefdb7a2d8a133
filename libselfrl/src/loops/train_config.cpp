// Recipe → TrainConfig. Every key is read here, with its documentation, so that the Recipe
// can reject unknown keys and docs/recipes.md can be generated from the same calls.
#include "selfrl/loops/train_config.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "selfrl/core/error.h"
#include "selfrl/core/logging.h"
#include "selfrl/eval/evaluator.h"
#include "selfrl/loops/loop_registry.h"
#include "selfrl/rewards/answer_extractor.h"
#include "selfrl/rewards/reward_registry.h"
#include "selfrl/trainers/lr_schedule.h"

namespace selfrl::loops {

using recipe::Range;

std::vector<std::string> run_kinds() {
  std::vector<std::string> kinds;
  for (const auto& l : registered_loops()) kinds.push_back(l.name);
  return kinds;
}

bool is_loop_kind(const std::string& k) {
  const auto info = find_loop(k);
  return !info || !info->trainer;
}

namespace {

// "rewards: name (doc) | ..." from the registry, so that --list-keys and docs/recipes.md list
// every reward this program knows (a plugin's too).
std::string reward_funcs_doc() {
  std::string d = "rewards by registered name (a program adds its own with register_reward):";
  for (const auto& e : rewards::registered_rewards()) d += " " + e.name + (e.doc.empty() ? "" : " = " + e.doc) + ";";
  d.pop_back();
  return d;
}

constexpr double kInf = std::numeric_limits<double>::infinity();
const Range kPositive{0, kInf, true};
const Range kNonNegative{0, kInf};
const Range kAtLeastOne{1, kInf};
const Range kUnit{0, 1};
// Bounds where a larger value would overflow downstream: set_num_threads takes an int,
// ddp_timeout becomes a std::chrono deadline in nanoseconds.
constexpr double kMaxThreads = 65536;
constexpr double kMaxDdpTimeout = 365.0 * 24 * 3600;  // one year, in seconds

// Compiles a regular expression a recipe gives (format_pattern, answer_extractor: regex:...)
// so that a bad one is reported at load time with its key and line, not after the run started.
void check_pattern(const recipe::Recipe& r, const std::string& key, const std::string& pattern) {
  try {
    rewards::AnswerExtractor::create("regex", pattern);
  } catch (const Error& e) {
    std::string what = e.message();  // quotes the pattern: keep a long one short
    if (const auto at = what.find("'" + pattern + "'"); at != std::string::npos && pattern.size() > 80)
      what.replace(at + 1, pattern.size(), recipe::clip_for_message(pattern));
    throw Error(key + ": " + what)
        .at(r.location_of(key).str())
        .hint("a PCRE2 regular expression; escape literal ( ) [ ] { } . * + ? \\ | ^ $ with a backslash");
  }
}

// Set while all_documented_keys() reads its sample recipes (which fail on purpose).
thread_local bool t_documenting = false;

bool uses_generation(const std::string& k) { return k != "sft" && k != "dpo"; }
bool uses_grpo(const std::string& k) { return k == "grpo" || k == "sec" || k == "knowrl"; }
bool uses_dpo(const std::string& k) { return k == "dpo" || k == "self_rewarding_dpo" || k == "scpo"; }

// GRPO / SEC: the label-free diagnostics and the collapse guard (selfrl/trainers/label_free.h).
void read_collapse_guard(recipe::Recipe& r, TrainConfig& c) {
  c.label_free_diagnostics =
      r.get_bool("label_free_diagnostics", true,
                 "GRPO / SEC: log label_free/* every step: majority_share, answer_diversity, no_answer_rate, "
                 "certainty_agreement_auroc (answers by answer_extractor; no labels read)");
  auto& g = c.collapse_guard;
  const std::string action = r.get_string(
      "collapse_guard.action", "warn", {"off", "warn", "stop", "rollback"},
      "GRPO / SEC: what to do when the label-free diagnostics show collapse: warn, stop (checkpoint and end the "
      "run), rollback (end the run with the last checkpoint saved before the collapse began as final/)");
  g.action = trainers::parse_collapse_action(action);
  c.greedy_diagnostics = r.get_bool(
      "collapse_guard.greedy_check", false,
      "also decode each prompt greedily every step: label_free/greedy_majority_agreement (1/G more decoding)");
  g.warmup_steps = r.get_int("collapse_guard.warmup_steps", g.warmup_steps, kAtLeastOne,
                             "first steps whose mean is each signal's baseline");
  g.window =
      r.get_int("collapse_guard.window", g.window, kAtLeastOne, "steps averaged before comparing with the baseline");
  g.patience =
      r.get_int("collapse_guard.patience", g.patience, kAtLeastOne, "flagged steps in a row before the guard acts");
  g.entropy_rise =
      r.get_double("collapse_guard.entropy_rise", g.entropy_rise, kNonNegative,
                   "flag (diffusion): entropy at least this many times its baseline while majority_share drops by "
                   "agreement_drop or the majority's share of answered samples by answered_agreement_drop (0 = off)");
  g.agreement_drop = r.get_double("collapse_guard.agreement_drop", g.agreement_drop, kNonNegative,
                                  "the drop of label_free/majority_share (or greedy agreement) the agreement rules "
                                  "need (0 = those rules off)");
  g.answered_agreement_drop = r.get_double(
      "collapse_guard.answered_agreement_drop", g.answered_agreement_drop, kNonNegative,
      "the drop of majority_share / (1 - no_answer_rate), the majority's share of the samples that gave an answer, "
      "that also completes the diffusion rule (0 = off)");
  g.certainty_rise = r.get_double(
      "collapse_guard.certainty_rise", g.certainty_rise, kNonNegative,
      "flag (confident disagreement): self_certainty this far (nats) above its baseline while agreement drops "
      "(0 = off)");
  g.no_answer_rise = r.get_double("collapse_guard.no_answer_rise", g.no_answer_rise, kNonNegative,
                                  "flag: label_free/no_answer_rate this far above its baseline (0 = off)");
  g.min_entropy_ratio = r.get_double("collapse_guard.min_entropy_ratio", g.min_entropy_ratio, kUnit,
                                     "flag: entropy below this fraction of its baseline (0 = off)");
  g.min_certainty_agreement_auroc =
      r.get_double("collapse_guard.min_certainty_agreement_auroc", g.min_certainty_agreement_auroc, kUnit,
                   "flag: label_free/certainty_agreement_auroc below this (0 = off)");
  g.min_anchor_agreement = r.get_double(
      "collapse_guard.min_anchor_agreement", g.min_anchor_agreement, kUnit,
      "flag (confident collapse): label_free/anchor_agreement below this — the policy's greedy answers no longer "
      "match what its first steps' samples were unanimous about (0 = off; no anchors are decoded)");
  const int64_t anchors = r.get_int("collapse_guard.anchors", 32, kAtLeastOne,
                                    "anchor prompts kept during the first warmup_steps steps and decoded greedily "
                                    "every later step, when min_anchor_agreement > 0");
  c.anchor_prompts = g.min_anchor_agreement > 0 && g.action != trainers::CollapseAction::kOff ? anchors : 0;
  if (g.action != trainers::CollapseAction::kOff && !c.label_free_diagnostics)
    SELFRL_WARN(
        "label_free_diagnostics is off: collapse_guard sees only entropy and self_certainty, and its "
        "agreement rules never flag");
}

void read_optimizer(recipe::Recipe& r, TrainConfig& c, double default_lr) {
  auto& o = c.optimizer;
  o.learning_rate = r.get_double(
      "learning_rate", default_lr, kPositive,
      "AdamW learning rate; default 1e-6 for GRPO-based runs (grpo, sec, knowrl), 5e-7 for DPO-based (dpo, "
      "self_rewarding_dpo, scpo), 2e-5 for SFT-based (sft, star, rest_em, nft, bstar)");
  o.weight_decay = r.get_double("weight_decay", 0.0, kNonNegative, "AdamW weight decay");
  o.adam_beta1 = r.get_double("adam_beta1", 0.9, {0, 1, false, true}, "AdamW beta1");
  o.adam_beta2 = r.get_double("adam_beta2", 0.999, {0, 1, false, true}, "AdamW beta2");
  o.adam_epsilon = r.get_double("adam_epsilon", 1e-8, kPositive, "AdamW epsilon");
  o.max_grad_norm = r.get_double("max_grad_norm", 1.0, {}, "gradient-norm clip (<= 0: off)");
  o.lr_scheduler_type = trainers::parse_lr_scheduler_type(
      r.get_string("lr_scheduler_type", "linear", {"constant", "constant_with_warmup", "linear", "cosine"},
                   "learning-rate schedule (transformers' names); restarts with every trainer a loop creates"));
  o.warmup_steps = r.get_int("warmup_steps", 0, kNonNegative, "linear warmup steps (wins over warmup_ratio when > 0)");
  c.warmup_ratio = r.get_double("warmup_ratio", 0.0, kUnit, "warmup as a fraction of the trainer's total steps");
  c.per_device_train_batch_size =
      r.get_int("per_device_train_batch_size", uses_grpo(c.keys_kind) ? 8 : 4, kAtLeastOne,
                "micro-batch size: completions (GRPO, as TRL), examples (SFT) or pairs (DPO)");
  c.gradient_accumulation_steps =
      r.get_int("gradient_accumulation_steps", 1, kAtLeastOne, "micro-batches per optimizer step");
  c.gradient_checkpointing = r.get_bool("gradient_checkpointing", false, "recompute activations in backward");
  c.padding_free = r.get_bool(
      "padding_free", false,
      "training forward passes without padding tokens (TRL padding_free, verl use_remove_padding): each micro-batch's "
      "sequences are packed whole into rows no wider than the padded batch, with positions restarting per sequence "
      "and attention kept inside each sequence; same log-probs as the padded layout to float rounding");
}

}  // namespace

namespace {

TrainConfig read_train_config_impl(recipe::Recipe& r) {
  TrainConfig c;
  c.recipe_path = r.source();
  r.defer_file_checks();  // a misspelt key is reported before a missing file
  const std::string trainer = r.get_string("trainer", "", {}, "a trainer to run once: grpo | sft | dpo (or use loop:)");
  const std::string loop = r.get_string(
      "loop", "", {},
      "a self-improvement loop: star | rest_em | nft | bstar | self_rewarding_dpo | scpo | sec | knowrl; grpo also "
      "accepted (TTRL/Intuitor are grpo with consensus / self_certainty rewards)");
  if (trainer.empty() == loop.empty())
    throw Error(trainer.empty() ? "the recipe names neither trainer: nor loop:"
                                : "the recipe names both trainer: and loop:")
        .at(r.source())
        .hint("set exactly one, e.g. trainer: grpo or loop: rest_em");
  c.kind = trainer.empty() ? loop : trainer;
  const auto& kinds = run_kinds();
  if (std::find(kinds.begin(), kinds.end(), c.kind) == kinds.end()) {
    std::string best;
    size_t best_d = std::max<size_t>(4, c.kind.size() / 2 + 1);  // a plausible typo, not any kind
    for (const auto& k : kinds) {
      if (std::max(k.size(), c.kind.size()) - std::min(k.size(), c.kind.size()) >= best_d) continue;  // too far
      const size_t d = recipe::edit_distance(k, c.kind);
      if (d < best_d) best_d = d, best = k;
    }
    std::string list;
    for (const auto& k : kinds) list += (list.empty() ? "" : ", ") + k;
    throw Error(std::string(trainer.empty() ? "loop" : "trainer") + ": unknown kind '" +
                recipe::clip_for_message(c.kind) + "'; allowed: " + list)
        .at(r.location_of(trainer.empty() ? "loop" : "trainer").str())
        .hint(best.empty() ? "use one of the allowed kinds" : "did you mean '" + best + "'?");
  }
  if (!trainer.empty() && is_loop_kind(c.kind))
    throw Error("trainer: " + c.kind + " is a loop").at(r.location_of("trainer").str()).hint("write loop: " + c.kind);

  const auto info = find_loop(c.kind);
  c.keys_kind = info && !info->reads_keys_of.empty() ? info->reads_keys_of : c.kind;
  const std::string& k = c.keys_kind;
  // ---- run -------------------------------------------------------------------------------
  c.model_dir =
      r.get_path("model", "", true,
                 "the model to start from: a Hugging Face directory (config.json, safetensors, tokenizer files)");
  c.output_dir = r.get_path("output_dir", "", false, "run directory: metrics.jsonl, TensorBoard events, final/ model");
  if (c.output_dir.empty()) throw Error("output_dir: required").at(r.source()).hint("set output_dir: runs/NAME");
  c.seed = static_cast<uint64_t>(r.get_int("seed", 42, kNonNegative, "run seed (sampling, shuffling)"));
  c.device = r.get_string("device", "cpu", {}, "cpu | cuda | cuda:N");
  c.dtype = r.get_string("dtype", "float32", {"float32", "bfloat16", "float16"}, "parameter dtype");
  c.bf16 = r.get_bool(
      "bf16", false,
      "mixed precision (HF TrainingArguments): the trainers' forward passes (policy, reference, log-probs of the "
      "loss) run under bfloat16 autocast on the device (CUDA or CPU autocast); weights, gradients, optimizer state "
      "and the log-prob / loss math stay float32; generation is not autocast. Needs dtype: float32");
  if (c.bf16 && c.dtype != "float32")
    throw Error("bf16: true with dtype: " + c.dtype +
                ": bf16 is mixed precision (float32 master weights, bfloat16 autocast), but dtype: " + c.dtype +
                " already stores the weights in " + c.dtype)
        .at(r.location_of("bf16").str())
        .hint("set dtype: float32 for mixed precision, or drop bf16 to train the " + c.dtype + " weights directly");
  c.threads = r.get_int(
      "threads", 0, {0, kMaxThreads},
      "ATen intra-op CPU threads (0 = LibTorch's default); OpenBLAS keeps its own pool (OPENBLAS_NUM_THREADS)");
  c.logging_steps =
      r.get_int("logging_steps", 1, kAtLeastOne, "write every N-th train step to metrics.jsonl / TensorBoard");
  c.tensorboard = r.get_bool("report_to_tensorboard", true, "also write TensorBoard event files");
  c.overwrite_output_dir = r.get_bool(
      "overwrite_output_dir", false,
      "replace the metrics, TensorBoard events, final/ and checkpoint-*/ of an earlier run in output_dir (else such "
      "a run is an error, unless resume_from_checkpoint finds a checkpoint to continue)");
  c.save_model = r.get_bool("save_model", true, "write the final model to output_dir/final (HF format + tokenizer)");
  c.ddp_timeout = r.get_int(
      "ddp_timeout", 1800, {1, kMaxDdpTimeout},
      "distributed runs (mpirun / torchrun / SLURM): seconds a rank waits in a collective before exiting with an "
      "error naming the missing ranks (HF TrainingArguments)");
  c.save_steps = r.get_int(
      "save_steps", 0, kNonNegative,
      "write output_dir/checkpoint-STEP every N optimizer steps (trainer: grpo / sft / dpo, loop: sec; the other "
      "loops: after every N-th iteration, numbered by the run's global step); 0 = off");
  c.save_total_limit =
      r.get_int("save_total_limit", 0, kNonNegative, "keep only the newest N checkpoints (0 = keep all)");
  c.resume_from_checkpoint = r.get_string(
      "resume_from_checkpoint", "", {},
      "auto: continue from the newest complete checkpoint in output_dir (none: start fresh; partial or corrupt ones "
      "are skipped with a warning); a path: that checkpoint; empty or never: start fresh");

  // ---- data ------------------------------------------------------------------------------
  c.train_file = r.get_path("data.train", "", k != "knowrl",
                            k == "knowrl" ? "unused by knowrl (tasks come from knowrl.seed_file)"
                                          : "training JSONL (prompt | messages | input_ids, optional answer)");
  c.eval_file =
      r.get_path("data.eval", "", false, "evaluation JSONL with answer fields (per-iteration evaluation); empty: none");
  auto& po = c.prompt_options;
  po.chat_template =
      r.get_bool("data.chat_template", false, "wrap prompts as a user message and apply the tokenizer's chat template");
  po.fallback_chat_format = r.get_string("data.fallback_chat_format", "chatml", {"chatml", "llama3", "plain"},
                                         "template when the tokenizer has none");
  po.system_prompt = r.get_string("data.system_prompt", "", {}, "system message (with chat_template)");
  po.prompt_field = r.get_string("data.prompt_field", "prompt", {}, "field holding the prompt text");
  po.answer_field =
      r.get_string("data.answer_field", "answer", {}, "field holding the reference answer (verifier, eval only)");
  po.category_field = r.get_string("data.category_field", "category", {}, "field holding the category (SEC arms)");
  po.vote_prompt_field = r.get_string(
      "data.vote_prompt_field", "", {},
      "GRPO / SEC: field holding a paraphrase of the prompt; its num_generations samples vote in the consensus / "
      "borda rewards and are not trained on (\"\" = off)");
  po.max_samples = r.get_int("data.max_train_samples", 0, kNonNegative, "use the first N training rows (0 = all)");
  if (k == "sft")
    c.completion_field =
        r.get_string("data.completion_field", "completion", {}, "SFT: field holding the target completion");
  if (k == "dpo") {
    c.chosen_field = r.get_string("data.chosen_field", "chosen", {}, "DPO: field holding the chosen completion");
    c.rejected_field =
        r.get_string("data.rejected_field", "rejected", {}, "DPO: field holding the rejected completion");
  }
  c.extractor = r.get_string("answer_extractor", k == "knowrl" ? "regex:(infeasible|feasible)" : "last_number", {},
                             "how answers are read: last_number | boxed | exact | regex:PATTERN");
  if (!(c.extractor == "last_number" || c.extractor == "boxed" || c.extractor == "exact" ||
        c.extractor.rfind("regex:", 0) == 0))
    throw Error("answer_extractor: unknown extractor '" + recipe::clip_for_message(c.extractor) +
                "'; allowed: last_number, boxed, exact, regex:PATTERN")
        .at(r.location_of("answer_extractor").str());
  if (c.extractor.rfind("regex:", 0) == 0) check_pattern(r, "answer_extractor", c.extractor.substr(6));

  // ---- generation --------------------------------------------------------------------------
  auto& sp = c.sampling;
  sp.max_new_tokens =
      r.get_int("max_completion_length", 64, kAtLeastOne, "maximum generated tokens per completion (TRL)");
  if (uses_generation(k)) {
    sp.num_samples = r.get_int("num_generations", 8, {2, kInf}, "GRPO: completions per prompt (TRL)");
    sp.temperature = r.get_double("temperature", 1.0, kPositive, "sampling temperature (TRL)");
    sp.top_p = r.get_double("top_p", 1.0, {0, 1, true, false}, "nucleus sampling mass (TRL)");
    sp.top_k = r.get_int("top_k", 0, kNonNegative, "top-k sampling (0 = off)");
    sp.min_p = r.get_double("min_p", 0.0, kUnit,
                            "min-p sampling: drop tokens below min_p x the top probability (0 = off; TRL, vLLM)");
    sp.stop_token_ids =
        r.get_int_list("stop_token_ids", {}, kNonNegative,
                       "token ids that end a completion besides the model's EOS ids, kept in the completion (vLLM)");
  }
  c.generation_batch_size = r.get_int("generation_batch_size", 64, kAtLeastOne,
                                      "rows (prompts x samples) decoded together (sampling and evaluation)");
  c.continuous_batching = r.get_bool(
      "continuous_batching", false,
      "rollouts (sampling and evaluation): a waiting prompt joins the running batch as soon as its num_generations "
      "rows are free, instead of waiting for the whole wave of generation_batch_size rows to finish (vLLM's "
      "scheduling); false: waves");
  c.share_prompt_cache = r.get_bool(
      "share_prompt_cache", true,
      "rollouts: a prompt's keys and values are cached once for its num_generations samples (decode "
      "reads them once per step); false: a copy per sample. Same tokens, statistics equal up to float rounding");
  c.kv_block_size =
      r.get_int("kv_block_size", 256, kNonNegative,
                "rollouts: the KV cache grows by this many token positions at a time as the longest running completion "
                "needs them, instead of reserving max_completion_length for every row up front; 0: reserve it all");

  // ---- optimization --------------------------------------------------------------------
  read_optimizer(r, c, uses_grpo(k) ? 1e-6 : (uses_dpo(k) ? 5e-7 : 2e-5));
  c.num_train_epochs = r.get_int("num_train_epochs", 1, kAtLeastOne,
                                 "SFT (and the SFT step of STaR / ReST-EM / B-STaR): epochs over the data");
  c.max_steps = r.get_int("max_steps", 0, kNonNegative,
                          "GRPO / SEC: optimizer steps (0 = one pass over the prompts); DPO: steps per pass");

  // ---- lora --------------------------------------------------------------------------------
  {
    auto& l = c.lora;
    l.r = r.get_int("lora.r", 0, kNonNegative,
                    "LoRA rank (PEFT r); 0 = full fine-tuning. With r > 0 the base is frozen, only the adapters train "
                    "(and the optimizer holds only their state), the KL / DPO reference is the base with the adapters "
                    "off, and final/ holds a PEFT adapter (adapter_config.json, adapter_model.safetensors)");
    l.lora_alpha = r.get_double("lora.lora_alpha", 8.0, kPositive, "LoRA scale numerator: s = lora_alpha / r (PEFT)");
    l.lora_dropout =
        r.get_double("lora.lora_dropout", 0.0, {0, 1, false, true}, "dropout on the adapters' input (PEFT)");
    l.target_modules = r.get_string_list(
        "lora.target_modules", {"q_proj", "v_proj"},
        "projections to adapt: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head, or "
        "all-linear (PEFT)");
    l.use_rslora = r.get_bool("lora.use_rslora", false, "rank-stabilized scale s = lora_alpha / sqrt(r) (PEFT)");
    c.lora_merge_for_rollouts =
        r.get_bool("lora.merge_for_rollouts", false,
                   "generate with the adapters merged into the weights (restored exactly after each rollout phase; "
                   "keeps a copy of the adapted weights meanwhile) instead of through the unmerged adapters");
    c.lora_adapter = r.get_path("lora.adapter", "", false,
                                "start from this PEFT adapter directory (its adapter_config.json replaces the lora.* "
                                "settings); empty: new adapters (A Kaiming-uniform, B = 0)");
    if (c.use_lora()) {
      try {
        l.validate("lora");
      } catch (Error& e) {
        throw e.at(r.location_of("lora.r").str());
      }
    }
  }

  // ---- grpo ------------------------------------------------------------------------------
  if (uses_grpo(k)) {
    auto& g = c.grpo;
    auto& l = g.loss;
    l.beta =
        r.get_double("beta", 0.0, kNonNegative, "GRPO: KL coefficient (k3 estimator); 0 = no reference model (TRL)");
    l.epsilon = r.get_double("epsilon", 0.2, kPositive, "GRPO: lower clip range (TRL)");
    if (auto eh = r.get_optional_double("epsilon_high", kPositive,
                                        "GRPO: upper clip range (DAPO clip-higher); default epsilon"))
      l.epsilon_high = *eh;
    if (auto d = r.get_optional_double("delta", {1, kInf, true}, "GRPO: two-sided clipping bound (off by default)"))
      l.delta = *d;
    l.loss_type = trainers::parse_grpo_loss_type(
        r.get_string("loss_type", "dapo", {"grpo", "bnpo", "dr_grpo", "dapo"}, "GRPO loss aggregation (TRL)"));
    l.importance_sampling_level = trainers::parse_importance_sampling_level(
        r.get_string("importance_sampling_level", "token", {"token", "sequence"}, "token (GRPO) or sequence (GSPO)"));
    g.scale_rewards = trainers::parse_scale_rewards(
        r.get_string("scale_rewards", "group", {"group", "batch", "none"}, "advantage scaling (TRL)"));
    g.num_iterations = r.get_int("num_iterations", 1, kAtLeastOne, "GRPO: update passes per generation batch (μ, TRL)");
    g.logprob_chunk_size = r.get_int(
        "logprob_chunk_size", 1024, kAtLeastOne,
        "GRPO: rows (batch x positions) per chunk of the log-prob computation; lower it to cut peak memory at large "
        "vocabularies");
    g.mask_truncated_completions =
        r.get_bool("mask_truncated_completions", false, "GRPO: drop truncated completions from the loss (TRL)");
    g.max_resample_rounds = r.get_int(
        "max_resample_rounds", 0, kNonNegative,
        "GRPO: DAPO dynamic sampling: drop groups whose rewards are all equal and refill the batch with new prompts, "
        "for at most N extra generation rounds per step (0 = off; verl's filter_groups with max_num_gen_batches)");
    c.reward_funcs = r.get_string_list("reward_funcs", {"consensus"}, reward_funcs_doc());
    if (c.reward_funcs.empty())
      throw Error("reward_funcs is empty: GRPO needs at least one reward")
          .at(r.location_of("reward_funcs").str())
          .hint("e.g. reward_funcs: [consensus] (TTRL), [self_certainty] (Intuitor) or [verifier]");
    c.reward_weights = r.get_double_list("reward_weights", {}, "one weight per reward function (default 1 each)");
    c.eval_steps = r.get_int("eval_steps", 0, kNonNegative,
                             "GRPO / SEC: evaluate and log an iteration every N steps (0 = at the end)");
    c.dump_rollouts_steps = r.get_int(
        "dump_rollouts_steps", 0, kNonNegative,
        "GRPO: write every completion of every N-th step (ids, log-probs, per-reward scores, advantages, each "
        "reward's group info such as the judge's judgements) to output_dir/rollouts/step-NNNNNN.jsonl; 0 = off");
    if (k != "knowrl") read_collapse_guard(r, c);
  } else if (k == "rest_em" || k == "nft") {
    c.reward_funcs = r.get_string_list(
        "reward_funcs", {"verifier"},
        k == "nft" ? "NFT: the reward that tells right samples from wrong ones (verifier uses the answer field; "
                     "consensus makes it label-free)"
                   : "ReST-EM: the reward that filters Grow samples (verifier uses the answer field)");
    c.reward_weights = r.get_double_list("reward_weights", {}, "one weight per reward function (default 1 each)");
  }
  if (!c.reward_funcs.empty()) {
    for (const auto& f : c.reward_funcs)
      if (!rewards::is_registered_reward(f))
        throw rewards::unknown_reward_error(recipe::clip_for_message(f)).at(r.location_of("reward_funcs").str());
    if (!c.reward_weights.empty() && c.reward_weights.size() != c.reward_funcs.size())
      throw Error("reward_weights: " + std::to_string(c.reward_weights.size()) + " weights for " +
                  std::to_string(c.reward_funcs.size()) + " reward_funcs")
          .at(r.location_of("reward_weights").str());
    c.borda_power = r.get_double("borda_power", 0.5, kPositive, "borda: rank weight power p in (N - r + 1)^p");
    c.consensus_min_vote_share = r.get_double(
        "consensus_min_vote_share", 0.0, kUnit,
        "consensus, borda: a group whose winning answer holds less than this share of its samples scores 0 "
        "(no advantage; 0 = TTRL as published)");
    c.format_pattern = r.get_string("format_pattern", "", {}, "format: the regex a completion must match");
    if (std::count(c.reward_funcs.begin(), c.reward_funcs.end(), "format") && c.format_pattern.empty())
      throw Error("reward_funcs has format but format_pattern is empty").at(r.location_of("reward_funcs").str());
    if (!c.format_pattern.empty()) check_pattern(r, "format_pattern", c.format_pattern);
    // reward_funcs: [judge] — LLM-as-judge (Self-Rewarding LMs); docs/algorithms.md.
    auto& j = c.judge;
    j.judge_template = r.get_string(
        "judge.template", "", {},
        "judge: prompt with {prompt} and {response}; empty = the additive 5-point rubric (Self-Rewarding LMs)");
    j.num_judgements = r.get_int(
        "judge.num_judgements", 3, kAtLeastOne,
        "judge: judgements sampled per completion, parsable ones averaged (cost: num_generations x this extra "
        "generations per prompt)");
    j.temperature = r.get_double("judge.temperature", 0.7, kPositive, "judge: sampling temperature of the judgements");
    j.max_new_tokens = r.get_int("judge.max_new_tokens", 48, kAtLeastOne, "judge: maximum tokens per judgement");
    j.normalize = r.get_bool("judge.normalize", true, "judge: reward = points / 5 in [0, 1] (false: points in [0, 5])");
    c.judge_model = r.get_path(
        "judge.model", "", false,
        "judge: a separate frozen judge model directory; empty = the current policy (the judge changes as the policy "
        "trains)");
    if (!c.judge_model.empty() && !std::filesystem::exists(c.judge_model))
      throw Error("judge.model: '" + recipe::clip_for_message(c.judge_model, 512) + "' does not exist")
          .at(r.location_of("judge.model").str())
          .hint("a Hugging Face model directory; paths are relative to the recipe file that sets them");
  }

  // ---- dpo -------------------------------------------------------------------------------
  if (uses_dpo(k)) {
    auto& l = c.dpo_loss;
    l.beta = r.get_double("beta", 0.1, kPositive, "DPO: inverse temperature of the preference loss (TRL)");
    l.label_smoothing =
        r.get_double("label_smoothing", 0.0, {0, 0.5, false, true}, "DPO: conservative-DPO label smoothing (TRL)");
    if (k != "scpo")
      l.loss_type = {
          r.get_string("loss_type", "sigmoid", {"sigmoid", "hinge", "ipo", "robust"}, "DPO loss type (TRL)")};
    l.reference_free = r.get_bool("reference_free", false, "DPO: take the reference log-probs as 0 (TRL)");
  }

  // ---- loops -----------------------------------------------------------------------------
  if (is_loop_kind(k) || k == "grpo") {
    if (k != "grpo" && k != "sec")
      c.iterations =
          r.get_int("iterations", 3, kAtLeastOne, "loop iterations (each: generate → select → train → evaluate)");
  }
  c.eval.samples = r.get_int("eval.samples", 1, kAtLeastOne, "k samples per eval prompt: maj@k and pass@k when > 1");
  c.eval.temperature = r.get_double("eval.temperature", 1.0, kPositive, "temperature of the k eval samples");
  c.eval.max_samples =
      r.get_int("eval.max_samples", 0, kNonNegative, "evaluate on the first N rows of data.eval (0 = all)");
  c.eval.max_new_tokens =
      r.get_int("eval.max_new_tokens", 0, kNonNegative, "eval completion length (0 = max_completion_length)");

  if (k == "star") {
    c.star.num_samples = r.get_int("star.num_samples", 1, kAtLeastOne, "rationales sampled per problem");
    c.star.rationalize = r.get_bool("star.rationalize", true, "retry failed problems with the answer as a hint");
    c.star.hint_template = r.get_string("star.hint_template", c.star.hint_template, {},
                                        "rationalization prompt; {prompt} and {answer} are replaced");
    c.star.from_base =
        r.get_bool("star.from_base", true, "fine-tune the base model each iteration (STaR) instead of the last one");
  } else if (k == "rest_em") {
    c.rest_em.num_samples = r.get_int("rest_em.num_samples", 8, kAtLeastOne, "Grow: samples per problem");
    c.rest_em.max_per_prompt = r.get_int("rest_em.max_per_prompt", 4, kAtLeastOne, "cap on kept solutions per problem");
    c.rest_em.reward_threshold =
        r.get_double("rest_em.reward_threshold", 1.0, {}, "keep samples whose weighted reward >= this");
    c.rest_em.from_base = r.get_bool("rest_em.from_base", true, "M-step fine-tunes the base model (ReST-EM)");
    c.rest_em.balance = parse_balance(r.get_string(
        "rest_em.balance", "none", {"none", "pad"},
        "head-tail re-balancing: pad repeats each solved problem's kept solutions up to max_per_prompt, so hard "
        "problems weigh as much as easy ones"));
    c.rest_em.tail_samples =
        r.get_int("rest_em.tail_samples", 0, kNonNegative,
                  "head-tail re-balancing: extra samples for each tail problem (solved by < tail_threshold of its Grow "
                  "samples); 0 = off");
    c.rest_em.tail_threshold =
        r.get_double("rest_em.tail_threshold", 0.5, kUnit, "share of Grow samples below which a problem is tail");
  } else if (k == "nft") {
    auto& n = c.nft;
    n.num_samples = r.get_int("nft.num_samples", 8, {2, kInf}, "samples per problem (r̂ = the share that is right)");
    n.reward_threshold =
        r.get_double("nft.reward_threshold", 1.0, {}, "a sample is right when its weighted reward >= this");
    n.loss.neg_weight =
        r.get_double("nft.neg_weight", 1.0, kNonNegative, "weight of the wrong samples' term (0: RFT, positives only)");
    n.loss.clamp_negative = r.get_double("nft.clamp_negative", 1.0, kPositive,
                                         "floor of the implicit negative ratio inside the log (value only)");
    n.loss.normalize = r.get_int("nft.normalize", 1, {0, 2},
                                 "prompt weight: 0 none, 1 (1 - r̂) (Dr. GRPO on-policy), 2 sqrt((1 - r̂)/r̂) (GRPO)");
  } else if (k == "bstar") {
    auto& b = c.bstar;
    b.num_samples = r.get_int("bstar.num_samples", 8, {2, kInf}, "K samples per query");
    b.temperatures =
        r.get_double_list("bstar.temperatures", b.temperatures, "temperature grid searched each iteration");
    b.reward_thresholds =
        r.get_double_list("bstar.reward_thresholds", b.reward_thresholds, "selection-reward threshold grid");
    b.selection_funcs = r.get_string_list("bstar.selection_funcs", b.selection_funcs,
                                          "the reward that selects samples (consensus | self_certainty | borda | ...)");
    b.selection_weights =
        r.get_double_list("bstar.selection_weights", {}, "weights of selection_funcs (default 1 each)");
    b.target_correct = r.get_int("bstar.target_correct", 4, kAtLeastOne, "n* of the balance score");
    b.probe_prompts = r.get_int("bstar.probe_prompts", 16, kAtLeastOne, "queries the grid search evaluates");
    b.max_per_prompt = r.get_int("bstar.max_per_prompt", 4, kAtLeastOne, "cap on kept samples per query");
    b.from_base = r.get_bool("bstar.from_base", false, "fine-tune the base model each iteration instead of continuing");
    if (!b.selection_weights.empty() && b.selection_weights.size() != b.selection_funcs.size())
      throw Error("bstar.selection_weights: " + std::to_string(b.selection_weights.size()) + " weights for " +
                  std::to_string(b.selection_funcs.size()) + " selection_funcs")
          .at(r.location_of("bstar.selection_weights").str());
    for (const auto& f : b.selection_funcs)
      if (!rewards::is_registered_reward(f))
        throw rewards::unknown_reward_error(recipe::clip_for_message(f))
            .at(r.location_of("bstar.selection_funcs").str());
    if (b.temperatures.empty() || b.reward_thresholds.empty())
      throw Error("bstar.temperatures and bstar.reward_thresholds must not be empty").at(r.source());
    for (double t : b.temperatures)
      if (!(t > 0))
        throw Error("bstar.temperatures: " + std::to_string(t) + " is out of range; allowed: (0, inf)")
            .at(r.location_of("bstar.temperatures").str());
  } else if (k == "self_rewarding_dpo") {
    auto& s = c.self_rewarding;
    s.num_samples = r.get_int("self_rewarding.num_samples", 4, {2, kInf}, "responses per prompt");
    s.judge_samples = r.get_int("self_rewarding.judge_samples", 3, kAtLeastOne, "judgements averaged per response");
    s.judge_temperature =
        r.get_double("self_rewarding.judge_temperature", 0.7, kPositive, "judge sampling temperature");
    s.judge_max_new_tokens =
        r.get_int("self_rewarding.judge_max_new_tokens", 48, kAtLeastOne, "judge completion length");
    s.min_score_gap = r.get_double("self_rewarding.min_score_gap", 0.0, kNonNegative, "pairs need best - worst > this");
    s.judge_template = r.get_string("self_rewarding.judge_template", "", {},
                                    "judge prompt with {prompt} and {response}; empty = the additive 5-point rubric");
    s.meta_judge = r.get_bool("self_rewarding.meta_judge", false,
                              "Meta-Rewarding: the policy also compares its own judgements (both orders) and DPO "
                              "trains the judge on the preferred ones");
    s.meta_judge_responses = r.get_int("self_rewarding.meta_judge_responses", 1, kAtLeastOne,
                                       "responses per prompt whose judgements are meta-judged (n(n-1) calls each)");
    s.meta_judge_max_new_tokens =
        r.get_int("self_rewarding.meta_judge_max_new_tokens", 16, kAtLeastOne, "meta-judge completion length");
  } else if (k == "scpo") {
    c.scpo.num_samples = r.get_int("scpo.num_samples", 8, {2, kInf}, "k answers voted on per problem");
    c.scpo.min_vote_share =
        r.get_double("scpo.min_vote_share", 0.5, kUnit, "keep problems whose top answer has at least this vote share");
    c.scpo.alpha = r.get_double("scpo.alpha", 1.0, kNonNegative, "NLL coefficient on the chosen response");
  } else if (k == "sec") {
    c.sec.alpha = r.get_double("sec.alpha", 0.5, {0, 1, true, false}, "TD(0) learning rate of the arm values");
    c.sec.tau = r.get_double("sec.tau", 1.0, kPositive, "Boltzmann temperature over arm values");
    c.sec.initial_q = r.get_double("sec.initial_q", 0.0, {}, "initial arm value");
  } else if (k == "knowrl") {
    auto& kr = c.knowrl;
    kr.seed_file = r.get_path("knowrl.seed_file", "", true,
                              "seed tasks JSONL: {\"prompt\": task, \"label\": \"feasible\"|\"infeasible\"}");
    kr.label_field = r.get_string("knowrl.label_field", "label", {}, "field of the seed / eval rows holding the label");
    kr.tasks_per_category =
        r.get_int("knowrl.tasks_per_category", 8, kAtLeastOne, "new tasks written per category per iteration");
    kr.shots = r.get_int("knowrl.shots", 3, kAtLeastOne, "seed tasks shown when writing a new one");
    kr.num_judgements = r.get_int("knowrl.num_judgements", 5, {2, kInf}, "k feasibility judgements per task");
    kr.min_agreement = r.get_double("knowrl.min_agreement", 0.6, kUnit, "vote share needed to keep a generated task");
    kr.generation_temperature =
        r.get_double("knowrl.generation_temperature", 1.0, kPositive, "temperature for writing tasks");
    kr.max_task_tokens = r.get_int("knowrl.max_task_tokens", 48, kAtLeastOne, "length limit of a written task");
    kr.grpo_steps =
        r.get_int("knowrl.grpo_steps", 4, kAtLeastOne, "GRPO steps on the consensus-labelled set per iteration");
  }
  if (c.keys_kind != c.kind) {  // a program's loop: its own section, for it to read
    r.allow(c.kind);
    c.loop_args = r.section_json(c.kind);
  }
  r.finish();
  return c;
}

// Every key any kind reads, once per process (for the typo check of read_train_config).
const std::vector<std::string>& all_key_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& d : all_documented_keys()) out.push_back(d.key);
    return out;
  }();
  return names;
}

}  // namespace

TrainConfig read_train_config(recipe::Recipe& r) {
  try {
    return read_train_config_impl(r);
  } catch (const Error&) {
    // An error found before the recipe was fully read ("output_dir: required", "names neither
    // trainer: nor loop:") may be caused by a misspelt key: name the typo instead.
    if (!t_documenting) r.check_likely_typos(all_key_names(), run_kinds());
    throw;
  }
}

std::vector<recipe::KeyDoc> all_documented_keys() {
  struct Documenting {
    bool before = t_documenting;
    Documenting() { t_documenting = true; }
    ~Documenting() { t_documenting = before; }
  } documenting;
  std::vector<recipe::KeyDoc> out;
  std::set<std::string> seen;
  for (const auto& kind : run_kinds()) {
    // Read a minimal recipe of each kind; the getters record every key they look at.
    auto r =
        recipe::Recipe::parse(std::string(kind == "grpo" || kind == "sft" || kind == "dpo" ? "trainer: " : "loop: ") +
                              kind + "\nmodel: /\noutput_dir: /tmp/x\ndata: {train: /}\nknowrl: {seed_file: /}\n");
    try {
      read_train_config(r);
    } catch (const Error&) {}
    for (auto d : r.documented_keys()) {
      if (seen.insert(d.key).second) {
        out.push_back(d);
      } else {
        for (auto& o : out)
          if (o.key == d.key && o.doc.find(d.doc) == std::string::npos && !d.doc.empty()) o.doc += "; " + d.doc;
      }
    }
  }
  return out;
}

trainers::GRPOConfig grpo_config(const TrainConfig& c, int64_t total_steps) {
  trainers::GRPOConfig g = c.grpo;
  g.sampling = c.sampling;
  g.generation_batch_size = c.generation_batch_size;
  g.continuous_batching = c.continuous_batching;
  g.share_prompt_cache = c.share_prompt_cache;
  g.kv_block_size = c.kv_block_size;
  g.merge_lora_for_generation = c.lora_merge_for_rollouts;
  g.optimizer = c.optimizer;
  g.optimizer.total_steps = total_steps;
  g.optimizer.warmup_steps = trainers::resolve_warmup_steps(c.optimizer.warmup_steps, c.warmup_ratio, total_steps);
  g.gradient_accumulation_steps = c.gradient_accumulation_steps;
  g.gradient_checkpointing = c.gradient_checkpointing;
  g.bf16 = c.bf16;
  g.padding_free = c.padding_free;
  g.seed = c.seed;
  g.dump_rollouts_every = c.dump_rollouts_steps;
  if (c.dump_rollouts_steps > 0) g.rollouts_dir = c.output_dir + "/rollouts";
  if (c.label_free_diagnostics) g.diagnostics_extractor = eval::parse_extractor(c.extractor);
  g.greedy_diagnostics = c.greedy_diagnostics;
  if (c.label_free_diagnostics) g.anchor_prompts = c.anchor_prompts;
  g.anchor_steps = c.collapse_guard.warmup_steps;
  return g;
}

}  // namespace selfrl::loops
