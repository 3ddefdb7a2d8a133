// A tiny world for loop tests: an in-process-trained sentencepiece tokenizer, a random tiny
// Llama saved in the HF layout with it, and arithmetic / feasibility JSONL files. Built once per
// test binary (it takes about a second) under a temp dir.
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "selfrl/introspection/introspection_generator.h"
#include "selfrl/loops/preference_loops.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/tokenizer/sentencepiece_tokenizer.h"
#include "test_util.h"

namespace selfrl::test {

struct LoopFixture {
  TempDir dir;
  std::string model, train, unlabelled, eval, seeds, knowrl_eval;

  LoopFixture() {
    namespace fs = std::filesystem;
    std::vector<std::string> lines;
    for (int a = 0; a < 10; ++a)
      for (int b = 0; b < 10; ++b)
        lines.push_back(std::to_string(a) + " + " + std::to_string(b) + " = " + std::to_string(a + b));
    for (int i = 0; i < 20; ++i) {
      lines.push_back(introspection::judge_prompt("what is 2 + 3 ? feasible infeasible"));
      lines.push_back(introspection::writer_prompt("feasible", {"what is 1 + 1 ?"}));
      lines.push_back(introspection::writer_prompt("infeasible", {"what will happen tomorrow ?"}));
      lines.push_back(loops::default_judge_template());
    }
    tokenizer::SentencePieceTrainOptions opt;
    opt.vocab_size = 160;
    const std::string spm = tokenizer::train_sentencepiece(lines, dir.file("tok"), opt);
    model = dir.file("base");
    fs::create_directories(model);
    fs::copy_file(spm, model + "/tokenizer.model");
    nlohmann::json cfg = {{"architectures", {"LlamaForCausalLM"}},
                          {"model_type", "llama"},
                          {"vocab_size", 160},
                          {"hidden_size", 32},
                          {"intermediate_size", 64},
                          {"num_hidden_layers", 2},
                          {"num_attention_heads", 4},
                          {"num_key_value_heads", 2},
                          {"max_position_embeddings", 512},
                          {"rms_norm_eps", 1e-5},
                          {"rope_theta", 10000.0},
                          {"tie_word_embeddings", false},
                          {"bos_token_id", 1},
                          {"eos_token_id", 2},
                          {"initializer_range", 0.2}};
    auto m = model::CausalLM::from_config(io::ModelConfig::from_json(cfg, "fixture"), 7);
    m->save_pretrained(model);
    train = write(
        "train.jsonl",
        [](int i) {
          const int a = i % 10, b = (i * 3) % 10;
          return nlohmann::json{{"prompt", std::to_string(a) + " + " + std::to_string(b) + " ="},
                                {"answer", std::to_string(a + b)},
                                {"difficulty", a + b < 10 ? "easy" : "hard"}};
        },
        8);
    unlabelled = write(
        "unlabelled.jsonl",
        [](int i) {
          return nlohmann::json{{"prompt", std::to_string(i) + " + " + std::to_string(9 - i) + " ="},
                                {"difficulty", i < 4 ? "easy" : "hard"}};
        },
        6);
    eval = write(
        "eval.jsonl",
        [](int i) {
          return nlohmann::json{{"prompt", std::to_string(i) + " + 1 ="}, {"answer", std::to_string(i + 1)}};
        },
        4);
    seeds = write(
        "seeds.jsonl",
        [](int i) {
          return i % 2 == 0
                     ? nlohmann::json{{"prompt", "what is " + std::to_string(i) + " + 1 ?"}, {"label", "feasible"}}
                     : nlohmann::json{{"prompt", "what will happen on day " + std::to_string(i) + " ?"},
                                      {"label", "infeasible"}};
        },
        6);
    knowrl_eval = write(
        "knowrl_eval.jsonl",
        [](int i) {
          return i % 2 == 0
                     ? nlohmann::json{{"prompt", "what is 3 + " + std::to_string(i) + " ?"}, {"label", "feasible"}}
                     : nlohmann::json{{"prompt", "what will happen in year " + std::to_string(i) + " ?"},
                                      {"label", "infeasible"}};
        },
        4);
  }

  template <typename F>
  std::string write(const std::string& name, F row, int n) {
    std::ofstream out(dir.file(name));
    for (int i = 0; i < n; ++i) out << row(i).dump() << "\n";
    return dir.file(name);
  }
};

// The metrics.jsonl lines of one kind ("sft", "grpo", "iteration", ...).
inline std::vector<nlohmann::json> lines_of(const std::string& path, const std::string& kind) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string l; std::getline(in, l);) {
    auto j = nlohmann::json::parse(l);
    if (j["kind"] == kind) out.push_back(j);
  }
  return out;
}

// One fixture per test binary.
inline LoopFixture& loop_fixture() {
  static auto* f = new LoopFixture();
  return *f;
}

}  // namespace selfrl::test
