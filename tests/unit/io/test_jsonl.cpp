// JSON Lines: streaming with line numbers, UTF-8 validation, atomic writes.
#include "selfrl/io/jsonl.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "selfrl/io/file_util.h"
#include "test_util.h"

using selfrl::test::TempDir;

TEST(Jsonl, ReadsRecordsSkippingBlankLinesWithCrlfAndNoFinalNewline) {
  TempDir dir;
  const std::string path = dir.file("d.jsonl");
  selfrl::test::write_bytes(path, "\xEF\xBB\xBF{\"a\": 1}\r\n\n  \n{\"a\": 2}\n{\"a\": \"\xC3\xA9\"}");
  selfrl::io::JsonlReader r(path);
  nlohmann::json rec;
  ASSERT_TRUE(r.next(rec));
  EXPECT_EQ(rec["a"], 1);
  EXPECT_EQ(r.line(), 1u);
  ASSERT_TRUE(r.next(rec));
  EXPECT_EQ(rec["a"], 2);
  EXPECT_EQ(r.line(), 4u);
  ASSERT_TRUE(r.next(rec));
  EXPECT_EQ(rec["a"], "\xC3\xA9");
  EXPECT_EQ(r.where(), path + ":5");
  EXPECT_FALSE(r.next(rec));
}

TEST(Jsonl, ErrorsNameFileAndLine) {
  TempDir dir;
  const std::string path = dir.file("bad.jsonl");
  selfrl::test::write_bytes(path, "{\"a\": 1}\n{\"a\": \n");
  EXPECT_SELFRL_ERROR(selfrl::io::read_jsonl(path), path + ":2", "invalid JSON");
  selfrl::test::write_bytes(path, "{\"a\": 1}\n{\"a\": \"x\xC0\xAF\"}\n");  // overlong '/'
  EXPECT_SELFRL_ERROR(selfrl::io::read_jsonl(path), path + ":2", "invalid UTF-8 at byte 9");
  selfrl::test::write_bytes(path, "[1, 2]\n");
  EXPECT_SELFRL_ERROR(selfrl::io::read_jsonl(path), path + ":1", "expected a JSON object, got array");
  selfrl::test::write_bytes(path, "\n\n");
  EXPECT_SELFRL_ERROR(selfrl::io::read_jsonl(path), path, "dataset is empty");
  EXPECT_SELFRL_ERROR(selfrl::io::read_jsonl(dir.file("missing.jsonl")), "missing.jsonl", "cannot open");
}

TEST(Jsonl, WriterIsAtomic) {
  TempDir dir;
  const std::string path = dir.file("out.jsonl");
  {
    selfrl::io::JsonlWriter w(path);
    w.write({{"x", 1}});
    EXPECT_FALSE(std::filesystem::exists(path));  // not visible until close()
  }                                               // destroyed without close(): nothing appears
  EXPECT_FALSE(std::filesystem::exists(path));
  selfrl::io::JsonlWriter w(path);
  w.write({{"x", 1}});
  w.write({{"t", "caf\xC3\xA9"}});
  w.close();
  const auto recs = selfrl::io::read_jsonl(path);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[1]["t"], "caf\xC3\xA9");
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos);
}

TEST(Utf8, ValidatorMatchesTheStandard) {
  using selfrl::io::find_invalid_utf8;
  constexpr auto npos = std::string_view::npos;
  EXPECT_EQ(find_invalid_utf8("plain ascii"), npos);
  EXPECT_EQ(find_invalid_utf8("\xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9"), npos);
  EXPECT_EQ(find_invalid_utf8("ab\x80"), 2u);            // lone continuation byte
  EXPECT_EQ(find_invalid_utf8("\xC0\x80"), 0u);          // overlong NUL
  EXPECT_EQ(find_invalid_utf8("x\xED\xA0\x80"), 1u);     // UTF-16 surrogate
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(find_invalid_utf8("\xE4\xB8"), 0u);          // truncated sequence
}
