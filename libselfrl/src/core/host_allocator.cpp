// glibc malloc tuning for tensor-sized blocks (see selfrl/core/host_allocator.h).
#include "selfrl/core/host_allocator.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "selfrl/core/logging.h"

namespace selfrl {
namespace {

constexpr size_t kMmapThreshold = size_t{256} << 20;
constexpr size_t kTrimThreshold = size_t{1} << 30;

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

HostAllocatorTuning tune_once() {
  HostAllocatorTuning t;
  const char* opt = std::getenv("SELFRL_MALLOC_TUNING");
  if (opt != nullptr && std::string(opt) == "0") {
    t.reason = "SELFRL_MALLOC_TUNING=0";
    return t;
  }
#if !defined(__GLIBC__)
  t.reason = "the C library is not glibc";
  return t;
#else
  for (const char* knob : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"}) {
    if (env_set(knob)) {
      t.reason = std::string(knob) + " is set in the environment";
      return t;
    }
  }
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::string(tunables).find("glibc.malloc.") != std::string::npos) {
    t.reason = "GLIBC_TUNABLES sets malloc tunables";
    return t;
  }
  // A preloaded allocator replaces malloc; glibc's knobs would not reach it.
  if (dlsym(RTLD_DEFAULT, "mallctl") != nullptr || dlsym(RTLD_DEFAULT, "tc_malloc") != nullptr) {
    t.reason = "jemalloc or tcmalloc serves malloc";
    return t;
  }
  // mallopt(M_MMAP_THRESHOLD) also switches off glibc's dynamic threshold, which would otherwise
  // move both thresholds again as blocks are freed.
  if (mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMmapThreshold)) != 1 ||
      mallopt(M_TRIM_THRESHOLD, static_cast<int>(kTrimThreshold)) != 1) {
    t.reason = "mallopt refused the thresholds";
    return t;
  }
  t.applied = true;
  t.mmap_threshold = kMmapThreshold;
  t.trim_threshold = kTrimThreshold;
  SELFRL_DEBUG(
      "host allocator: mmap threshold 256 MiB, trim threshold 1 GiB (SELFRL_MALLOC_TUNING=0 keeps "
      "glibc's defaults)");
  return t;
#endif
}

}  // namespace

std::string HostAllocatorTuning::describe() const {
  if (!applied) return "not tuned: " + reason;
  return "glibc, mmap threshold " + std::to_string(mmap_threshold >> 20) + " MiB, trim threshold " +
         std::to_string(trim_threshold >> 30) + " GiB";
}

HostAllocatorTuning tune_host_allocator() {
  static std::once_flag once;
  static HostAllocatorTuning result;
  std::call_once(once, [] { result = tune_once(); });
  return result;
}

}  // namespace selfrl
