// Recipe runs with `lora:`: SFT, GRPO with a KL term and DPO (self-rewarding) train adapters on a
// frozen base, the optimizer holds adapter state only, final/ is a PEFT adapter that loads onto
// the base and merges with `selfrl lora merge`, and a checkpointed LoRA run resumes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "loop_fixture.h"
#include "selfrl/core/progress.h"
#include "selfrl/io/jsonl.h"
#include "selfrl/io/safetensors.h"
#include "selfrl/loops/self_improvement_loop.h"
#include "selfrl/loops/train_config.h"
#include "selfrl/model/lora.h"
#include "selfrl/recipe/recipe.h"

namespace selfrl::test {
namespace {

namespace fs = std::filesystem;

loops::TrainResult run(const std::string& recipe, std::vector<std::string> ov) {
  ProgressBar::set_enabled_override(0);
  auto& f = loop_fixture();
  for (const std::string& o :
       std::vector<std::string>{"model=" + f.model, "threads=1", "eval.max_samples=3", "eval.samples=2",
                                "max_completion_length=6", "data.eval=" + f.eval})
    ov.push_back(o);
  auto r = recipe::Recipe::load(source_dir() + "/recipes/tiny/" + recipe + ".yaml", ov);
  return loops::run_training(loops::read_train_config(r));
}

// The trained adapter (final/) loaded onto the fixture's base: some B moved away from 0.
double trained_b_norm(const std::string& final_dir) {
  auto m = model::CausalLM::from_pretrained(loop_fixture().model);
  model::load_lora(*m, final_dir);
  double s = 0;
  for (const auto& [name, w] : model::lora_parameters(*m))
    if (name.find("lora_B") != std::string::npos) s += w.abs().sum().item<double>();
  return s;
}

}  // namespace

TEST(LoraRuns, SftGrpoAndDpoTrainAdaptersOnAFrozenBase) {
  auto& f = loop_fixture();
  const std::vector<std::string> lora = {"lora.r=4", "lora.lora_alpha=8", "lora.target_modules=all-linear"};
  struct Case {
    std::string recipe;
    std::vector<std::string> extra;
  };
  for (const auto& c : std::vector<Case>{
           {"sft", {"num_train_epochs=1", "data.train=" + f.train, "learning_rate=1.0e-2"}},
           {"lora_grpo",
            {"max_steps=2", "eval_steps=2", "num_generations=2", "per_device_train_batch_size=4",
             "data.train=" + f.unlabelled, "beta=0.04", "reward_funcs=[self_certainty]",
             "lora.merge_for_rollouts=true"}},
           {"self_rewarding",
            {"iterations=1", "self_rewarding.num_samples=2", "self_rewarding.judge_samples=2",
             "self_rewarding.judge_max_new_tokens=12", "data.train=" + f.unlabelled, "learning_rate=1.0e-2"}}}) {
    SCOPED_TRACE(c.recipe);
    TempDir out;
    auto ov = c.extra;
    ov.push_back("output_dir=" + out.path());
    for (const auto& l : lora) ov.push_back(l);
    const auto res = run(c.recipe, ov);
    ASSERT_TRUE(fs::exists(res.final_model_dir + "/adapter_config.json"));
    ASSERT_TRUE(fs::exists(res.final_model_dir + "/adapter_model.safetensors"));
    EXPECT_FALSE(fs::exists(res.final_model_dir + "/model.safetensors")) << "only the adapter is saved";
    EXPECT_TRUE(fs::exists(res.final_model_dir + "/tokenizer.model"));
    // PEFT's names; nothing but adapters in the file.
    const auto st = io::SafeTensorsFile::open(res.final_model_dir + "/adapter_model.safetensors");
    for (const auto& n : st.names()) {
      EXPECT_EQ(n.rfind("base_model.model.model.layers.", 0), 0u) << n;
      EXPECT_NE(n.find(".lora_"), std::string::npos) << n;
    }
    EXPECT_EQ(st.names().size(), 2u * 7u * 2u);  // A and B x 7 projections x 2 layers
    bool kl_logged = false;
    for (const auto& j : io::read_jsonl(res.metrics_path))
      if (j.contains("kl") && j["kind"] != "iteration") kl_logged = std::isfinite(j["kl"].get<double>());
    if (c.recipe == "lora_grpo") EXPECT_TRUE(kl_logged) << "beta > 0: the KL to the base (adapters off) is computed";
    if (c.recipe != "lora_grpo") EXPECT_GT(trained_b_norm(res.final_model_dir), 0.0) << "the adapters trained";
  }
}

TEST(LoraRuns, MergeCliWritesAPlainModelWithTheAdaptedFunction) {
  auto& f = loop_fixture();
  TempDir out;
  const auto res =
      run("sft", {"num_train_epochs=1", "data.train=" + f.train, "learning_rate=1.0e-2",
                  "output_dir=" + out.file("run"), "lora.r=4", "lora.target_modules=[q_proj, v_proj, down_proj]"});
  const auto r = run_command(selfrl_cli() + " lora merge --base " + f.model + " --adapter " + res.final_model_dir +
                             " --out " + out.file("merged"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto merged = model::CausalLM::from_pretrained(out.file("merged"));
  auto adapted = model::CausalLM::from_pretrained(f.model);
  model::load_lora(*adapted, res.final_model_dir);
  auto ids = torch::tensor(std::vector<int64_t>{1, 7, 9, 12, 30, 4}, torch::kLong).unsqueeze(0);
  torch::NoGradGuard g;
  merged->eval();
  adapted->eval();
  const auto a = merged->logits(merged->forward(ids)), b = adapted->logits(adapted->forward(ids));
  EXPECT_LE((a - b).abs().max().item<double>(), 1e-4);
  EXPECT_TRUE(fs::exists(out.file("merged/tokenizer.model")));
  const auto bad = run_command(selfrl_cli() + " lora merge --base " + f.model + " --adapter " + out.file("nope") +
                               " --out " + out.file("m2"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("no adapter_config.json"), std::string::npos) << bad.output;
}

// A LoRA GRPO run checkpointed at every step continues from its last checkpoint to the same
// adapters as an uninterrupted run.
TEST(LoraRuns, CheckpointedRunResumesToTheSameAdapters) {
  auto& f = loop_fixture();
  TempDir out;
  const std::vector<std::string> base = {"num_generations=2",
                                         "per_device_train_batch_size=4",
                                         "eval_steps=3",
                                         "data.train=" + f.unlabelled,
                                         "beta=0.04",
                                         "reward_funcs=[self_certainty]",
                                         "lora.r=4",
                                         "save_steps=1",
                                         "resume_from_checkpoint=auto"};
  auto with = [&](std::vector<std::string> v, const std::string& dir, int steps) {
    v.insert(v.end(), base.begin(), base.end());
    v.push_back("output_dir=" + dir);
    v.push_back("max_steps=" + std::to_string(steps));
    return v;
  };
  const auto full = run("lora_grpo", with({}, out.file("full"), 3));
  ASSERT_TRUE(fs::exists(out.file("full/checkpoint-1/adapters.safetensors")));
  // A run of the same recipe cut after step 2 (its checkpoints), then resumed to step 3.
  run("lora_grpo", with({}, out.file("cut"), 3));
  fs::remove_all(out.file("cut/checkpoint-3"));
  fs::remove_all(out.file("cut/final"));
  const auto resumed = run("lora_grpo", with({}, out.file("cut"), 3));
  const auto a = io::SafeTensorsFile::open(full.final_model_dir + "/adapter_model.safetensors");
  const auto b = io::SafeTensorsFile::open(resumed.final_model_dir + "/adapter_model.safetensors");
  ASSERT_EQ(a.names(), b.names());
  for (const auto& n : a.names()) EXPECT_TRUE(torch::equal(a.tensor(n), b.tensor(n))) << n;
}

}  // namespace selfrl::test
