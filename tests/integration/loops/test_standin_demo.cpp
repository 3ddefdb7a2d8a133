// Not a test: writes a stand-in for `selfrl demo`'s outputs (a random tiny model with an
// in-process-trained tokenizer, and seed / unlabelled / eval JSONL) so the tiny recipes can be
// run by hand before the demo exists:
//   SELFRL_STANDIN_DIR=runs/demo build/tests/selfrl_integration_tests \
//     --gtest_also_run_disabled_tests --gtest_filter='*WriteStandInDemo*'
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "loop_fixture.h"

namespace selfrl::test {

TEST(StandIn, DISABLED_WriteStandInDemo) {
  namespace fs = std::filesystem;
  const char* dir = std::getenv("SELFRL_STANDIN_DIR");
  ASSERT_NE(dir, nullptr) << "set SELFRL_STANDIN_DIR";
  auto& f = loop_fixture();
  fs::create_directories(std::string(dir) + "/data");
  fs::remove_all(std::string(dir) + "/base");
  fs::copy(f.model, std::string(dir) + "/base", fs::copy_options::recursive);
  auto write = [&](const std::string& name, int n, bool answer, int offset) {
    std::ofstream out(std::string(dir) + "/data/" + name);
    for (int i = 0; i < n; ++i) {
      const int a = (i * 7 + offset) % 10, b = (i * 3 + offset / 2) % 10;
      nlohmann::json j = {{"prompt", std::to_string(a) + " + " + std::to_string(b) + " ="},
                          {"difficulty", a + b < 10 ? "easy" : "hard"},
                          {"answer", std::to_string(a + b)}};
      if (!answer) j.erase("answer");
      out << j.dump() << "\n";
    }
  };
  write("seed.jsonl", 64, true, 0);
  write("unlabelled.jsonl", 64, true, 5);  // answers kept for inspection; the loops do not read them
  write("eval.jsonl", 32, true, 3);
}

}  // namespace selfrl::test
