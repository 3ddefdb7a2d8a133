// Findings of the hostile-input sweep (tests/hostile/sweep.py, issue 15), one test each: every
// case below once crashed, hung, leaked "internal error: ..." or exited 0 on bad input. Each must
// now end in a selfrl::Error (or a `selfrl: error:` line) that names the file, key or option.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "../model/tiny_models.h"
#include "selfrl/data/prompt_dataset.h"
#include "selfrl/io/file_util.h"
#include "selfrl/io/model_config.h"
#include "selfrl/io/safetensors.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/model/lora.h"
#include "selfrl/tokenizer/hf_tokenizer.h"
#include "selfrl/tokenizer/tokenizer.h"
#include "test_util.h"

namespace selfrl::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A small BPE tokenizer.json (the shape of the hostile tokenizer tests' one).
json small_tokenizer() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}, {"a", 3}, {"b", 4}, {"c", 5}, {"ab", 6}};
  return {{"added_tokens", json::array({{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                                        {{"id", 1}, {"content", "<s>"}, {"special", true}},
                                        {{"id", 2}, {"content", "</s>"}, {"special", true}}})},
          {"normalizer", nullptr},
          {"pre_tokenizer", nullptr},
          {"post_processor", nullptr},
          {"decoder", nullptr},
          {"model", {{"type", "BPE"}, {"unk_token", "<unk>"}, {"vocab", vocab}, {"merges", json::array({"a b"})}}}};
}

// A model directory of the tiny Llama with its PEFT adapter (r = 4, q_proj and v_proj) in dir/a.
void write_model_and_adapter(const TempDir& t) {
  auto m = tiny_model("llama", 1);
  m->save_pretrained(t.file("m"));
  model::LoraConfig c;
  c.r = 4;
  c.target_modules = {"q_proj", "v_proj"};
  model::add_lora(*m, c);
  model::save_lora(*m, c, t.file("a"));
}

void edit_adapter_config(const TempDir& t, const std::function<void(json&)>& edit) {
  json j = io::read_json_file(t.file("a/adapter_config.json"));
  edit(j);
  write_bytes(t.file("a/adapter_config.json"), j.dump());
}

// sweep: lora/config-r=1099511627776 → "internal error: DefaultCPUAllocator: can't allocate
// memory: you tried to allocate 140737488355328 bytes".
TEST(HostileSweepFindings, AdapterRankIsBoundedBeforeAllocating) {
  TempDir t;
  write_model_and_adapter(t);
  edit_adapter_config(t, [](json& j) { j["r"] = int64_t{1} << 40; });
  auto m = model::CausalLM::from_pretrained(t.file("m"));
  EXPECT_SELFRL_ERROR(model::load_lora(*m, t.file("a")), "adapter_config.json", "lora r = 1099511627776",
                      "larger than every dimension of the model");
  model::LoraConfig c;
  c.r = int64_t{1} << 40;
  EXPECT_SELFRL_ERROR(model::add_lora(*m, c), "lora r = 1099511627776", "larger than every dimension");
}

// sweep: lora/config-r=4.5 merged silently as r = 4.
TEST(HostileSweepFindings, AdapterRankMustBeAnInteger) {
  TempDir t;
  write_model_and_adapter(t);
  edit_adapter_config(t, [](json& j) { j["r"] = 4.5; });
  auto m = model::CausalLM::from_pretrained(t.file("m"));
  EXPECT_SELFRL_ERROR(model::load_lora(*m, t.file("a")), "adapter_config.json", "r must be an integer, got 4.5");
}

