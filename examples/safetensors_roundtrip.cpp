// Writes a small sharded checkpoint in the Hugging Face layout and reads it back.
//   ./build/examples/example_safetensors_roundtrip /tmp/ckpt
#include <selfrl/io/safetensors.h>

#include <torch/torch.h>

#include <cstdio>

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "example_ckpt";
  selfrl::io::NamedTensors tensors = {
      {"model.embed_tokens.weight", torch::randn({64, 16})},
      {"model.norm.weight", torch::ones({16}, torch::kBFloat16)},
      {"lm_head.weight", torch::randn({64, 16})},
  };
  // 4 KiB shards force the sharded layout with an index file.
  selfrl::io::save_safetensors_checkpoint(dir, tensors, 4096);
  auto ckpt = selfrl::io::SafeTensorsCheckpoint::open(dir);
  for (const auto& [name, t] : tensors) {
    std::printf("%-28s %-10s equal=%d\n", name.c_str(), ckpt.file_of(name).c_str() + dir.size() + 1,
                torch::equal(ckpt.tensor(name), t));
  }
  return 0;
}
