// Parsing of device and dtype names as users write them in recipes and on the command line.
#pragma once

#include <string>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace selfrl {

// "cpu", "cuda", "cuda:1". Throws Error for anything else, and for CUDA when this build or
// this machine has no CUDA (the message says which).
c10::Device parse_device(const std::string& name);

// "float32"/"fp32"/"float", "bfloat16"/"bf16", "float16"/"fp16"/"half". Throws Error otherwise.
c10::ScalarType parse_dtype(const std::string& name);

// The canonical name: "float32", "bfloat16", "float16", or c10's name for other types.
std::string dtype_name(c10::ScalarType dtype);

// True when this build of libselfrl was compiled against a CUDA LibTorch.
bool built_with_cuda();

}  // namespace selfrl
