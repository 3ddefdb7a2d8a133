// JSON Lines datasets: one JSON value per line (https://jsonlines.org).
//
// JsonlReader streams a file line by line; every error names "path:line" and what is wrong
// (invalid UTF-8 with its column, a JSON syntax error, a value that is not an object when
// objects are required). Blank lines are skipped; a final line without '\n' and CRLF line
// endings are accepted.
#pragma once

#include <cstddef>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "selfrl/io/file_util.h"

namespace selfrl::io {

// One record per line: a line longer than this is refused (a 64k-token prompt is ~300 KB).
inline constexpr size_t kMaxJsonlLineBytes = size_t{64} << 20;

class JsonlReader {
 public:
  // Opens `path` ("-" is standard input). Throws Error when it cannot be opened.
  explicit JsonlReader(std::string path, bool require_objects = true);
  // Reads the next record into `out`; false at end of file.
  bool next(nlohmann::json& out);
  // 1-based line number of the record last returned.
  size_t line() const { return line_; }
  const std::string& path() const { return path_; }
  // "path:line" of the record last returned, for callers' own errors about its content.
  std::string where() const { return path_ + ":" + std::to_string(line_); }
  // Longest line accepted (kMaxJsonlLineBytes by default); longer ones are an Error.
  void set_max_line_bytes(size_t n) { max_line_bytes_ = n; }

 private:
  bool read_line(std::string& text);
  size_t max_line_bytes_ = kMaxJsonlLineBytes;
  std::string path_;
  bool require_objects_;
  std::unique_ptr<std::ifstream> file_;
  std::istream* in_ = nullptr;
  size_t line_ = 0;
};

// Reads every record. Throws Error naming the file when it holds no records and
// `allow_empty` is false.
std::vector<nlohmann::json> read_jsonl(const std::string& path, bool allow_empty = false);

// Writes one compact JSON value per line, atomically: the file appears complete at close()
// (or is left untouched if the writer is destroyed before close()). "-" writes to stdout.
class JsonlWriter {
 public:
  explicit JsonlWriter(const std::string& path);
  void write(const nlohmann::json& record);
  void close();
  size_t count() const { return count_; }

 private:
  std::unique_ptr<AtomicFileWriter> file_;
  bool to_stdout_ = false;
  size_t count_ = 0;
};

}  // namespace selfrl::io
