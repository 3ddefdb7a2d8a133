// `selfrl info`: what this build and this machine offer (versions, BLAS, threads, CUDA).
#include <torch/torch.h>

#include <cstdio>
#include <thread>

#include <nlohmann/json.hpp>

#include "command.h"
#include "selfrl/core/blas.h"
#include "selfrl/core/device.h"
#include "selfrl/core/host_allocator.h"
#include "selfrl/model/decode_attention.h"
#include "selfrl/version.h"

namespace selfrl::cli {
namespace {

int run_info(const std::vector<std::string>& args) {
  ArgParser p("selfrl info", "Print the build and machine facts that matter for speed, as JSON.");
  p.flag("--benchmark", "also time an fp32 matmul (512^3, median of 5) and report GFLOP/s");
  if (!p.parse(args)) return 0;
  const BlasInfo blas = detect_blas();
  nlohmann::ordered_json j;
  j["selfrl_version"] = version();
  j["torch_version"] = TORCH_VERSION;
  j["built_with_cuda"] = built_with_cuda();
  j["cuda_available"] = torch::cuda::is_available();
  j["cuda_devices"] = torch::cuda::is_available() ? torch::cuda::device_count() : 0;
  j["blas_library"] = blas.library;
  j["blas"] = blas.is_openblas ? "openblas" : blas.is_mkl ? "mkl" : (blas.is_reference ? "reference (slow!)" : "other");
  j["intra_op_threads"] = at::get_num_threads();
  if (blas.threads > 0) j["blas_threads"] = blas.threads;  // OpenBLAS's own pool (OPENBLAS_NUM_THREADS)
  j["hardware_threads"] = std::thread::hardware_concurrency();
  // main() tuned malloc before the command ran; this reports what happened.
  j["host_allocator"] = tune_host_allocator().describe();
  j["decode_attention"] = model::describe_decode_attention();
  if (p.get_flag("--benchmark")) j["matmul_fp32_gflops"] = measure_matmul_gflops(512, 5);
  std::printf("%s\n", j.dump(2).c_str());
  return 0;
}

CommandRegistrar reg({"info", "print versions, BLAS, threads and CUDA devices (JSON)", run_info});

}  // namespace
}  // namespace selfrl::cli
