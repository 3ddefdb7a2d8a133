// NamedReduction (see selfrl/dist/named_reduction.h).
#include "selfrl/dist/named_reduction.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>

#include "selfrl/core/error.h"
#include "selfrl/dist/world.h"

namespace selfrl::dist {

void NamedReduction::declare(const std::string& name, Op op) {
  const double init = op == Op::kSum ? 0.0 : -std::numeric_limits<double>::infinity();
  SELFRL_CHECK(entries_.emplace(name, Entry{op, init}).second, "NamedReduction: '", name, "' declared twice");
}

NamedReduction::Entry& NamedReduction::entry(const std::string& name, Op op) {
  auto it = entries_.find(name);
  SELFRL_CHECK(it != entries_.end(), "NamedReduction: '", name, "' was not declared");
  SELFRL_CHECK(it->second.op == op, "NamedReduction: '", name, "' is declared with another operation");
  return it->second;
}

void NamedReduction::add(const std::string& name, double value) { entry(name, Op::kSum).value += value; }

void NamedReduction::raise(const std::string& name, double value) {
  auto& e = entry(name, Op::kMax);
  e.value = std::max(e.value, value);
}

double NamedReduction::operator[](const std::string& name) const {
  auto it = entries_.find(name);
  SELFRL_CHECK(it != entries_.end(), "NamedReduction: '", name, "' was not declared");
  return it->second.value;
}

std::vector<std::string> NamedReduction::names() const {
  std::vector<std::string> out;
  for (const auto& [k, e] : entries_) out.push_back(k);
  return out;
}

void NamedReduction::reduce(World* world, const std::string& what) {
  if (!world || !world->distributed()) return;
  std::vector<double> sums;
  std::vector<double> maxima;
  for (const auto& [k, e] : entries_) (e.op == Op::kSum ? sums : maxima).push_back(e.value);
  if (!sums.empty()) sums = world->all_reduce_sum(sums, what);
  if (!maxima.empty()) {
    const int64_t n = static_cast<int64_t>(maxima.size());
    const auto all = world->all_gather(torch::tensor(maxima, torch::kDouble), what + " (maxima)").view({-1, n});
    const auto mx = std::get<0>(all.max(0)).contiguous();
    maxima.assign(mx.data_ptr<double>(), mx.data_ptr<double>() + n);
  }
  size_t s = 0, m = 0;
  for (auto& [k, e] : entries_) e.value = e.op == Op::kSum ? sums[s++] : maxima[m++];
}

}  // namespace selfrl::dist
