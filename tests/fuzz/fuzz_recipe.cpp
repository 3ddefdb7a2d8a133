// YAML recipes: Recipe::load of an `extends:` chain. Input: recipe.yaml, then after "#8<"
// separator lines base.yaml and a list of command-line overrides (one per line). The loaded
// recipe is read through every typed getter on the keys real recipes use, then finish().
// The text of recipe.yaml also goes through Recipe::parse.
#include <sstream>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "selfrl/core/error.h"
#include "selfrl/recipe/recipe.h"

namespace {

using selfrl::recipe::Range;
using selfrl::recipe::Recipe;

template <typename F>
void quietly(F&& f) {
  try {
    f();
  } catch (const selfrl::Error& e) {
    selfrl::fuzz::note(e.what());
  }
}

void read_keys(Recipe& r) {
  quietly([&] { (void)r.get_string("trainer", "grpo", {"grpo", "sft", "dpo"}, "trainer"); });
  quietly([&] { (void)r.get_int("seed", 42, {.min = 0}, "seed"); });
  quietly([&] { (void)r.get_int("max_steps", 10, {.min = 1, .max = 1e9}, "steps"); });
  quietly([&] { (void)r.get_double("beta", 0.04, {.min = 0, .min_exclusive = true}, "KL"); });
  quietly([&] { (void)r.get_double("learning_rate", 1e-5, {.min = 0, .max = 1}, "lr"); });
  quietly([&] { (void)r.get_optional_double("eval.temperature", {.min = 0}, "temperature"); });
  quietly([&] { (void)r.get_bool("lora.use_rslora", false, "rslora"); });
  quietly([&] { (void)r.get_string_list("reward_funcs", {"accuracy"}, "rewards"); });
  quietly([&] { (void)r.get_string_list("lora.target_modules", {"q_proj"}, "modules"); });
  quietly([&] { (void)r.get_double_list("reward_weights", {}, "weights"); });
  quietly([&] { (void)r.get_int_list("eval.ks", {1}, {.min = 1}, "ks"); });
  quietly([&] { (void)r.get_path("model", "", false, "model"); });
  quietly([&] { (void)r.get_path("data.train", "", true, "train"); });
  quietly([&] { (void)r.get_path("output_dir", "out", false, "output"); });
  quietly([&] { (void)r.has("eval.samples"); });
  quietly([&] { (void)r.section_json("data").dump(); });
  quietly([&] { (void)r.section_json("loop").dump(); });
  quietly([&] { (void)r.location_of("data.eval").str(); });
  quietly([&] { r.allow("metadata"); });
  quietly([&] { r.check_likely_typos({"learning_rate", "eval.samples"}, {"loop"}); });
  quietly([&] { r.finish(); });
  for (const auto& e : r.effective()) (void)(e.key.size() + e.value.size() + e.source.size());
}

void fuzz_one(const uint8_t* data, size_t size) {
  namespace fz = selfrl::fuzz;
  const auto& dir = fz::ScratchDir::get();
  const auto parts = fz::split_parts(data, size, 3);
  const auto recipe = dir / "recipe.yaml";
  const auto base = dir / "base.yaml";
  fz::write_file(recipe, parts[0]);
  if (parts.size() > 1)
    fz::write_file(base, parts[1]);
  else
    fz::remove_file(base);
  std::vector<std::string> overrides;
  if (parts.size() > 2) {
    std::istringstream lines(parts[2]);
    for (std::string line; std::getline(lines, line) && overrides.size() < 8;) overrides.push_back(line);
  }
  quietly([&] {
    Recipe r = Recipe::load(recipe.string(), overrides);
    read_keys(r);
  });
  quietly([&] {
    Recipe r = Recipe::parse(parts[0], "<fuzz>", overrides);
    read_keys(r);
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return selfrl::fuzz::run(fuzz_one, data, size);
}
