// Shared helpers of the libFuzzer harnesses (docs/fuzzing.md).
//
// Every harness feeds one input to one reader of libselfrl. selfrl::Error is the expected
// outcome for a hostile input and is caught; any other exception escapes, which libFuzzer
// reports as a crash (std::terminate -> abort), like a sanitizer report, a timeout or an OOM.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

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

// SELFRL_FUZZ_VERBOSE=1 prints the Errors a harness catches (to see why a seed is refused):
//   SELFRL_FUZZ_VERBOSE=1 ./fuzz_recipe corpus/recipe/star
inline bool verbose() {
  static const bool on = [] {
    const char* v = std::getenv("SELFRL_FUZZ_VERBOSE");
    return v != nullptr && *v != '\0' && *v != '0';
  }();
  return on;
}
inline void note(const char* what) {
  if (verbose()) std::fprintf(stderr, "[fuzz] %s\n", what);
}

inline void remove_file(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

// SELFRL_FUZZ_TOLERATE=json makes a harness catch nlohmann::json exceptions as well, to look past
// a known, unfixed finding of that kind (never in CI: scripts/fuzz.sh does not set it). Without
// it the body runs unguarded, so a report's stack trace starts at the throw.
inline bool tolerates(std::string_view what) {
  const char* v = std::getenv("SELFRL_FUZZ_TOLERATE");
  return v != nullptr && std::string_view(v).find(what) != std::string_view::npos;
}
inline bool tolerate_json() {
  static const bool on = tolerates("json");
  return on;
}

inline int run(void (*fuzz_one)(const uint8_t*, size_t), const uint8_t* data, size_t size) {
  if (!tolerate_json()) {
    fuzz_one(data, size);
    return 0;
  }
  try {
    fuzz_one(data, size);
  } catch (const nlohmann::json::exception& e) {
    note(e.what());
  }
  return 0;
}

}  // namespace selfrl::fuzz
