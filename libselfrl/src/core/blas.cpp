// BLAS detection (see selfrl/core/blas.h).
#include "selfrl/core/blas.h"

#include <torch/cuda.h>

#include <torch/torch.h>

#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>

#include "selfrl/core/logging.h"

namespace selfrl {

BlasInfo detect_blas() {
  BlasInfo info;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const auto base = path.substr(path.rfind('/') + 1);
    const bool blas_like = base.rfind("libopenblas", 0) == 0 || base.rfind("libblas", 0) == 0 ||
                           base.rfind("libmkl_rt", 0) == 0 || base.rfind("libblis", 0) == 0;
    if (!blas_like) continue;
    info.library = path;
    if (path.find("openblas") != std::string::npos) {
      info.is_openblas = true;
      break;  // OpenBLAS wins even if a reference libblas is also mapped
    }
    if (path.find("mkl") == std::string::npos && path.find("blis") == std::string::npos) {
      info.is_reference = true;
    }
  }
  if (info.is_openblas) {
    // Looked up at run time: LibTorch links the generic libblas.so.3, not OpenBLAS's own API.
    using GetThreads = int (*)();
    if (auto get = reinterpret_cast<GetThreads>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads")))
      info.threads = get();
  }
  // PyTorch's wheels link MKL statically into libtorch_cpu: no BLAS file is mapped.
  if (info.library.empty() && at::hasMKL()) {
    info.library = "MKL (linked into LibTorch)";
    info.is_mkl = true;
  }
  return info;
}

double measure_matmul_gflops(int n, int repeats) {
  torch::NoGradGuard no_grad;
  auto a = torch::randn({n, n});
  auto b = torch::randn({n, n});
  auto c = torch::mm(a, b);  // warm-up
  std::vector<double> rates;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    c = torch::mm(a, b);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(2.0 * n * n * static_cast<double>(n) / s / 1e9);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

double measure_matmul_gflops(int n, int repeats, const c10::Device& device, c10::ScalarType dtype) {
  if (device.is_cpu() && dtype == c10::kFloat) return measure_matmul_gflops(n, repeats);
  torch::NoGradGuard no_grad;
  const auto opts = torch::TensorOptions().device(device).dtype(dtype);
  auto a = torch::randn({n, n}, opts);
  auto b = torch::randn({n, n}, opts);
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
  };
  constexpr int kProducts = 10;
  auto c = torch::mm(a, b);  // warm-up
  sync();
  std::vector<double> rates;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < kProducts; ++k) c = torch::mm(a, b);
    sync();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(kProducts * 2.0 * n * n * static_cast<double>(n) / s / 1e9);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

bool warn_if_slow_blas() {
  const BlasInfo info = detect_blas();
  if (!info.is_reference) return false;
  SELFRL_WARN("************************************************************************");
  SELFRL_WARN("LibTorch is running on the reference BLAS (" << info.library << ").");
  SELFRL_WARN("fp32 matmul will be ~10x slower than with OpenBLAS. Fix:");
  SELFRL_WARN("  apt-get install libopenblas0-pthread && update-alternatives --set \\");
  SELFRL_WARN("    libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3");
  SELFRL_WARN("(scripts/setup.sh does both.)");
  SELFRL_WARN("************************************************************************");
  return true;
}

namespace {
// OpenBLAS's pool size when `intra_op_threads` OpenMP workers would spin against it, else 0.
int spinning_blas_threads(int intra_op_threads) {
  if (intra_op_threads < 2 || std::getenv("OMP_WAIT_POLICY") != nullptr) return 0;
  const BlasInfo blas = detect_blas();
  return blas.is_openblas && blas.threads >= 2 ? blas.threads : 0;
}
}  // namespace

bool omp_spin_contention_likely(int intra_op_threads) { return spinning_blas_threads(intra_op_threads) > 0; }

void set_intra_op_threads(int n) {
  at::set_num_threads(n);
  static std::atomic<bool> warned{false};
  if (const int blas_threads = spinning_blas_threads(n); blas_threads > 0 && !warned.exchange(true))
    SELFRL_WARN(n << " intra-op threads next to OpenBLAS's own " << blas_threads
                  << " threads: OpenMP's busy-waiting workers take the cores OpenBLAS needs (decode measured "
                     "2.8-2.9x slower at 2 threads). Start the program with OMP_WAIT_POLICY=PASSIVE "
                     "(docs/benchmarks.md, \"Two thread pools on the CPU\").");
}

}  // namespace selfrl
