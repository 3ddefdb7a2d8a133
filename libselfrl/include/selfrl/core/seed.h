// Seeding: one run seed drives torch's generators, the standard library engines and the
// per-rank / per-request streams, so a run is reproducible from its seed alone.
//
// Streams are derived with SplitMix64 (Steele et al., "Fast splittable pseudorandom number
// generators", 2014): derive_seed(seed, a, b) is a well-mixed 64-bit value that differs for
// every (seed, a, b), so rank 3's stream never overlaps rank 0's by construction.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <random>

namespace selfrl {

// One SplitMix64 step (the finalizer applied to x + golden gamma).
uint64_t splitmix64(uint64_t x);

// A seed for a sub-stream: fold the stream ids into the run seed.
uint64_t derive_seed(uint64_t seed, std::initializer_list<uint64_t> stream);

// Seeds torch's default CPU (and, when built with CUDA, every CUDA) generator with
// derive_seed(seed, {rank}) and returns that value. Rank 0 of a run seeded 42 thus gets a
// different but fixed seed from rank 1.
uint64_t seed_everything(uint64_t seed, int rank = 0);

// A standard library engine on a derived stream.
std::mt19937_64 make_engine(uint64_t seed, std::initializer_list<uint64_t> stream);

}  // namespace selfrl
