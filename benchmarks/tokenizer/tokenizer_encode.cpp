// Encode throughput (MB/s of UTF-8 input) of selfrl's tokenizers on a large mixed corpus: the
// parity corpus tests/data/tokenizer/corpus.jsonl repeated to --mb megabytes, encoded one line
// at a time without special tokens, single-threaded (as transformers.js runs). The same corpus
// construction is in tests/reference/tokenizer/bench_encode.js, the transformers.js side.
//   bench_tokenizer_encode [--tokenizers .cache/tokenizers] [--mb 8] [--runs 5] [--threads 1]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "selfrl/io/jsonl.h"
#include "selfrl/tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  std::string dir = ".cache/tokenizers", corpus_path = "tests/data/tokenizer/corpus.jsonl";
  double mb = 8;
  int runs = 5;
  unsigned threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--tokenizers"))
      dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--corpus"))
      corpus_path = argv[i + 1];
    else if (!std::strcmp(argv[i], "--mb"))
      mb = std::stod(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--runs"))
      runs = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads"))
      threads = static_cast<unsigned>(std::stoi(argv[i + 1]));
  }
  try {
    std::vector<std::string> base;
    for (const auto& r : selfrl::io::read_jsonl(corpus_path)) base.push_back(r.at("text").get<std::string>());
    std::vector<std::string> texts;
    size_t bytes = 0;
    while (bytes < mb * 1e6) {
      for (const auto& t : base) {
        texts.push_back(t);
        bytes += t.size();
      }
    }
    for (const char* name : {"qwen3", "llama3", "llama2"}) {
      const auto t_load = std::chrono::steady_clock::now();
      auto tok = selfrl::tokenizer::Tokenizer::from_pretrained(dir + "/" + name);
      const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
      std::vector<double> secs;
      size_t ntok = 0;
      for (int r = 0; r < runs; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        size_t n = 0;
        if (threads == 1) {
          for (const auto& t : texts) n += tok->encode(t, false).size();
        } else {
          for (const auto& ids : tok->encode_batch(texts, false, threads)) n += ids.size();
        }
        secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        ntok = n;
      }
      std::vector<double> sorted = secs;
      std::sort(sorted.begin(), sorted.end());
      const double median = sorted[sorted.size() / 2];
      nlohmann::json out = {{"tokenizer", name}, {"impl", "selfrl"},   {"threads", threads},
                            {"bytes", bytes},    {"tokens", ntok},     {"load_s", load_s},
                            {"runs_s", secs},    {"median_s", median}, {"median_mb_s", bytes / 1e6 / median}};
      std::printf("%s\n", out.dump().c_str());
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tokenizer_encode: %s\n", e.what());
    return 1;
  }
  return 0;
}
