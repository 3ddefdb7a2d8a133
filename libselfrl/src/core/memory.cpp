// Process and CUDA allocator memory (see selfrl/core/memory.h).
#include "selfrl/core/memory.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

#ifdef SELFRL_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace selfrl {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// Resident pages now, from /proc/self/statm (its second field); 0 where there is no procfs.
double resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long pages_total = 0, pages_resident = 0;
  const int n = std::fscanf(f, "%ld %ld", &pages_total, &pages_resident);
  std::fclose(f);
  return n == 2 ? static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace

MemoryUsage memory_usage(const c10::Device& device) {
  MemoryUsage u;
  u.cpu_rss_gb = resident_bytes() / kGiB;
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) == 0) u.cpu_peak_rss_gb = static_cast<double>(ru.ru_maxrss) * 1024.0 / kGiB;  // KiB
  if (u.cpu_peak_rss_gb < u.cpu_rss_gb) u.cpu_peak_rss_gb = u.cpu_rss_gb;
#ifdef SELFRL_WITH_CUDA
  if (device.is_cuda()) {
    const auto index = device.has_index() ? device.index() : c10::DeviceIndex{0};
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    // Index 0 of each stat array is the aggregate over small and large pools (StatType::AGGREGATE).
    u.device_max_allocated_gb = static_cast<double>(stats.allocated_bytes[0].peak) / kGiB;
    u.device_max_reserved_gb = static_cast<double>(stats.reserved_bytes[0].peak) / kGiB;
    u.has_device_stats = true;
  }
#else
  (void)device;
#endif
  return u;
}

void add_memory_metrics(std::map<std::string, double>& metrics, const c10::Device& device) {
  const MemoryUsage u = memory_usage(device);
  metrics["perf/cpu_memory_rss_gb"] = u.cpu_rss_gb;
  metrics["perf/cpu_memory_peak_rss_gb"] = u.cpu_peak_rss_gb;
  if (u.has_device_stats) {
    metrics["perf/max_memory_allocated_gb"] = u.device_max_allocated_gb;
    metrics["perf/max_memory_reserved_gb"] = u.device_max_reserved_gb;
  }
}

}  // namespace selfrl
