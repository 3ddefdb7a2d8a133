// Small file helpers shared by every writer and reader: atomic writes (temporary file,
// fsync, rename, fsync of the directory) and JSON files with line:column in their errors.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace selfrl::io {

// Writes to "<path>.tmp.<pid>" and, on commit(), fsyncs it, renames it over `path` and fsyncs
// the directory. If destroyed without commit() the temporary file is removed and `path` is
// untouched, so readers see either the old file or the complete new one.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
};

void write_text_file_atomic(const std::string& path, std::string_view text);

// Whole file as bytes; throws Error naming the file when it cannot be read.
std::string read_text_file(const std::string& path);

// Parses a JSON file; a syntax error names "path:line:column".
nlohmann::json read_json_file(const std::string& path);

// Byte offset of the first invalid UTF-8 sequence in `text`, or npos when valid. Rejects
// overlong encodings, surrogates and code points past U+10FFFF.
size_t find_invalid_utf8(std::string_view text);

// 1-based line and column of byte `offset` in `text`.
std::pair<size_t, size_t> line_column(std::string_view text, size_t offset);

}  // namespace selfrl::io
