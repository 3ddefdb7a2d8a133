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
// untouched, so readers see either the old file or the complete new one. A symlink is followed
// (its target is replaced); a path that is a device or FIFO (/dev/null) is written in place.
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
  bool in_place_ = false;  // a device or FIFO: written directly, never renamed over
};

// An exclusive lock on a directory (flock on "<dir>/.selfrl.lock"), held until destruction, so
// that two runs never share an output_dir (they would delete each other's temporary checkpoint
// directories). The file records who holds it: a second taker's error names the pid, host and
// start time. flock is released by the kernel when the process dies, so a crash leaves no stale
// lock behind.
class DirectoryLock {
 public:
  explicit DirectoryLock(const std::string& dir);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

void write_text_file_atomic(const std::string& path, std::string_view text);

// Limits every reader applies before it allocates or recurses (docs/limits.md).
inline constexpr size_t kMaxTextFileBytes = size_t{1} << 30;  // tokenizer.json of a 256k vocabulary is ~20 MB
inline constexpr int kMaxJsonDepth = 256;                     // HF files nest < 10 levels

// Throws Error naming `path` unless it is a regular file (after following symlinks): a
// directory, FIFO, socket or device is refused before anything opens it, so a read never
// blocks on a pipe or streams /dev/zero forever. `what` names the role ("model config").
void check_regular_file(const std::string& path, const char* what = "file");

// Whole file as bytes; throws Error naming the file when it cannot be read, is not a regular
// file, or is larger than `max_bytes`.
std::string read_text_file(const std::string& path, size_t max_bytes = kMaxTextFileBytes);

// Throws Error at `where:line:column` when arrays/objects in `text` nest deeper than
// `max_depth` (a scan that skips strings; run before a recursive parser or consumer).
void check_json_depth(std::string_view text, const std::string& where, int max_depth = kMaxJsonDepth);

// Parses JSON text (depth-checked first); a syntax error names "where:line:column".
nlohmann::json parse_json_text(const std::string& text, const std::string& where);

// Parses a JSON file; a syntax error names "path:line:column".
nlohmann::json read_json_file(const std::string& path);

// Byte offset of the first invalid UTF-8 sequence in `text`, or npos when valid. Rejects
// overlong encodings, surrogates and code points past U+10FFFF.
size_t find_invalid_utf8(std::string_view text);

// 1-based line and column of byte `offset` in `text`.
std::pair<size_t, size_t> line_column(std::string_view text, size_t offset);

}  // namespace selfrl::io
