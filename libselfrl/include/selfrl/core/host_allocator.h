// How host (CPU) memory for tensors is obtained from glibc's malloc.
//
// LibTorch's CPU allocator asks malloc for every tensor and frees it when the tensor dies; it
// keeps no cache. glibc serves a block above its mmap threshold (128 KiB at start, raised
// dynamically up to 32 MiB) with a fresh mmap, and hands the top of its heap back to the kernel
// once more than its trim threshold (twice the mmap threshold) is free there. Activations of a
// prefill or a training step are megabytes each, so with the defaults nearly every one is fresh
// pages: a page fault per 4 KiB, zeroed by the kernel. On the 2-core development VM (AMD EPYC)
// that is most of a prefill's time: rollout prefill 2.9-4.2x and a training step 1.5-1.7x faster
// with the tuning below (docs/benchmarks.md, "The host allocator"). PyTorch's CPU tuning guides
// fix the same thing by preloading jemalloc or tcmalloc; mallopt does it without a dependency.
#pragma once

#include <cstddef>
#include <string>

namespace selfrl {

struct HostAllocatorTuning {
  bool applied = false;  // mallopt was called (this time or earlier in the process)
  std::string reason;    // why not, when !applied
  size_t mmap_threshold = 0;
  size_t trim_threshold = 0;

  // One line for `selfrl info` and `selfrl.host_allocator`: "glibc, mmap threshold 256 MiB, trim
  // threshold 1 GiB" or "not tuned: <reason>".
  std::string describe() const;
};

// Keeps freed tensor memory in the process for reuse: mallopt(M_MMAP_THRESHOLD, 256 MiB) (blocks
// up to 256 MiB come from the heap, not from a fresh mmap each) and mallopt(M_TRIM_THRESHOLD,
// 1 GiB) (the heap's free top is returned to the kernel only past 1 GiB). The cost: the process
// holds on to up to about its peak heap plus 1 GiB of memory it no longer uses until it exits.
//
// Done once per process; later calls return the first call's result. Skipped, leaving glibc's
// defaults, when SELFRL_MALLOC_TUNING=0, when the environment already sets glibc's malloc knobs
// (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_, or malloc tunables in
// GLIBC_TUNABLES: the user's settings win), when jemalloc or tcmalloc is preloaded, and when the C
// library is not glibc. The CLI, `import selfrl`, RolloutEngine and the trainers call it.
HostAllocatorTuning tune_host_allocator();

}  // namespace selfrl
