// A program that adds its own reward by name and runs a YAML recipe that uses it — what
// `selfrl train` does, plus one registration. Works under mpirun / torchrun like the CLI.
//
//   example_recipe_with_plugin RECIPE.yaml [key=value ...]
//   mpirun -np 2 example_recipe_with_plugin RECIPE.yaml
// with, in the recipe:   reward_funcs: [shorter_is_better, self_certainty]
#include <iostream>

#include <selfrl/selfrl.h>

namespace sr = selfrl;

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " RECIPE.yaml [key=value ...]\n";
    return 2;
  }
  // Registered before the recipe is read: the validator, the "unknown reward" message and
  // --list-keys all see it.
  sr::rewards::register_reward(
      "shorter_is_better",
      [](const sr::rewards::RewardArgs& args) {
        const double max_len = static_cast<double>(args.max_completion_length);
        return sr::rewards::make_function_reward("shorter_is_better", [max_len](const sr::rewards::Group& g) {
          std::vector<double> s;
          for (const auto& x : g.samples) s.push_back(1.0 - static_cast<double>(x.completion_ids.size()) / max_len);
          return s;
        });
      },
      "1 - tokens / max_completion_length");

  auto recipe = sr::recipe::Recipe::load(argv[1], std::vector<std::string>(argv + 2, argv + argc));
  sr::loops::Run run(sr::loops::read_train_config(recipe));
  const auto result = run.train();
  std::cout << "done: " << run.global_step() << " steps, final model " << result.final_model_dir << "\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
