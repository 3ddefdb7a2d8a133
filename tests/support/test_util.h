// Helpers shared by the test suites: temporary directories, raw file writes, running the
// selfrl program and Python references.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "selfrl/core/error.h"

namespace selfrl::test {

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_bytes(const std::string& path, const std::string& bytes);
// A file's bytes ("" when it cannot be read; the caller's comparison then fails).
std::string read_bytes(const std::string& path);

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};
// Runs a shell command line, capturing its output.
CommandResult run_command(const std::string& command_line);

// Paths of the selfrl program, the source tree and the reference Python interpreter.
std::string selfrl_cli();
std::string source_dir();
std::string python();

}  // namespace selfrl::test

// The sentencepiece module is loaded with dlopen(RTLD_DEEPBIND), which AddressSanitizer refuses
// (google/sanitizers#611), and without DEEPBIND its protobuf and LibTorch's clash at start-up. A
// sanitizer build (-DSELFRL_SANITIZE=address,...) therefore skips the tests that train or load a
// sentencepiece model; every other build runs them.
#if defined(__SANITIZE_ADDRESS__)
#define SELFRL_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SELFRL_TEST_ASAN 1
#endif
#endif
#ifdef SELFRL_TEST_ASAN
#define SELFRL_SKIP_WITHOUT_SENTENCEPIECE() \
  GTEST_SKIP() << "the sentencepiece module cannot be loaded under AddressSanitizer (RTLD_DEEPBIND)"
#else
#define SELFRL_SKIP_WITHOUT_SENTENCEPIECE() static_cast<void>(0)
#endif

// Expects `statement` to throw selfrl::Error whose what() contains every listed substring.
#define EXPECT_SELFRL_ERROR(statement, ...)                                           \
  do {                                                                                \
    try {                                                                             \
      statement;                                                                      \
      ADD_FAILURE() << "expected selfrl::Error from: " #statement;                    \
    } catch (const ::selfrl::Error& e_) {                                             \
      for (const std::string& s_ : std::initializer_list<std::string>{__VA_ARGS__}) { \
        EXPECT_NE(std::string(e_.what()).find(s_), std::string::npos)                 \
            << "message: " << e_.what() << "\nmissing: " << s_;                       \
      }                                                                               \
    }                                                                                 \
  } while (0)
