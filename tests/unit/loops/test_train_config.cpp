// Recipes for `selfrl train`: typed keys with TRL names; bad recipes fail with the promised
// messages (file:line, did-you-mean, allowed ranges, missing files).
#include <gtest/gtest.h>

#include "selfrl/loops/train_config.h"
#include "test_util.h"

using namespace selfrl;

namespace {
struct Files {
  test::TempDir d;
  Files() {
    std::filesystem::create_directories(d.file("model"));
    test::write_bytes(d.file("train.jsonl"), "{\"prompt\": \"1 + 1 =\"}\n");
  }
  std::string recipe(const std::string& body) {
    test::write_bytes(d.file("r.yaml"), "model: model\noutput_dir: out\ndata:\n  train: train.jsonl\n" + body);
    return d.file("r.yaml");
  }
};
}  // namespace

TEST(TrainConfig, ReadsTrlKnobsAndOverrides) {
  Files f;
  auto r = recipe::Recipe::load(
      f.recipe("trainer: grpo\nnum_generations: 4\nbeta: 0.04\nepsilon_high: 0.28\nloss_type: dr_grpo\n"
               "reward_funcs: [consensus, self_certainty]\nreward_weights: [1.0, 0.5]\n"),
      {"learning_rate=3e-6", "scale_rewards=none", "share_prompt_cache=false", "consensus_min_vote_share=0.75",
       "data.vote_prompt_field=paraphrase"});
  const auto c = loops::read_train_config(r);
  EXPECT_EQ(c.kind, "grpo");
  EXPECT_EQ(c.prompt_options.vote_prompt_field, "paraphrase");  // default "" (off)
  EXPECT_FALSE(c.share_prompt_cache);                           // default true
  EXPECT_DOUBLE_EQ(c.consensus_min_vote_share, 0.75);
  EXPECT_EQ(c.sampling.num_samples, 4);
  EXPECT_DOUBLE_EQ(c.grpo.loss.beta, 0.04);
  EXPECT_DOUBLE_EQ(*c.grpo.loss.epsilon_high, 0.28);
  EXPECT_EQ(c.grpo.loss.loss_type, trainers::GRPOLossType::kDrGrpo);
  EXPECT_DOUBLE_EQ(c.optimizer.learning_rate, 3e-6);
  EXPECT_EQ(c.grpo.scale_rewards, trainers::ScaleRewards::kNone);
  EXPECT_EQ(c.reward_weights, (std::vector<double>{1.0, 0.5}));
  EXPECT_EQ(c.model_dir, f.d.file("model"));  // relative to the recipe
}

