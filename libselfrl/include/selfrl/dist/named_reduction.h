// NamedReduction: statistics every rank contributes under names, reduced over ranks in one
// collective per operation (sum, max).
//
// Names are declared before any value is added — from the configuration, never from the data
// — so every rank holds the same names, and reduce() exchanges them in the same (sorted) order
// by construction: a rank that has nothing to contribute on some path still reduces its zeros
// under the same names. Adding to an undeclared name is a programming error (throws).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace selfrl::dist {

class World;

class NamedReduction {
 public:
  enum class Op { kSum, kMax };

  // A new entry, 0 for kSum and -infinity for kMax. Declaring a name twice is an error.
  void declare(const std::string& name, Op op = Op::kSum);
  void add(const std::string& name, double value);    // kSum entries
  void raise(const std::string& name, double value);  // kMax entries: max(current, value)
  double operator[](const std::string& name) const;
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  std::vector<std::string> names() const;

  // Sums the kSum entries and takes the maximum of the kMax ones over the ranks of `world`
  // (nothing happens for a null world or a world of one process). `what` names the
  // collectives in errors.
  void reduce(World* world, const std::string& what);

 private:
  struct Entry {
    Op op;
    double value;
  };
  Entry& entry(const std::string& name, Op op);
  std::map<std::string, Entry> entries_;
};

}  // namespace selfrl::dist
