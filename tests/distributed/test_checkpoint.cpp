// checkpoint::save / load in one process: the directory layout (HF model loadable by
// from_pretrained, tokenizer files, trainer state, COMPLETE), the round trip of the AdamW
// moments and counters and of the RNG state, and errors for a checkpoint of another model.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include <torch/torch.h>

#include "../unit/model/tiny_models.h"
#include "selfrl/core/seed.h"
#include "selfrl/io/file_util.h"
#include "selfrl/io/safetensors.h"
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

// Replaces `name` in checkpoint `dir` and updates the COMPLETE marker's size for it, so that only
// the contents are wrong (a truncated file is caught by the sizes already).
void replace_file(const std::string& dir, const std::string& name, const std::string& bytes) {
  test::write_bytes(dir + "/" + name, bytes);
  auto marker = io::read_json_file(dir + "/COMPLETE");
  marker["files"][name] = static_cast<int64_t>(bytes.size());
  test::write_bytes(dir + "/COMPLETE", marker.dump());
}

void replace_safetensors(const std::string& dir, const std::string& name, const io::NamedTensors& tensors) {
  test::TempDir t;
  io::save_safetensors(t.file("x.safetensors"), tensors);
  replace_file(dir, name, io::read_text_file(t.file("x.safetensors")));
}

TEST(Checkpoint, CorruptContentsAreSkippedByAutoResume) {
  test::TempDir t;
  trainers::SFTConfig cfg;
  auto model = test::tiny_model("qwen2", 1);
  trainers::SFTTrainer sft(model, cfg);
  sft.step(examples());
  SaveOptions keep_all;
  keep_all.keep_last = 0;
  const std::string good = save(t.file("out"), *model, sft.optimizer(), TrainerState{1, 3, {}}, keep_all);
  const std::string bad = save(t.file("out"), *model, sft.optimizer(), TrainerState{2, 6, {}}, keep_all);
  const std::string state = io::read_text_file(bad + "/trainer_state.json");
  const std::string rng = io::read_text_file(bad + "/rng.safetensors");
  const std::string opt = io::read_text_file(bad + "/optimizer.safetensors");
  auto restore = [&] {
    replace_file(bad, "trainer_state.json", state);
    replace_file(bad, "rng.safetensors", rng);
    replace_file(bad, "optimizer.safetensors", opt);
    ASSERT_EQ(check_complete(bad), "");
  };
  auto expect_skipped = [&](const std::string& why) {
    EXPECT_NE(check_complete(bad).find(why), std::string::npos) << check_complete(bad);
    EXPECT_EQ(find_latest_complete(t.file("out")).value_or(""), good);
    EXPECT_SELFRL_ERROR(load(bad, *model, sft.optimizer()), "not a complete checkpoint", why);
    restore();
  };

  auto ts = nlohmann::json::parse(state);
  ts["step"] = "two";
  replace_file(bad, "trainer_state.json", ts.dump());
  expect_skipped("'step' must be a non-negative integer, got \"two\"");
  ts = nlohmann::json::parse(state);
  ts["optimizer"]["adam_steps"] = nlohmann::json::array();
  replace_file(bad, "trainer_state.json", ts.dump());
  expect_skipped("optimizer.adam_steps must be an object");

  replace_safetensors(bad, "rng.safetensors", {{"rank_0.cpu", torch::zeros({7})}});
  expect_skipped("'rank_0.cpu' is not a CPU generator state");

  const auto moments = io::SafeTensorsFile::open(bad + "/optimizer.safetensors");
  io::NamedTensors wrong;
  for (const auto& name : moments.names()) {
    auto m = moments.tensor(name);
    wrong.emplace_back(name, name == "model.norm.weight.exp_avg" ? torch::zeros({3}) : m);
  }
  replace_safetensors(bad, "optimizer.safetensors", wrong);
  expect_skipped("'model.norm.weight.exp_avg' has shape [3]");

  // Fuzz finding 8: a file size in the marker that is no integer (get<int64_t> of 2e117 was
  // undefined behaviour, reported by UBSan) makes the checkpoint incomplete, not a crash.
  const std::string marker_path = bad + "/COMPLETE";
  const std::string marker = io::read_text_file(marker_path);
  for (const auto& size :
       {nlohmann::json(2.13e117), nlohmann::json(380.5), nlohmann::json(-1), nlohmann::json("380")}) {
    auto m = nlohmann::json::parse(marker);
    m["files"]["model.safetensors"] = size;
    test::write_bytes(marker_path, m.dump());
    EXPECT_NE(check_complete(bad).find("COMPLETE: the size of model.safetensors is " + size.dump().substr(0, 12)),
              std::string::npos)
        << check_complete(bad);
    EXPECT_NE(check_complete(bad).find("not a byte count"), std::string::npos) << check_complete(bad);
    EXPECT_EQ(find_latest_complete(t.file("out")).value_or(""), good);
  }
  test::write_bytes(marker_path, marker);
  ASSERT_EQ(check_complete(bad), "");

  // A stray directory whose number does not fit in 64 bits is not a checkpoint of ours.
  fs::create_directories(t.file("out") + "/checkpoint-99999999999999999999999");
  EXPECT_EQ(find_latest_complete(t.file("out")).value_or(""), bad);

  // NaN moments pass the header checks but are refused when loaded, naming the tensor.
  io::NamedTensors nan;
  for (const auto& name : moments.names()) {
    auto m = moments.tensor(name).clone();
    if (name == "model.norm.weight.exp_avg_sq") m.fill_(std::nan(""));
    nan.emplace_back(name, m);
  }
  replace_safetensors(bad, "optimizer.safetensors", nan);
  EXPECT_EQ(check_complete(bad), "");
  EXPECT_SELFRL_ERROR(load(bad, *model, sft.optimizer()), "'model.norm.weight.exp_avg_sq' holds NaN or Inf",
                      "resume from an earlier one");

  EXPECT_SELFRL_ERROR(save(t.file("out"), *model, sft.optimizer(), TrainerState{-3, 0, {}}), "step must be >= 0");
  EXPECT_FALSE(fs::exists(t.file("out") + "/checkpoint--3"));
}

}  // namespace
}  // namespace selfrl::checkpoint
