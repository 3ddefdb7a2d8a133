// Hostile inputs for the file readers and the model config (issue 15): things that are not
// regular files, sizes that would not fit, nesting that would recurse, numbers that do not fit
// their type. Each must end in an Error that names the file and what to do, before anything
// blocks, recurses or allocates.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "../model/tiny_models.h"
#include "selfrl/io/file_util.h"
#include "selfrl/io/jsonl.h"
#include "selfrl/io/model_config.h"
#include "selfrl/io/safetensors.h"
#include "selfrl/metrics/metrics.h"
#include "selfrl/model/causal_lm.h"
#include "test_util.h"

namespace selfrl::io {
namespace {
namespace fs = std::filesystem;

// A safetensors file whose header lists `n` one-float tensors t0..t{n-1} (plus `extra_json`
// spliced into the object, e.g. a duplicate name).
void write_many_tensor_file(const std::string& path, int n, const std::string& extra_json = "") {
  std::string header = "{";
  for (int i = 0; i < n; ++i) {
    header += (i ? "," : "") + std::string("\"t") + std::to_string(i) + "\":{\"dtype\":\"F32\",\"shape\":[1]," +
              "\"data_offsets\":[" + std::to_string(4 * i) + "," + std::to_string(4 * i + 4) + "]}";
  }
  header += extra_json + "}";
  std::string bytes(8, '\0');
  for (int k = 0; k < 8; ++k) bytes[k] = static_cast<char>((static_cast<uint64_t>(header.size()) >> (8 * k)) & 0xFF);
  bytes += header + std::string(4 * static_cast<size_t>(n), '\0');
  test::write_bytes(path, bytes);
}

TEST(HostileIo, FifoDirectoryAndDeviceAreRefusedWithoutBlocking) {
  test::TempDir t;
  const std::string fifo = t.file("model.safetensors");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  // Opening a FIFO for reading blocks until a writer comes: these must return at once.
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(fifo), "model.safetensors", "FIFO", "not a regular file");
  EXPECT_SELFRL_ERROR(read_text_file(fifo), "model.safetensors", "FIFO");
  EXPECT_SELFRL_ERROR(read_json_file(t.path()), t.path(), "directory");
  EXPECT_SELFRL_ERROR(read_text_file("/dev/zero"), "/dev/zero", "character device");
  EXPECT_SELFRL_ERROR(check_regular_file(t.path(), "model config"), "model config is a directory");
}

TEST(HostileIo, SymlinkLoopIsNamed) {
  test::TempDir t;
  fs::create_symlink(t.file("b"), t.file("a"));
  fs::create_symlink(t.file("a"), t.file("b"));
  EXPECT_SELFRL_ERROR(read_text_file(t.file("a")), t.file("a"), "symlink loop");
}

TEST(HostileIo, OversizedTextFileIsRefusedBeforeReading) {
  test::TempDir t;
  test::write_bytes(t.file("big.json"), std::string(2048, ' '));
  EXPECT_SELFRL_ERROR(read_text_file(t.file("big.json"), 1024), "big.json", "2048 bytes", "limit of 1024");
}

TEST(HostileIo, DeeplyNestedJsonIsRefusedWithItsPosition) {
  test::TempDir t;
  test::write_bytes(t.file("config.json"), "{\"a\":" + std::string(30000, '[') + std::string(30000, ']') + "}");
  EXPECT_SELFRL_ERROR(read_json_file(t.file("config.json")), "config.json:1:", "deeper than the limit of 256");
  // Brackets inside strings do not count.
  const std::string in_string = "{\"a\":\"" + std::string(1000, '[') + "\"}";
  EXPECT_NO_THROW(check_json_depth(in_string, "x"));
}

TEST(HostileIo, ManyTensorHeaderIsParsedInLinearTimeAndDuplicatesStillCaught) {
  test::TempDir t;
  // 30,000 entries took 6 s with the old quadratic duplicate check; now well under one.
  write_many_tensor_file(t.file("many.safetensors"), 30000);
  const auto f = SafeTensorsFile::open(t.file("many.safetensors"));
  EXPECT_EQ(f.names().size(), 30000u);
  write_many_tensor_file(t.file("dup.safetensors"), 3,
                         ",\"t1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}");
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(t.file("dup.safetensors")), "tensor 't1' is listed twice");
}

