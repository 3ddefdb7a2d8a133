// Uses the installed libselfrl: writes and re-reads a safetensors file.
#include <selfrl/io/safetensors.h>
#include <selfrl/version.h>

#include <torch/torch.h>

#include <cstdio>

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "consumer.safetensors";
  auto w = torch::arange(6, torch::kFloat).reshape({2, 3});
  selfrl::io::save_safetensors(path, {{"w", w}});
  auto f = selfrl::io::SafeTensorsFile::open(path);
  const bool same = torch::equal(f.tensor("w"), w);
  std::printf("consumer linked selfrl %s: round trip %s\n", selfrl::version(), same ? "ok" : "MISMATCH");
  return same ? 0 : 1;
}
