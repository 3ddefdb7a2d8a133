// Run-seed derivation (see selfrl/core/seed.h).
#include "selfrl/core/seed.h"

#include <torch/torch.h>

#include "selfrl/core/device.h"

namespace selfrl {

uint64_t splitmix64(uint64_t x) {
  // SplitMix64, Steele, Lea & Flood 2014: z = x + gamma; two xor-shift-multiply rounds.
  uint64_t z = x + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t derive_seed(uint64_t seed, std::initializer_list<uint64_t> stream) {
  uint64_t h = splitmix64(seed);
  for (uint64_t id : stream) h = splitmix64(h ^ splitmix64(id + 0x632BE59BD9B4E019ULL));
  return h;
}

uint64_t seed_everything(uint64_t seed, int rank) {
  const uint64_t s = derive_seed(seed, {static_cast<uint64_t>(rank)});
  torch::manual_seed(s);  // seeds the CPU generator and, when present, every CUDA generator
  return s;
}

std::mt19937_64 make_engine(uint64_t seed, std::initializer_list<uint64_t> stream) {
  return std::mt19937_64(derive_seed(seed, stream));
}

}  // namespace selfrl
