// `selfrl inspect`: validate and list a safetensors file or checkpoint directory.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "command.h"
#include "selfrl/io/model_config.h"
#include "selfrl/io/safetensors.h"

namespace selfrl::cli {
namespace {

int run_inspect(const std::vector<std::string>& args) {
  ArgParser p("selfrl inspect",
              "Validate a safetensors file, a sharded index or a model directory and list its tensors "
              "(name, dtype, shape) as JSON. Exits 1 with the problem when the file is corrupt.");
  p.positional("PATH", "a .safetensors file, model.safetensors.index.json or a model directory");
  if (!p.parse(args)) return 0;
  const std::string path = p.get("PATH");
  const auto ckpt = io::SafeTensorsCheckpoint::open(path);
  nlohmann::ordered_json out;
  out["path"] = path;
  out["num_shards"] = ckpt.num_shards();
  uint64_t total_bytes = 0, total_params = 0;
  nlohmann::ordered_json tensors = nlohmann::ordered_json::array();
  for (const auto& name : ckpt.names()) {
    const auto& info = ckpt.info(name);
    tensors.push_back({{"name", name}, {"dtype", io::st_dtype_name(info.dtype)}, {"shape", info.shape}});
    total_bytes += info.end - info.begin;
    total_params += static_cast<uint64_t>(info.numel());
  }
  out["num_tensors"] = tensors.size();
  out["num_parameters"] = total_params;
  out["total_bytes"] = total_bytes;
  out["tensors"] = std::move(tensors);
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

CommandRegistrar reg({"inspect", "validate and list a safetensors file or model directory", run_inspect});

}  // namespace
}  // namespace selfrl::cli
