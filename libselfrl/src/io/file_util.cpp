// Atomic writes and JSON files (see selfrl/io/file_util.h).
#include "selfrl/io/file_util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "selfrl/core/error.h"

namespace selfrl::io {
namespace fs = std::filesystem;

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {
  // A symlink is followed (the file it names is replaced, the link stays); something that is
  // not a regular file (/dev/null, /dev/stdout, a FIFO) is written in place: renaming a
  // temporary over it would replace a device node with a plain file.
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    char resolved[PATH_MAX];
    if (::realpath(path_.c_str(), resolved) != nullptr) path_ = resolved;
  }
  if (::stat(path_.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    if (S_ISDIR(st.st_mode)) throw Error("is a directory, not a file").at(path_).hint("give a file name");
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) throw Error(std::string("cannot open for writing: ") + std::strerror(errno)).at(path_);
    in_place_ = true;
    return;
  }
  tmp_ = path_ + ".tmp." + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw Error(std::string("cannot create file: ") + std::strerror(errno))
        .at(path_)
        .hint("check that the directory exists and is writable");
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    if (!in_place_) ::unlink(tmp_.c_str());
  }
}

void AtomicFileWriter::write(const void* data, size_t size) {
  SELFRL_CHECK(fd_ >= 0, "write after commit to ", path_);
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(std::string("write failed: ") + std::strerror(errno)).at(path_).hint("is the disk full?");
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  SELFRL_CHECK(fd_ >= 0, "commit called twice for ", path_);
  if (in_place_) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  if (::fsync(fd_) != 0) throw Error(std::string("fsync failed: ") + std::strerror(errno)).at(path_);
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp_.c_str());
    throw Error("rename into place failed: " + err).at(path_);
  }
  // Make the rename itself durable.
  std::string dir = fs::path(path_).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

DirectoryLock::DirectoryLock(const std::string& dir) {
  const std::string path = (fs::path(dir) / ".selfrl.lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(std::string("cannot create the lock file: ") + std::strerror(errno)).at(path);
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder;
    char buf[512];
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    if (n > 0) holder.assign(buf, static_cast<size_t>(n));
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) throw Error(std::string("cannot lock: ") + std::strerror(err)).at(path);
    throw Error("another run is using this directory" + (holder.empty() ? std::string() : " (" + holder + ")"))
        .at(dir)
        .hint("wait for it to finish, stop it, or choose another output_dir");
  }
  char host[256] = "?";
  ::gethostname(host, sizeof host - 1);
  char since[32] = "?";
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  if (::gmtime_r(&now, &tm) != nullptr) std::strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
  const std::string who = "pid " + std::to_string(::getpid()) + " on " + host + " since " + since + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t w = ::pwrite(fd_, who.data(), who.size(), 0);
  }
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

void write_text_file_atomic(const std::string& path, std::string_view text) {
  AtomicFileWriter w(path);
  w.write(text);
  w.commit();
}

namespace {
const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}
}  // namespace

void check_regular_file(const std::string& path, const char* what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    Error e(std::string("cannot open ") + what + ": " + std::strerror(err));
    e.at(path);
    if (err == ELOOP) e.hint("the path is a symlink loop");
    throw e;
  }
  if (!S_ISREG(st.st_mode)) {
    throw Error(std::string(what) + " is " + file_kind(st.st_mode) + ", not a regular file")
        .at(path)
        .hint("point it at the file itself");
  }
}

std::string read_text_file(const std::string& path, size_t max_bytes) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer before fstat runs.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    Error e(std::string("cannot open file: ") + std::strerror(err));
    e.at(path);
    if (err == ELOOP) e.hint("the path is a symlink loop");
    throw e;
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error(std::string("cannot stat file: ") + std::strerror(errno)).at(path);
  if (!S_ISREG(st.st_mode)) {
    throw Error(std::string("is ") + file_kind(st.st_mode) + ", not a regular file")
        .at(path)
        .hint("point it at the file itself");
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    throw Error("file is " + std::to_string(st.st_size) + " bytes, above the limit of " + std::to_string(max_bytes) +
                " bytes for this kind of file")
        .at(path);
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(std::string("read error: ") + std::strerror(errno)).at(path);
    if (n == 0) break;  // the file shrank while we read it
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

void check_json_depth(std::string_view text, const std::string& where, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        const auto [line, col] = line_column(text, i);
        throw Error("JSON nests deeper than the limit of " + std::to_string(max_depth) + " levels")
            .at(where + ":" + std::to_string(line) + ":" + std::to_string(col))
            .hint("this is not a file a Hugging Face tool writes; check where it came from");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

nlohmann::json parse_json_text(const std::string& text, const std::string& where) {
  check_json_depth(text, where);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based and points just past the offending character.
    const auto [line, col] = line_column(text, e.byte > 0 ? e.byte - 1 : 0);
    std::string msg = e.what();
    const auto pos = msg.find("parse error");
    if (pos != std::string::npos) msg = msg.substr(pos);
    throw Error("invalid JSON: " + msg).at(where + ":" + std::to_string(line) + ":" + std::to_string(col));
  } catch (const nlohmann::json::exception& e) {  // e.g. out_of_range.406: a number like 1e400
    throw Error(std::string("invalid JSON: ") + e.what()).at(where);
  }
}

std::pair<size_t, size_t> line_column(std::string_view text, size_t offset) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

nlohmann::json read_json_file(const std::string& path) { return parse_json_text(read_text_file(path), path); }

size_t find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    const bool overlong = (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

}  // namespace selfrl::io
