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

// yaml-cpp 0.7's LoadAll loops forever (allocating) on a document whose first token is a flow
// entry ',' (jbeder/yaml-cpp#1040; tests/fuzz/regressions/recipe/yaml-cpp-comma-hang.yaml).
bool starts_with_flow_entry(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      ++i;
    } else if (c == '#' || text.substr(i, 3) == "---") {
      const size_t nl = text.find('\n', i);
      if (nl == std::string_view::npos) return false;
      i = nl + 1;
    } else {
      return c == ',';
    }
  }
  return false;
}

bool known_hang(const std::vector<std::string>& parts) {
  static const bool skip = selfrl::fuzz::tolerates("yaml-comma");
  if (!skip) return false;
  for (size_t i = 0; i < parts.size() && i < 2; ++i)
    if (starts_with_flow_entry(parts[i])) return true;
  if (parts.size() > 2)
    for (size_t at = parts[2].find('='); at != std::string::npos; at = parts[2].find('=', at + 1))
      if (starts_with_flow_entry(std::string_view(parts[2]).substr(at + 1))) return true;
  return false;
}

void fuzz_one(const uint8_t* data, size_t size) {
  namespace fz = selfrl::fuzz;
  const auto& dir = fz::ScratchDir::get();
  const auto parts = fz::split_parts(data, size, 3);
  if (known_hang(parts)) return;
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