TEST(TrainConfig, UnknownKeyNamesLineAndSuggests) {
  Files f;
  auto r = recipe::Recipe::load(f.recipe("loop: rest_em\nrest_em:\n  num_sampels: 4\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r), "r.yaml:7", "rest_em.num_sampels",
                      "did you mean 'rest_em.num_samples'");
  auto r2 = recipe::Recipe::load(f.recipe("trainer: grpo\nlearning_rat: 1e-6\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r2), "r.yaml:6", "learning_rate");
}

TEST(TrainConfig, WrongTypeAndRangeNameKeyLineAndRange) {
  Files f;
  auto r = recipe::Recipe::load(f.recipe("trainer: grpo\nnum_generations: many\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r), "r.yaml:6", "num_generations", "expected an integer, got 'many'",
                      "allowed: an integer in [2, inf)");
  auto r1 = recipe::Recipe::load(f.recipe("trainer: grpo\ntemperature: hot\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r1), "r.yaml:6", "temperature", "expected a number", "(0, inf)");
  auto r2 = recipe::Recipe::load(f.recipe("trainer: grpo\nnum_generations: 1\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r2), "r.yaml:6", "num_generations", "out of range", "[2, inf)");
  auto r3 = recipe::Recipe::load(f.recipe("loop: scpo\nscpo:\n  min_vote_share: 1.5\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r3), "r.yaml:7", "scpo.min_vote_share", "[0, 1]");
  auto r4 = recipe::Recipe::load(f.recipe("trainer: grpo\nloss_type: ppo\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r4), "r.yaml:6", "loss_type", "dapo");
}

TEST(TrainConfig, MissingFilesKindsAndRewards) {
  Files f;
  test::write_bytes(f.d.file("m.yaml"), "trainer: sft\nmodel: nowhere\noutput_dir: out\ndata: {train: train.jsonl}\n");
  auto r = recipe::Recipe::load(f.d.file("m.yaml"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r), "m.yaml:2", "model", "does not exist");
  test::write_bytes(f.d.file("n.yaml"), "trainer: sft\nmodel: model\noutput_dir: out\ndata: {train: missing.jsonl}\n");
  auto rn = recipe::Recipe::load(f.d.file("n.yaml"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(rn), "n.yaml:4", "data.train", "does not exist");
  auto r2 = recipe::Recipe::load(f.recipe("loop: sTar\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r2), "unknown kind 'sTar'", "did you mean 'star'");
  auto r3 = recipe::Recipe::load(f.recipe("trainer: grpo\nreward_funcs: [consensus, certainty]\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r3), "unknown reward 'certainty'");
  auto r4 = recipe::Recipe::load(f.recipe(""));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r4), "neither trainer: nor loop:");
  EXPECT_SELFRL_ERROR(recipe::Recipe::load(f.d.file("absent.yaml")), "absent.yaml", "not found");
}

TEST(TrainConfig, EveryKeyIsDocumented) {
  const auto keys = loops::all_documented_keys();
  std::set<std::string> names;
  for (const auto& k : keys) {
    names.insert(k.key);
    EXPECT_FALSE(k.doc.empty()) << k.key;
  }
  for (const char* k : {"num_generations",
                        "beta",
                        "epsilon_high",
                        "loss_type",
                        "learning_rate",
                        "lr_scheduler_type",
                        "warmup_ratio",
                        "per_device_train_batch_size",
                        "gradient_accumulation_steps",
                        "num_iterations",
                        "scale_rewards",
                        "temperature",
                        "top_p",
                        "reward_funcs",
                        "reward_weights",
                        "seed",
                        "output_dir",
                        "logging_steps",
                        "star.rationalize",
                        "bstar.temperatures",
                        "sec.tau",
                        "knowrl.num_judgements",
                        "scpo.min_vote_share",
                        "self_rewarding.judge_samples",
                        "rest_em.max_per_prompt",
                        "eval.samples",
                        "bf16",
                        "dump_rollouts_steps",
                        "judge.template",
                        "judge.num_judgements",
                        "judge.temperature",
                        "judge.max_new_tokens",
                        "judge.model",
                        "judge.normalize"})
    EXPECT_TRUE(names.count(k)) << k;
}

TEST(TrainConfig, JudgeRewardKeys) {
  Files f;
  auto r =
      recipe::Recipe::load(f.recipe("trainer: grpo\nreward_funcs: [judge, consensus]\nreward_weights: [1.0, 0.5]\n"
                                    "judge:\n  template: 'Q {prompt} A {response}'\n  num_judgements: 5\n"
                                    "  temperature: 0.3\n  max_new_tokens: 20\n  normalize: false\n"));
  const auto c = loops::read_train_config(r);
  EXPECT_EQ(c.reward_funcs, (std::vector<std::string>{"judge", "consensus"}));
  EXPECT_EQ(c.judge.judge_template, "Q {prompt} A {response}");
  EXPECT_EQ(c.judge.num_judgements, 5);
  EXPECT_DOUBLE_EQ(c.judge.temperature, 0.3);
  EXPECT_EQ(c.judge.max_new_tokens, 20);
  EXPECT_FALSE(c.judge.normalize);
  EXPECT_EQ(c.judge_model, "");  // the policy judges itself
  auto r2 = recipe::Recipe::load(f.recipe("trainer: grpo\nreward_funcs: [judge]\njudge:\n  num_judgments: 2\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r2), "r.yaml:8", "judge.num_judgments",
                      "did you mean 'judge.num_judgements'");
  auto r3 = recipe::Recipe::load(f.recipe("trainer: grpo\nreward_funcs: [jugde]\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r3), "unknown reward 'jugde'", "did you mean 'judge'");
  auto r4 = recipe::Recipe::load(f.recipe("trainer: grpo\nreward_funcs: [judge]\njudge: {model: nowhere}\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r4), "judge.model", "does not exist");
}

TEST(TrainConfig, Bf16NeedsFloat32Weights) {
  Files f;
  auto r = recipe::Recipe::load(f.recipe("trainer: sft\nbf16: true\n"));
  EXPECT_TRUE(loops::read_train_config(r).bf16);
  auto r2 = recipe::Recipe::load(f.recipe("trainer: grpo\nbf16: true\ndtype: bfloat16\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r2), "r.yaml:6", "bf16: true with dtype: bfloat16",
                      "set dtype: float32");
}

// GRPOConfig knobs a recipe sets reach the trainer's config (TRL / vLLM names).
TEST(TrainConfig, MinPAndLogprobChunkSizeReachTheGrpoConfig) {
  Files f;
  auto r = recipe::Recipe::load(
      f.recipe("trainer: grpo\nmin_p: 0.05\nlogprob_chunk_size: 128\ntop_k: 20\nshare_prompt_cache: false\n"
               "kv_block_size: 0\n"));
  const auto c = loops::read_train_config(r);
  const auto g = loops::grpo_config(c, 10);
  EXPECT_FALSE(g.share_prompt_cache);
  EXPECT_EQ(g.kv_block_size, 0);
  EXPECT_DOUBLE_EQ(g.sampling.min_p, 0.05);
  EXPECT_EQ(g.logprob_chunk_size, 128);
  EXPECT_EQ(g.sampling.top_k, 20);
  auto defaults = recipe::Recipe::load(f.recipe("trainer: grpo\n"));
  const auto d = loops::grpo_config(loops::read_train_config(defaults), 10);
  EXPECT_DOUBLE_EQ(d.sampling.min_p, 0.0);
  EXPECT_EQ(d.logprob_chunk_size, 1024);
  EXPECT_TRUE(d.share_prompt_cache);
  EXPECT_EQ(d.kv_block_size, 256);
  auto bad = recipe::Recipe::load(f.recipe("trainer: grpo\nmin_p: 1.5\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(bad), "min_p", "[0, 1]");
  auto bad_block = recipe::Recipe::load(f.recipe("trainer: grpo\nkv_block_size: -4\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(bad_block), "kv_block_size");
}

// The collapse guard's section: the answered-agreement measure of the diffusion rule is on by
// default (0.06), 0 turns it off, a negative value names the key.
TEST(TrainConfig, CollapseGuardAnsweredAgreementDrop) {
  Files f;
  auto defaults = recipe::Recipe::load(f.recipe("trainer: grpo\n"));
  const auto d = loops::read_train_config(defaults);
  EXPECT_DOUBLE_EQ(d.collapse_guard.answered_agreement_drop, 0.06);
  EXPECT_DOUBLE_EQ(d.collapse_guard.agreement_drop, 0.03);
  auto zero = recipe::Recipe::load(f.recipe("trainer: grpo\ncollapse_guard:\n  answered_agreement_drop: 0\n"));
  const auto off = loops::read_train_config(zero);
  EXPECT_DOUBLE_EQ(off.collapse_guard.answered_agreement_drop, 0.0);
  auto bad = recipe::Recipe::load(f.recipe("trainer: grpo\ncollapse_guard: {answered_agreement_drop: -0.1}\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(bad), "collapse_guard.answered_agreement_drop");
}

// Every GRPOConfig knob has a recipe key: stop ids, DAPO dynamic sampling, and the sampling
// parameters arrive whole; the dr_grpo constant follows max_completion_length.
TEST(TrainConfig, StopTokenIdsAndResampleRoundsReachTheGrpoConfig) {
  Files f;
  auto r = recipe::Recipe::load(
      f.recipe("trainer: grpo\nstop_token_ids: [5, 9]\nmax_resample_rounds: 3\nmax_completion_length: 12\n"
               "num_generations: 4\ntemperature: 0.7\ntop_p: 0.9\n"));
  const auto c = loops::read_train_config(r);
  const auto g = loops::grpo_config(c, 10);
  EXPECT_EQ(g.sampling.stop_token_ids, (std::vector<int64_t>{5, 9}));
  EXPECT_EQ(g.max_resample_rounds, 3);
  EXPECT_EQ(g.num_generations(), 4);
  EXPECT_EQ(g.max_completion_length(), 12);
  EXPECT_DOUBLE_EQ(g.sampling.temperature, 0.7);
  EXPECT_DOUBLE_EQ(g.sampling.top_p, 0.9);
  auto one = recipe::Recipe::load(f.recipe("trainer: grpo\nstop_token_ids: 7\n"));
  EXPECT_EQ(loops::read_train_config(one).sampling.stop_token_ids, (std::vector<int64_t>{7}));
  auto bad = recipe::Recipe::load(f.recipe("trainer: grpo\nstop_token_ids: [5, x]\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(bad), "stop_token_ids", "expected a list of integers", "'x'");
  auto neg = recipe::Recipe::load(f.recipe("trainer: grpo\nstop_token_ids: [-1]\n"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(neg), "stop_token_ids", "out of range");
}

// A recipe with a typo and a missing model: the typo is reported (it may be why the path is
// wrong); fixed, the missing file is.
TEST(TrainConfig, SchemaErrorsComeBeforeMissingFiles) {
  Files f;
  test::write_bytes(f.d.file("t.yaml"),
                    "trainer: grpo\nmodel: nowhere\noutput_dir: out\ndata: {train: train.jsonl}\n"
                    "num_generatons: 4\n");
  auto r = recipe::Recipe::load(f.d.file("t.yaml"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(r), "t.yaml:5", "num_generatons: unknown key",
                      "did you mean 'num_generations'");
  auto fixed = recipe::Recipe::load(f.d.file("t.yaml"), {"num_generations=4"});
  // (the override adds the right key; the typo'd one is still in the file)
  EXPECT_SELFRL_ERROR(loops::read_train_config(fixed), "num_generatons");
  test::write_bytes(f.d.file("u.yaml"), "trainer: grpo\nmodel: nowhere\noutput_dir: out\ndata: {train: train.jsonl}\n");
  auto missing = recipe::Recipe::load(f.d.file("u.yaml"));
  EXPECT_SELFRL_ERROR(loops::read_train_config(missing), "u.yaml:2", "model", "does not exist");
  // A wrong type is a schema error too: named before the missing model.
  auto typed = recipe::Recipe::load(f.d.file("u.yaml"), {"num_generations=many"});
  EXPECT_SELFRL_ERROR(loops::read_train_config(typed), "num_generations", "expected an integer");
}
