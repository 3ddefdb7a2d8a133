// How much memory this process holds, for the trainers' per-step metrics and the benchmarks.
//
// The trainers log, every step (verl's names where verl has one):
//   perf/cpu_memory_rss_gb        the process's resident memory now (GiB)
//   perf/cpu_memory_peak_rss_gb   its high-water mark since it started (getrusage ru_maxrss)
//   perf/max_memory_allocated_gb  CUDA only: the caching allocator's peak of memory in tensors
//   perf/max_memory_reserved_gb   CUDA only: its peak of memory held from the driver
// The CUDA peaks are since the process started, as torch.cuda.max_memory_allocated() and
// verl's metrics report them. verl's perf/cpu_memory_used_gb is the whole machine's used memory
// (psutil); ours are this process's, under their own names.
#pragma once

#include <map>
#include <string>

#include <c10/core/Device.h>

namespace selfrl {

struct MemoryUsage {
  double cpu_rss_gb = 0;       // resident now
  double cpu_peak_rss_gb = 0;  // high-water mark
  bool has_device_stats = false;
  double device_max_allocated_gb = 0;
  double device_max_reserved_gb = 0;
};

// CPU figures always; the CUDA peaks when `device` is a CUDA device and this build has CUDA.
MemoryUsage memory_usage(const c10::Device& device);

// Adds the perf/* entries above to a step's metrics (the CUDA ones only on a CUDA device).
void add_memory_metrics(std::map<std::string, double>& metrics, const c10::Device& device);

}  // namespace selfrl
