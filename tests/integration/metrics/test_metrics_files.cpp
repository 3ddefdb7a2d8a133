// metrics.jsonl and TensorBoard event files, the latter parsed by an independent reader.
#include <gtest/gtest.h>

#include <filesystem>

#include "selfrl/io/jsonl.h"
#include "selfrl/metrics/metrics.h"
#include "test_util.h"

TEST(Crc32c, KnownVectors) {
  // RFC 3720 B.4: 32 bytes of zeros → 0x8A9136AA; "123456789" → 0xE3069283.
  const std::string zeros(32, '\0');
  EXPECT_EQ(selfrl::metrics::crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(selfrl::metrics::crc32c("123456789", 9), 0xE3069283u);
}

TEST(MetricsFiles, JsonlAndTensorBoardParse) {
  selfrl::test::TempDir dir;
  std::string tb_path;
  {
    selfrl::metrics::MetricsLogger logger(dir.path());
    logger.log(1, {{"reward", 0.25}, {"loss", -0.5}});
    logger.log(2, {{"reward", 0.75}, {"kl", std::nan("")}});
  }
  const auto rows = selfrl::io::read_jsonl(dir.file("metrics.jsonl"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["step"], 1);
  EXPECT_EQ(rows[0]["reward"], 0.25);
  EXPECT_TRUE(rows[1]["kl"].is_null());
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) tb_path = e.path().string();
  ASSERT_FALSE(tb_path.empty());
  const auto r = selfrl::test::run_command(selfrl::test::python() + " " + selfrl::test::source_dir() +
                                           "/tests/python/tfevents_reader.py " + tb_path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(R"({"step": 1, "tag": "train/reward", "value": 0.25})"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(R"({"step": 2, "tag": "train/reward", "value": 0.75})"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(R"({"step": 1, "tag": "train/loss", "value": -0.5})"), std::string::npos) << r.output;
}
