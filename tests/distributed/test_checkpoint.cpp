// checkpoint::save / load in one process: the directory layout (HF model loadable by
// from_pretrained, tokenizer files, trainer state, COMPLETE), the round trip of the AdamW
// moments and counters and of the RNG state, and errors for a checkpoint of another model.
#include <gtest/gtest.h>

#include <filesystem>

#include <torch/torch.h>

#include "../unit/model/tiny_models.h"
#include "selfrl/core/seed.h"
#include "selfrl/io/file_util.h"
#include "selfrl/trainers/checkpoint.h"
#include "selfrl/trainers/sft_trainer.h"
#include "test_util.h"

namespace selfrl::checkpoint {
namespace {
namespace fs = std::filesystem;

std::vector<trainers::SFTExample> examples() {
  return {{{1, 2, 3}, {4, 5}}, {{6, 7}, {8, 9, 10}}, {{11}, {12, 13, 14, 15}}};
}

TEST(Checkpoint, LayoutRoundTripAndTokenizerFiles) {
  test::TempDir t;
  const std::string tok = t.file("tok");
  fs::create_directories(tok);
  test::write_bytes(tok + "/tokenizer.json", "{\"model\": {}}");
  test::write_bytes(tok + "/tokenizer_config.json", "{}");
  test::write_bytes(tok + "/notes.txt", "not a tokenizer file");

  trainers::SFTConfig cfg;
  cfg.optimizer.learning_rate = 1e-2;
  cfg.optimizer.total_steps = 4;
  auto model = test::tiny_model("qwen2", 1);
  trainers::SFTTrainer sft(model, cfg);
  sft.step(examples());
  sft.step(examples());

  TrainerState st;
  st.step = 2;
  st.data_position = 6;
  st.extra = {{"loop_iteration", 1}, {"bstar", {{"temperature", 0.9}}}};
  SaveOptions so;
  so.tokenizer_dir = tok;
  so.keep_last = 1;
  torch::manual_seed(77);
  const std::string dir = save(t.file("out"), *model, sft.optimizer(), st, so);
  const auto after_save = torch::rand({4});  // the RNG draw a resumed run must repeat
  EXPECT_EQ(dir, t.file("out") + "/checkpoint-2");
  for (const char* f : {"config.json", "model.safetensors", "optimizer.safetensors", "rng.safetensors",
                        "trainer_state.json", "COMPLETE", "tokenizer.json", "tokenizer_config.json"}) {
    EXPECT_TRUE(fs::exists(fs::path(dir) / f)) << f;
  }
  EXPECT_FALSE(fs::exists(fs::path(dir) / "notes.txt"));
  EXPECT_EQ(check_complete(dir), "");
  EXPECT_EQ(find_latest_complete(t.file("out")).value_or(""), dir);

  // The model directory is a Hugging Face checkpoint.
  auto reloaded = model::CausalLM::from_pretrained(dir);
  const auto want = model->hf_state_dict(), got = reloaded->hf_state_dict();
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(want[i].first, got[i].first);
    EXPECT_TRUE(torch::equal(want[i].second, got[i].second)) << want[i].first;
  }

  // A fresh model + trainer restored from it continues exactly like the original.
  auto model2 = test::tiny_model("qwen2", 9);
  trainers::SFTTrainer sft2(model2, cfg);
  torch::manual_seed(1);
  const auto back = load(dir, *model2, sft2.optimizer());
  EXPECT_TRUE(torch::equal(torch::rand({4}), after_save));
  EXPECT_EQ(back.step, 2);
  EXPECT_EQ(back.data_position, 6);
  EXPECT_EQ(back.extra.at("bstar").at("temperature").get<double>(), 0.9);
  EXPECT_EQ(sft2.optimizer().steps_taken(), 2);
  sft2.set_global_step(back.step);
  const auto m1 = sft.step(examples());
  const auto m2 = sft2.step(examples());
  EXPECT_EQ(m1.at("loss"), m2.at("loss"));
  EXPECT_EQ(m1.at("learning_rate"), m2.at("learning_rate"));
  auto p1 = model->parameters(), p2 = model2->parameters();
  for (size_t i = 0; i < p1.size(); ++i) EXPECT_TRUE(torch::equal(p1[i], p2[i]));

  // keep_last 1: a newer checkpoint replaces the older one.
  st.step = 3;
  save(t.file("out"), *model, sft.optimizer(), st, so);
  EXPECT_FALSE(fs::exists(t.file("out") + "/checkpoint-2"));
  EXPECT_TRUE(fs::exists(t.file("out") + "/checkpoint-3/COMPLETE"));
}

TEST(Checkpoint, AnotherModelIsAnError) {
  test::TempDir t;
  trainers::SFTConfig cfg;
  auto model = test::tiny_model("qwen2", 1);
  trainers::SFTTrainer sft(model, cfg);
  sft.step(examples());
  const std::string dir = save(t.file("out"), *model, sft.optimizer(), TrainerState{1, 1, {}});
  auto other = test::tiny_model("qwen3", 1);
  trainers::SFTTrainer sft2(other, cfg);
  EXPECT_SELFRL_ERROR(load(dir, *other, sft2.optimizer()), "checkpoint-1");
  EXPECT_SELFRL_ERROR(load(t.file("out"), *model, sft.optimizer()), "not a complete checkpoint");
}

}  // namespace
}  // namespace selfrl::checkpoint
