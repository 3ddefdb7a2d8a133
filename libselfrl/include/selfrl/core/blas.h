// Which BLAS LibTorch runs on. Debian's reference BLAS makes an fp32 matmul ~14x slower than
// OpenBLAS on the same cores (4.6 vs 65 GFLOP/s on the 2-core development machine), so the
// CLI checks at start-up and warns loudly.
#pragma once

#include <string>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace selfrl {

struct BlasInfo {
  std::string library;  // the libblas/libopenblas file mapped into this process ("" if none)
  bool is_openblas = false;
  bool is_mkl = false;        // MKL inside LibTorch (PyTorch's x86-64 wheels)
  bool is_reference = false;  // Debian's netlib reference BLAS (libblas.so.3 outside openblas)
  // OpenBLAS's own thread pool (openblas_get_num_threads), -1 when not OpenBLAS. It is separate
  // from ATen's intra-op threads (at::set_num_threads, `--threads`): every core unless
  // OPENBLAS_NUM_THREADS says otherwise, so `--threads 1` still runs matmuls on all cores.
  int threads = -1;
};

// Reads /proc/self/maps to see which BLAS shared object is loaded.
BlasInfo detect_blas();

// Measured fp32 matmul throughput in GFLOP/s: median of `repeats` n×n×n products.
double measure_matmul_gflops(int n = 512, int repeats = 5);
// The same on any device and dtype (e.g. CUDA bfloat16: the GPU's dense matmul peak as this
// LibTorch reaches it). Each sample times 10 products between device synchronizations.
double measure_matmul_gflops(int n, int repeats, const c10::Device& device, c10::ScalarType dtype);

// Logs a loud warning when the reference BLAS is active. Returns true when it warned.
bool warn_if_slow_blas();

// True when `intra_op_threads` ATen threads would busy-wait against OpenBLAS's own pool: n >= 2,
// OpenBLAS with >= 2 threads, and OMP_WAIT_POLICY unset. GCC's OpenMP workers then spin between
// parallel regions on the cores OpenBLAS's threads need (decode 2.8-2.9x slower at 2 threads,
// docs/benchmarks.md, "Two thread pools on the CPU").
bool omp_spin_contention_likely(int intra_op_threads);

// at::set_num_threads(n), plus a warning (once per process) when omp_spin_contention_likely(n):
// the fix, OMP_WAIT_POLICY=PASSIVE, must be in the environment before the program starts.
void set_intra_op_threads(int n);

}  // namespace selfrl