TEST(HostileIo, NestedSafetensorsHeaderIsRefused) {
  test::TempDir t;
  const std::string header = "{\"__metadata__\":" + std::string(5000, '[') + std::string(5000, ']') + "}";
  std::string bytes(8, '\0');
  for (int k = 0; k < 8; ++k) bytes[k] = static_cast<char>((header.size() >> (8 * k)) & 0xFF);
  test::write_bytes(t.file("deep.safetensors"), bytes + header);
  EXPECT_SELFRL_ERROR(SafeTensorsFile::open(t.file("deep.safetensors")), "deep.safetensors", "deeper than the limit");
}

TEST(HostileIo, ConfigNumbersThatDoNotFitAreReportedAsWritten) {
  auto j = test::tiny_config_json("llama");
  j["vocab_size"] = UINT64_MAX;  // 18446744073709551615, which a signed read shows as -1
  EXPECT_SELFRL_ERROR(ModelConfig::from_json(j, "cfg.json"), "cfg.json", "vocab_size", "18446744073709551615");
}

TEST(HostileIo, UnsupportedActivationIsRefused) {
  auto j = test::tiny_config_json("llama");
  j["hidden_act"] = "gelu";
  EXPECT_SELFRL_ERROR(ModelConfig::from_json(j, "cfg.json"), "cfg.json", "hidden_act", "gelu", "silu");
  j["hidden_act"] = "silu";
  EXPECT_NO_THROW(ModelConfig::from_json(j, "cfg.json"));
}

TEST(HostileIo, AbsurdModelSizesAreRefusedBeforeAllocation) {
  auto j = test::tiny_config_json("llama");
  j["num_hidden_layers"] = 10000000;
  j["hidden_size"] = 4096;
  j["num_attention_heads"] = 32;
  j["num_key_value_heads"] = 8;
  j["intermediate_size"] = 14336;
  EXPECT_SELFRL_ERROR(ModelConfig::from_json(j, "cfg.json"), "cfg.json", "parameters, above the limit");

  // Within the sanity limit but beyond this machine's memory: refused by the constructor, with
  // the estimated size, before any tensor exists.
  j["num_hidden_layers"] = 2000;  // ~4.4e11 parameters, ~1.6 TiB in float32
  const auto cfg = ModelConfig::from_json(j, "cfg.json");
  EXPECT_GT(cfg.estimated_parameters(), 4e11);
  EXPECT_SELFRL_ERROR(model::CausalLM::from_config(cfg), "GiB", "more than this machine's", "num_hidden_layers");
}

TEST(HostileIo, EstimatedParametersMatchesTheModel) {
  for (const char* arch : {"llama", "qwen2", "qwen3", "tied"}) {
    const auto cfg = test::tiny_config(arch);
    auto m = model::CausalLM::from_config(cfg);
    int64_t n = 0;
    for (const auto& p : m->parameters()) n += p.numel();
    // An upper bound that counts every optional bias and norm; never below the real count.
    EXPECT_GE(cfg.estimated_parameters(), static_cast<double>(n)) << arch;
    EXPECT_LE(cfg.estimated_parameters(), 1.1 * static_cast<double>(n)) << arch;
  }
}

TEST(HostileIo, ConfigLayerCountBeyondTheWeightsIsCaughtFromTheHeaders) {
  test::TempDir t;
  auto m = test::tiny_model("llama", 1);
  m->save_pretrained(t.path());
  auto j = read_json_file(t.file("config.json"));
  j["num_hidden_layers"] = 10000000;
  test::write_bytes(t.file("config.json"), j.dump());
  EXPECT_SELFRL_ERROR(model::CausalLM::from_pretrained(t.path()), "num_hidden_layers: 10000000", "layers 0..1");
  j["num_hidden_layers"] = 2;
  j["hidden_size"] = 4096;
  j["num_attention_heads"] = 32;
  j["num_key_value_heads"] = 8;
  test::write_bytes(t.file("config.json"), j.dump());
  EXPECT_SELFRL_ERROR(model::CausalLM::from_pretrained(t.path()), "describes a model of about", "hold");
}

