// Shared helpers of the libFuzzer harnesses (docs/fuzzing.md).
//
// Every harness feeds one input to one reader of libselfrl. selfrl::Error is the expected
// outcome for a hostile input and is caught; any other exception escapes, which libFuzzer
// reports as a crash (std::terminate -> abort), like a sanitizer report, a timeout or an OOM.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace selfrl::fuzz {

// Inputs made of several files are split at this line (a YAML / shell comment, so that a
// part stays valid text): "part0\n#8<\npart1\n#8<\npart2".
inline constexpr std::string_view kSeparator = "\n#8<\n";

inline std::vector<std::string> split_parts(const uint8_t* data, size_t size, size_t max_parts) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  size_t start = 0;
  while (parts.size() + 1 < max_parts) {
    const size_t at = in.find(kSeparator, start);
    if (at == std::string_view::npos) break;
    parts.emplace_back(in.substr(start, at - start));
    start = at + kSeparator.size();
  }
  parts.emplace_back(in.substr(start));
  return parts;
}

// One scratch directory per process under $TMPDIR (or /tmp), removed at exit. Harnesses write
// their input files into it and overwrite them on every run.
class ScratchDir {
 public:
  static const std::filesystem::path& get() {
    static ScratchDir dir;
    return dir.path_;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }

 private:
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/selfrl-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) std::abort();  // the scratch directory itself is broken, not the code under test
}

inline void remove_file(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

}  // namespace selfrl::fuzz