// sweep: lora/weights-dtype-int: I32 adapter weights merged as if they were numbers.
TEST(HostileSweepFindings, IntegerAdapterWeightsAreRefused) {
  TempDir t;
  write_model_and_adapter(t);
  const auto f = io::SafeTensorsFile::open(t.file("a/adapter_model.safetensors"));
  io::NamedTensors tensors;
  for (const auto& n : f.names()) tensors.emplace_back(n, f.tensor(n).to(torch::kInt32));
  io::save_safetensors(t.file("a/adapter_model.safetensors"), tensors);
  auto m = model::CausalLM::from_pretrained(t.file("m"));
  EXPECT_SELFRL_ERROR(model::load_lora(*m, t.file("a")), "adapter_model.safetensors", "dtype I32",
                      "adapter weights are F32, BF16 or F16");
}

// sweep: lora/weights-nan merged a NaN adapter without a word.
TEST(HostileSweepFindings, NonFiniteAdapterWeightsAreNamedInAWarning) {
  TempDir t;
  write_model_and_adapter(t);
  const auto f = io::SafeTensorsFile::open(t.file("a/adapter_model.safetensors"));
  io::NamedTensors tensors;
  for (const auto& n : f.names()) tensors.emplace_back(n, torch::full_like(f.tensor(n), NAN));
  io::save_safetensors(t.file("a/adapter_model.safetensors"), tensors);
  const auto r = run_command(selfrl_cli() + " lora merge --base " + t.file("m") + " --adapter " + t.file("a") +
                             " --out " + t.file("out") + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("adapter tensor(s) hold NaN or Inf values"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("lora_A.weight"), std::string::npos) << r.output;
}

// sweep: filetypes/{fifo,dev-zero}/tokenizer.model hung; directory/tokenizer.model leaked
// "internal error: basic_filebuf::underflow error reading the file: Is a directory".
TEST(HostileSweepFindings, SentencepieceModelThatIsNotAFileIsRefusedWithoutBlocking) {
  SELFRL_SKIP_WITHOUT_SENTENCEPIECE();
  TempDir t;
  fs::create_directories(t.file("fifo"));
  ASSERT_EQ(::mkfifo(t.file("fifo/tokenizer.model").c_str(), 0600), 0);
  EXPECT_SELFRL_ERROR(tokenizer::Tokenizer::from_pretrained(t.file("fifo")), "fifo/tokenizer.model", "FIFO");
  fs::create_directories(t.file("dir/tokenizer.model"));
  EXPECT_SELFRL_ERROR(tokenizer::Tokenizer::from_pretrained(t.file("dir")), "dir/tokenizer.model", "directory");
  fs::create_directories(t.file("zero"));
  fs::create_symlink("/dev/zero", t.file("zero/tokenizer.model"));
  EXPECT_SELFRL_ERROR(tokenizer::Tokenizer::from_pretrained(t.file("zero")), "zero/tokenizer.model", "device");
}

// sweep: dataset/messages-bad-role/{eval,train} → "internal error: [json.exception.type_error.302]
// type must be string, but is number".
TEST(HostileSweepFindings, MessageRoleThatIsNotAStringIsNamedWithItsLine) {
  TempDir t;
  const auto tok = tokenizer::HfTokenizer::from_json_string(small_tokenizer().dump(), {}, "tokenizer.json");
  write_bytes(t.file("d.jsonl"),
              "{\"messages\": [{\"role\": \"user\", \"content\": \"ab\"}]}\n"
              "{\"messages\": [{\"role\": 5, \"content\": \"ab\"}]}\n");
  EXPECT_SELFRL_ERROR(data::load_prompts(t.file("d.jsonl"), tok.get(), {}), "d.jsonl:2", "\"role\" must be a string",
                      "got 5");
}

// sweep: generation_config/array: a generation_config.json holding [] was ignored.
TEST(HostileSweepFindings, GenerationConfigMustBeAnObject) {
  TempDir t;
  write_bytes(t.file("generation_config.json"), "[]");
  EXPECT_SELFRL_ERROR(model::eos_token_ids(t.path(), tiny_config("llama")), "generation_config.json",
                      "must hold a JSON object, got array");
}

// sweep: filetypes/dangling/tokenizer_config.json: a dangling link was taken for "no config".
// sweep: tokenizer/tokenizer_config-add-bos-string: "add_bos_token": "yes" was ignored.
TEST(HostileSweepFindings, TokenizerConfigDanglingLinkAndNonBooleanFlagsAreRefused) {
  TempDir t;
  write_bytes(t.file("tokenizer.json"), small_tokenizer().dump());
  fs::create_symlink(t.file("gone.json"), t.file("tokenizer_config.json"));
  EXPECT_SELFRL_ERROR(tokenizer::Tokenizer::from_pretrained(t.path()), "tokenizer_config.json",
                      "symlink to a file that does not exist", "gone.json");
  fs::remove(t.file("tokenizer_config.json"));
  write_bytes(t.file("tokenizer_config.json"), R"({"add_bos_token": "yes"})");
  EXPECT_SELFRL_ERROR(tokenizer::Tokenizer::from_pretrained(t.path()), "tokenizer_config.json",
                      "'add_bos_token' must be true or false, got \"yes\"");
}

// sweep: config/model_type-{gpt2,bert}: a Llama architecture with another model_type loaded.
// sweep: config/rms_norm_eps/{huge,1e300}: loaded, every hidden state scaled to ~0.
TEST(HostileSweepFindings, ContradictoryModelTypeAndAbsurdEpsilonAreRefused) {
  auto j = tiny_config_json("llama");
  j["model_type"] = "gpt2";
  EXPECT_SELFRL_ERROR(model::CausalLM::from_config(io::ModelConfig::from_json(j, "config.json")), "config.json",
                      "model_type 'gpt2' does not match architectures [LlamaForCausalLM]");
  j = tiny_config_json("llama");
  j["rms_norm_eps"] = 1e300;
  EXPECT_SELFRL_ERROR(io::ModelConfig::from_json(j, "config.json"), "config.json", "rms_norm_eps", "must be below 1");
}

// sweep: shards/weight-map-empty: an index listing no tensors was "valid" (inspect exited 0).
TEST(HostileSweepFindings, IndexWithAnEmptyWeightMapIsRefused) {
  TempDir t;
  write_bytes(t.file("model.safetensors.index.json"), R"({"metadata": {}, "weight_map": {}})");
  EXPECT_SELFRL_ERROR(io::SafeTensorsCheckpoint::open(t.path()), "model.safetensors.index.json",
                      "'weight_map' lists no tensors");
}

// Fuzz finding 6 (the 1-hour safetensors run, tests/fuzz/regressions/safetensors/): a weight_map
// file name longer than the OS allows escaped as std::filesystem_error ("File name too long").
TEST(HostileSweepFindings, AShardNameTheOsRefusesIsAnErrorNamingTheEntry) {
  TempDir t;
  const std::string name = "model-" + std::string(300, 'p') + ".safetensors";
  write_bytes(t.file("model.safetensors.index.json"), R"({"weight_map": {"w": ")" + name + R"("}})");
  EXPECT_SELFRL_ERROR(io::SafeTensorsCheckpoint::open(t.path()), "model.safetensors.index.json: weight_map['w']",
                      "cannot look up 'model-pppp", "File name too long");
}

// sweep: recipe/model=data/seed.jsonl: a file given as the model was parsed as config.json
// ("seed.jsonl:2:1: invalid JSON").
TEST(HostileSweepFindings, AFileGivenAsTheModelDirectoryIsNamedAsSuch) {
  TempDir t;
  write_bytes(t.file("seed.jsonl"), "{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n");
  EXPECT_SELFRL_ERROR(model::CausalLM::from_pretrained(t.file("seed.jsonl")), "seed.jsonl",
                      "a model directory (config.json + safetensors) is expected, but this is a file");
}

// The command-line options the sweep found unchecked or reported under internal names:
//   flags/generate--num-samples=100000000000 → internal error (allocation of 800 GB)
//   flags/generate--threads=100000 → hang;  --threads=-1 → silently ignored
//   flags/generate--temperature=inf, --chat-format=bogus → exit 0
//   flags/generate--top-p=2 etc. → "top_p must be in (0, 1]" without the option's name
//   flags/eval--max-examples=-1, logprobs --batch-size 0 → exit 0
//   flags/eval-answer-field-missing → "has no answer field (hint: add \"answer\" ...)" for --answer-field nope
//   flags/demo-grpo-lr-nan → "internal error: Invalid learning rate: nan"
TEST(HostileSweepFindings, CommandLineOptionsAreCheckedAndNamed) {
  TempDir t;
  auto m = tiny_model("llama", 1);
  m->save_pretrained(t.file("m"));
  write_bytes(t.file("ids.jsonl"), "{\"input_ids\": [1, 2, 3], \"answer\": \"3\"}\n");
  const std::string gen =
      selfrl_cli() + " generate --model " + t.file("m") + " --in " + t.file("ids.jsonl") + " --max-new-tokens 2 ";
  struct Case {
    std::string args, expected;
  };
  const std::vector<Case> cases = {
      {gen + "--num-samples 100000000000", "option --num-samples must be in [1, 1000000], got 100000000000"},
      {gen + "--num-samples 0", "option --num-samples must be in [1, 1000000], got 0"},
      {gen + "--threads 100000", "option --threads must be in [0, 4096], got 100000"},
      {gen + "--threads -1", "option --threads must be in [0, 4096], got -1"},
      {gen + "--temperature inf", "option --temperature expects a finite number, got 'inf'"},
      {gen + "--top-p 2", "option --top-p must be in (0, 1], got 2"},
      {gen + "--batch-size 0", "option --batch-size must be in [1, 1000000], got 0"},
      {gen + "--chat-format bogus", "option --chat-format: unknown chat format 'bogus'"},
      {selfrl_cli() + " logprobs --model " + t.file("m") + " --in " + t.file("ids.jsonl") + " --batch-size 0",
       "option --batch-size must be in [1, 1000000], got 0"},
      {selfrl_cli() + " eval --model " + t.file("m") + " --data " + t.file("ids.jsonl") + " --max-examples -1",
       "option --max-examples must be in [0, "},
      {selfrl_cli() + " demo --quick --quiet --out " + t.file("demo") + " --grpo-lr nan",
       "option --grpo-lr expects a finite number, got 'nan'"},
  };
  for (const auto& c : cases) {
    const auto r = run_command(c.args + " 2>&1");
    EXPECT_EQ(r.exit_code, 1) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find("selfrl: error: "), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_EQ(r.output.find("internal error"), std::string::npos) << c.args << "\n" << r.output;
  }
}

// sweep: dataset/eval-answer-field-missing, flags/eval--answer-field=: `--answer-field nope` on rows
// without it said "has no answer field (hint: add \"answer\" to every evaluation row)".
TEST(HostileSweepFindings, EvalNamesTheAnswerFieldItWasGiven) {
  SELFRL_SKIP_WITHOUT_SENTENCEPIECE();
  TempDir t;
  const auto demo = run_command(selfrl_cli() + " demo --quick --quiet --out " + t.file("demo") + " 2>&1");
  ASSERT_EQ(demo.exit_code, 0) << demo.output;
  const std::string eval = selfrl_cli() + " eval --model " + t.file("demo/base") + " --data " +
                           t.file("demo/data/eval_dev.jsonl") + " --max-examples 2 --max-new-tokens 2 ";
  auto r = run_command(eval + "--answer-field nope 2>&1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("eval_dev.jsonl:1: row has no \"nope\" field (the reference answer)"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("--answer-field"), std::string::npos) << r.output;
  r = run_command(eval + "--answer-field '' 2>&1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("selfrl eval: option --answer-field is empty"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace selfrl::test
