// The loop registry (loop_registry.h): name → factory behind a mutex.
#include "selfrl/loops/loop_registry.h"

#include <algorithm>
#include <mutex>

#include "selfrl/core/error.h"

namespace selfrl::loops {

namespace {

struct Registry {
  std::mutex mutex;
  std::vector<LoopInfo> entries;
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: registrations may run at exit
  return *r;
}

// The order docs and error messages list the built-ins in.
int builtin_rank(const std::string& name) {
  static const std::vector<std::string> order = {
      "grpo", "sft", "dpo", "star", "rest_em", "nft", "bstar", "self_rewarding_dpo", "scpo", "sec", "knowrl"};
  const auto it = std::find(order.begin(), order.end(), name);
  return it == order.end() ? static_cast<int>(order.size()) : static_cast<int>(it - order.begin());
}

}  // namespace

void register_loop(LoopInfo info) {
  if (info.name.empty() || !info.factory) throw Error("register_loop: a loop needs a name and a factory");
  if (!info.builtin) {
    const auto base = find_loop(info.reads_keys_of);
    if (!base || !base->builtin)
      throw Error("register_loop: '" + info.name + "' reads the keys of '" + info.reads_keys_of +
                  "', which is not a built-in kind")
          .hint("set reads_keys_of to the built-in kind whose recipe keys the loop uses (e.g. rest_em, star, grpo)");
  }
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = std::find_if(r.entries.begin(), r.entries.end(), [&](const LoopInfo& e) { return e.name == info.name; });
  if (it != r.entries.end()) {
    if (it->builtin) throw Error("register_loop: '" + info.name + "' is a built-in kind").hint("choose another name");
    *it = std::move(info);
    return;
  }
  r.entries.push_back(std::move(info));
}

bool unregister_loop(const std::string& name) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it =
      std::find_if(r.entries.begin(), r.entries.end(), [&](const LoopInfo& e) { return e.name == name && !e.builtin; });
  if (it == r.entries.end()) return false;
  r.entries.erase(it);
  return true;
}

std::vector<LoopInfo> registered_loops() {
  std::vector<LoopInfo> out;
  {
    auto& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    out = r.entries;
  }
  std::stable_sort(out.begin(), out.end(), [](const LoopInfo& a, const LoopInfo& b) {
    if (a.builtin != b.builtin) return a.builtin;
    return a.builtin && builtin_rank(a.name) < builtin_rank(b.name);
  });
  return out;
}

std::optional<LoopInfo> find_loop(const std::string& name) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (const auto& e : r.entries)
    if (e.name == name) return e;
  return std::nullopt;
}

}  // namespace selfrl::loops
