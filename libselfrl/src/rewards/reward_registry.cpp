// The reward registry (reward_registry.h): a name → factory table behind a mutex.
#include "selfrl/rewards/reward_registry.h"

#include <algorithm>
#include <mutex>

#include "selfrl/core/error.h"
#include "selfrl/recipe/recipe.h"

namespace selfrl::rewards {

namespace {

struct Registry {
  std::mutex mutex;
  std::vector<RewardInfo> entries;
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: registrations may run at exit
  return *r;
}

bool valid_name(const std::string& n) {
  if (n.empty() || !(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_')) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

}  // namespace

void register_reward(const std::string& name, RewardFactory factory, const std::string& doc, bool builtin) {
  if (!valid_name(name))
    throw Error("register_reward: '" + name + "' is not a valid reward name")
        .hint("use letters, digits, '_', '.' or '-', starting with a letter or '_'");
  if (!factory) throw Error("register_reward: '" + name + "' has no factory");
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = std::find_if(r.entries.begin(), r.entries.end(), [&](const RewardInfo& e) { return e.name == name; });
  if (it != r.entries.end()) {
    if (it->builtin && !builtin)
      throw Error("register_reward: '" + name + "' is a built-in reward").hint("register yours under another name");
    it->factory = std::move(factory);
    it->doc = doc;
    return;
  }
  RewardInfo info{name, doc, std::move(factory), builtin};
  if (builtin) {
    // Built-ins stay ahead of user rewards in listings, whatever the load order.
    auto first_user = std::find_if(r.entries.begin(), r.entries.end(), [](const RewardInfo& e) { return !e.builtin; });
    r.entries.insert(first_user, std::move(info));
  } else {
    r.entries.push_back(std::move(info));
  }
}

bool unregister_reward(const std::string& name) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = std::find_if(r.entries.begin(), r.entries.end(),
                         [&](const RewardInfo& e) { return e.name == name && !e.builtin; });
  if (it == r.entries.end()) return false;
  r.entries.erase(it);
  return true;
}

std::vector<RewardInfo> registered_rewards() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.entries;
}

std::vector<std::string> registered_reward_names() {
  std::vector<std::string> out;
  for (const auto& e : registered_rewards()) out.push_back(e.name);
  return out;
}

bool is_registered_reward(const std::string& name) {
  const auto names = registered_reward_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

Error unknown_reward_error(const std::string& name) {
  const auto names = registered_reward_names();
  std::string list, best;
  for (const auto& n : names) {
    list += (list.empty() ? "" : ", ") + n;
    if (best.empty() || recipe::edit_distance(n, name) < recipe::edit_distance(best, name)) best = n;
  }
  Error e("unknown reward '" + name + "'; known: " + list);
  if (!best.empty() && recipe::edit_distance(best, name) <= std::max<size_t>(2, name.size() / 3))
    e.hint("did you mean '" + best +
           "'? (a program's own rewards must be registered with register_reward before the recipe is read)");
  else
    e.hint(
        "a program's own rewards must be registered with selfrl::rewards::register_reward (Python: "
        "selfrl.register_reward) before the recipe is read");
  return e;
}

RewardPtr make_reward(const std::string& name, const RewardArgs& args) {
  RewardFactory factory;
  {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    for (const auto& e : r.entries)
      if (e.name == name) factory = e.factory;
  }
  if (!factory) throw unknown_reward_error(name);
  auto reward = factory(args);
  if (!reward) throw Error("reward '" + name + "': its factory returned no reward");
  return reward;
}

}  // namespace selfrl::rewards