TEST(HostileIo, OneRunPerDirectory) {
  test::TempDir t;
  {
    DirectoryLock first(t.path());
    EXPECT_SELFRL_ERROR(DirectoryLock second(t.path()), t.path(), "another run is using this directory",
                        "pid " + std::to_string(::getpid()));
  }
  EXPECT_NO_THROW(DirectoryLock again(t.path()));  // released with the first
}

TEST(HostileIo, WritesFollowSymlinksAndNeverReplaceDeviceNodes) {
  test::TempDir t;
  test::write_bytes(t.file("target.json"), "old");
  fs::create_symlink(t.file("target.json"), t.file("link.json"));
  write_text_file_atomic(t.file("link.json"), "new");
  EXPECT_TRUE(fs::is_symlink(t.file("link.json")));
  EXPECT_EQ(read_text_file(t.file("target.json")), "new");

  write_text_file_atomic("/dev/null", "discarded");  // in place: /dev/null stays a device
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_SELFRL_ERROR(write_text_file_atomic(t.path(), "x"), "is a directory");
}

TEST(HostileIo, JsonlLinesAreBounded) {
  test::TempDir t;
  test::write_bytes(t.file("rows.jsonl"), "{\"a\": 1}\n" + std::string(1000, ' ') + "{\"b\": 2}\n");
  JsonlReader reader(t.file("rows.jsonl"));
  reader.set_max_line_bytes(100);
  nlohmann::json row;
  ASSERT_TRUE(reader.next(row));
  EXPECT_SELFRL_ERROR(reader.next(row), "rows.jsonl", "line 2 is longer than the limit of 100 bytes");
  // An endless stream with no newline ends at the default limit instead of exhausting memory.
  JsonlReader endless("/dev/zero");
  EXPECT_SELFRL_ERROR(endless.next(row), "/dev/zero", "line 1 is longer than the limit");
  EXPECT_SELFRL_ERROR(JsonlReader reader2(t.path()), "is a directory");
}

TEST(HostileIo, FailedWritesToStandardOutputAreAnError) {
  const auto r = test::run_command("{ " + test::selfrl_cli() + " info > /dev/full; }");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("writing to standard output failed"), std::string::npos) << r.output;
}

TEST(HostileIo, MetricsWriteFailureWarnsAndTrainingGoesOn) {
  test::TempDir t;
  fs::create_symlink("/dev/full", t.file("metrics.jsonl"));  // every write: ENOSPC
  metrics::MetricsLogger logger(t.path(), /*tensorboard=*/false);
  testing::internal::CaptureStderr();
  EXPECT_NO_THROW(logger.log(3, {{"loss", 1.0}}));
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("metrics.jsonl: write failed (No space left on device)"), std::string::npos) << err;
  EXPECT_NE(err.find("step 3 are lost, training goes on"), std::string::npos) << err;
}

}  // namespace
}  // namespace selfrl::io

// Found by tests/fuzz (tests/fuzz/regressions/*/json-number-overflow*): a number beyond double
// range is nlohmann's out_of_range.406, which escaped every JSON reader as an internal error.
namespace selfrl::io {
namespace {
TEST(HostileIo, FuzzFindingJsonNumberOverflowIsAnErrorNamingTheFile) {
  test::TempDir t;
  test::write_bytes(t.file("config.json"), "{\"r\": 1e400}");
  EXPECT_SELFRL_ERROR(read_json_file(t.file("config.json")), "config.json", "invalid JSON", "1e400");
  test::write_bytes(t.file("rows.jsonl"), "{\"prompt\": \"a\", \"answer\": 1e400}\n");
  JsonlReader reader(t.file("rows.jsonl"));
  nlohmann::json row;
  EXPECT_SELFRL_ERROR(reader.next(row), "rows.jsonl:1", "invalid JSON", "1e400");
}
}  // namespace
}  // namespace selfrl::io
