// Device and dtype names (see selfrl/core/device.h).
#include "selfrl/core/device.h"

#include <torch/torch.h>

#include <cctype>

#include "selfrl/core/error.h"

namespace selfrl {
namespace {
std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

bool built_with_cuda() {
#ifdef SELFRL_WITH_CUDA
  return true;
#else
  return false;
#endif
}

c10::Device parse_device(const std::string& name) {
  const std::string n = lower(name);
  if (n == "cpu") return c10::Device(c10::kCPU);
  if (n == "cuda" || n.rfind("cuda:", 0) == 0) {
    int index = -1;
    if (n.size() > 5) {
      const std::string digits = n.substr(5);
      const bool numeric =
          !digits.empty() && digits.size() <= 4 &&
          std::all_of(digits.begin(), digits.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
      if (!numeric) {
        throw Error("device '" + name + "' has no valid index").hint("write cuda or cuda:N, e.g. cuda:0");
      }
      index = std::stoi(digits);
    }
    if (!torch::cuda::is_available()) {
      throw Error("device '" + name + "' requested but CUDA is not available")
          .hint(built_with_cuda()
                    ? "no CUDA device is visible to this process (check CUDA_VISIBLE_DEVICES)"
                    : "this libselfrl was built CPU-only; rebuild with -DSELFRL_CUDA=ON against a CUDA LibTorch, "
                      "or use device: cpu");
    }
    const int count = static_cast<int>(torch::cuda::device_count());
    if (index >= count) {
      throw Error("device '" + name + "' does not exist: " + std::to_string(count) + " CUDA device(s) visible")
          .hint("use an index from 0 to " + std::to_string(count - 1));
    }
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw Error("unknown device '" + name + "'").hint("use cpu, cuda or cuda:N");
}

c10::ScalarType parse_dtype(const std::string& name) {
  const std::string n = lower(name);
  if (n == "float32" || n == "fp32" || n == "float") return c10::kFloat;
  if (n == "bfloat16" || n == "bf16") return c10::kBFloat16;
  if (n == "float16" || n == "fp16" || n == "half") return c10::kHalf;
  throw Error("unknown dtype '" + name + "'").hint("use float32, bfloat16 or float16");
}

std::string dtype_name(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kFloat:
      return "float32";
    case c10::kBFloat16:
      return "bfloat16";
    case c10::kHalf:
      return "float16";
    default:
      return c10::toString(dtype);
  }
}

}  // namespace selfrl
