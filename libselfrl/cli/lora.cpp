// `selfrl lora merge --base DIR --adapter DIR --out DIR`: a PEFT LoRA adapter merged into its
// base (W + s·B·A) and written as a plain Hugging Face model directory, with the base's
// tokenizer and generation files.
#include <cstdio>

#include "command.h"
#include "selfrl/core/device.h"
#include "selfrl/loops/run_context.h"
#include "selfrl/model/causal_lm.h"
#include "selfrl/model/lora.h"

namespace selfrl::cli {
namespace {

int run_lora(const std::vector<std::string>& args) {
  ArgParser p("selfrl lora",
              "LoRA adapters in PEFT's format. `merge` adds an adapter to its base model and writes a plain HF "
              "model directory (config.json, safetensors, tokenizer files) that loads without PEFT.");
  p.positional("ACTION", "merge");
  p.option("--base", "DIR", "the base model directory the adapter was trained on");
  p.option("--adapter", "DIR", "the adapter directory (adapter_config.json, adapter_model.safetensors)");
  p.option("--out", "DIR", "where the merged model goes");
  p.option("--dtype", "DTYPE", "float32 | bfloat16 | float16: the dtype the merged weights are saved in", "float32");
  if (!p.parse(args)) return 0;
  if (p.get("ACTION") != "merge")
    throw Error("selfrl lora: unknown action '" + p.get("ACTION") + "'")
        .hint("selfrl lora merge --base DIR --adapter DIR --out DIR");
  const std::string base = p.get("--base"), adapter = p.get("--adapter"), out = p.get("--out");
  // Merged in float32, then converted: the sum is exact to float32 whatever the save dtype.
  auto m = model::CausalLM::from_pretrained(base);
  const auto cfg = model::load_lora(*m, adapter);
  model::merge_lora(*m);
  m->to(parse_dtype(p.get("--dtype")));
  m->save_pretrained(out);
  loops::copy_tokenizer_files(base, out);
  std::printf("merged %s (r = %lld, %zu target modules) into %s: %s\n", adapter.c_str(), static_cast<long long>(cfg.r),
              cfg.target_modules.size(), base.c_str(), out.c_str());
  return 0;
}

CommandRegistrar reg({"lora", "merge a PEFT LoRA adapter into its base model", run_lora});

}  // namespace
}  // namespace selfrl::cli
