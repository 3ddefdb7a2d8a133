// AutocastGuard (see selfrl/core/autocast.h). LibTorch changed the autocast API in 2.4: per-device
// functions (set_autocast_enabled(device, on)) replaced set_enabled (CUDA) / set_cpu_enabled.
#include "selfrl/core/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "selfrl/core/error.h"

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define SELFRL_AUTOCAST_PER_DEVICE_API 1
#else
#define SELFRL_AUTOCAST_PER_DEVICE_API 0
#endif

namespace selfrl {
namespace {

void check_device(c10::DeviceType d) {
  if (d != c10::DeviceType::CPU && d != c10::DeviceType::CUDA)
    throw Error("autocast (bf16: true): unsupported device type '" + c10::DeviceTypeName(d, true) + "'")
        .hint("use cpu or cuda");
}

void set_state(c10::DeviceType d, bool enabled, c10::ScalarType dtype) {
#if SELFRL_AUTOCAST_PER_DEVICE_API
  at::autocast::set_autocast_enabled(d, enabled);
  at::autocast::set_autocast_dtype(d, dtype);
#else
  if (d == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}

}  // namespace

bool autocast_enabled(c10::DeviceType d) {
  check_device(d);
#if SELFRL_AUTOCAST_PER_DEVICE_API
  return at::autocast::is_autocast_enabled(d);
#else
  return d == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

c10::ScalarType autocast_dtype(c10::DeviceType d) {
  check_device(d);
#if SELFRL_AUTOCAST_PER_DEVICE_API
  return at::autocast::get_autocast_dtype(d);
#else
  return d == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

AutocastGuard::AutocastGuard(c10::DeviceType device, bool enabled, c10::ScalarType dtype)
    : device_(device), prev_enabled_(autocast_enabled(device)), prev_dtype_(autocast_dtype(device)) {
  if (enabled && device == c10::DeviceType::CPU && dtype != c10::kBFloat16)
    throw Error(std::string("autocast: CPU autocast supports bfloat16 only, not ") + c10::toString(dtype));
  set_state(device_, enabled, dtype);
  if (enabled) {
    at::autocast::increment_nesting();
    nested_ = true;
  }
}

AutocastGuard::~AutocastGuard() {
  // As torch.autocast.__exit__: the outermost exit drops the cached low-precision weight copies.
  if (nested_ && at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_state(device_, prev_enabled_, prev_dtype_);
}

}  // namespace selfrl
