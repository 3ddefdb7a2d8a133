// Recipes: YAML files that configure a run, read into typed structs and validated once.
//
//   Recipe r = Recipe::load("recipes/tiny/grpo.yaml", {"grpo.beta=0.04", "seed=3"});
//   cfg.beta = r.get_double("grpo.beta", 0.0, {.min = 0}, "KL coefficient");
//   ...
//   r.finish();   // rejects every key nobody asked for, with "did you mean"
//
// Every value remembers where it came from (file:line:column, or the command-line override),
// so errors read "recipe.yaml:12:3: grpo.bta: unknown key (hint: did you mean 'grpo.beta'?)".
// A recipe may start with `extends: base.yaml` (path relative to the recipe); maps merge
// recursively, the child winning. Overrides `a.b=value` are parsed as YAML scalars / lists.
// Every key read is also recorded with its type, default and documentation, which is how
// docs/recipes.md is generated.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "selfrl/core/error.h"

namespace selfrl::recipe {

// Limits on what a recipe may be, so that a hostile or broken file fails with a message instead
// of hanging, exhausting memory or overflowing the stack.
inline constexpr uint64_t kMaxRecipeBytes = 4u << 20;       // each file read (and parse()'s text): 4 MiB
inline constexpr int kMaxRecipeDepth = 64;                  // nesting of mappings / lists
inline constexpr int64_t kMaxRecipeValues = 100000;         // values after YAML aliases are expanded, per load
inline constexpr uint64_t kMaxRecipeTextBytes = 16u << 20;  // key + scalar bytes after aliases, per load
inline constexpr int kMaxExtendsDepth = 16;                 // `extends:` chain length
inline constexpr int kMaxRecipeFiles = 64;                  // files read by one load, `extends:` included

struct Location {
  std::string file;  // or "command line"
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;
  std::string str() const;
};

struct Node {
  enum class Kind { kNull, kScalar, kSequence, kMap };
  Kind kind = Kind::kNull;
  std::string scalar;
  std::vector<Node> items;                        // kSequence
  std::vector<std::pair<std::string, Node>> map;  // kMap, in file order
  Location loc;
  const Node* find(const std::string& key) const;
  Node* find(const std::string& key);
};

struct Range {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;
  bool max_exclusive = false;
};

// One documented key, as read by the config code.
struct KeyDoc {
  std::string key, type, default_value, allowed, doc;
};

class Recipe {
 public:
  // Reads a YAML file (with `extends:` resolved) and applies `overrides` ("a.b=value").
  // Throws selfrl::Error naming the file and line for YAML syntax errors and missing files, and
  // for anything past the limits above: a file that is not a regular file (directory, FIFO,
  // device) or is too large, nesting too deep, a recursive YAML alias, too many values after
  // aliases are expanded (an alias bomb), too long or too wide an `extends:` chain.
  static Recipe load(const std::string& path, const std::vector<std::string>& overrides = {});
  // From YAML text (tests, Python); `name` labels locations.
  static Recipe parse(const std::string& yaml_text, const std::string& name = "<recipe>",
                      const std::vector<std::string>& overrides = {});

  // Typed getters: `key` is dotted ("grpo.beta"). Absent (or null) → the default. Wrong type or
  // out of range → Error with the key, its location and what is allowed.
  double get_double(const std::string& key, double def, Range range = {}, const std::string& doc = "");
  std::optional<double> get_optional_double(const std::string& key, Range range = {}, const std::string& doc = "");
  int64_t get_int(const std::string& key, int64_t def, Range range = {}, const std::string& doc = "");
  bool get_bool(const std::string& key, bool def, const std::string& doc = "");
  std::string get_string(const std::string& key, const std::string& def, const std::vector<std::string>& choices = {},
                         const std::string& doc = "");
  std::vector<std::string> get_string_list(const std::string& key, const std::vector<std::string>& def,
                                           const std::string& doc = "");
  std::vector<double> get_double_list(const std::string& key, const std::vector<double>& def,
                                      const std::string& doc = "");
  std::vector<int64_t> get_int_list(const std::string& key, const std::vector<int64_t>& def, Range range = {},
                                    const std::string& doc = "");
  // A path, resolved against the directory of the file that set it. `must_exist` checks it.
  std::string get_path(const std::string& key, const std::string& def, bool must_exist, const std::string& doc = "");
  bool has(const std::string& key) const;
  // Declares a whole section as known (e.g. free-form metadata) without reading it.
  void allow(const std::string& key_prefix);
  // A section (or value) as JSON: scalars that read as numbers or booleans become those, the
  // rest strings; null when absent. For a program's own loop knobs (TrainConfig::loop_args).
  nlohmann::json section_json(const std::string& key) const;

  // Throws for the first key present in the recipe that nothing read, suggesting the closest
  // known key; then for the first path that must exist and does not, when those checks were
  // deferred. Call after every getter ran.
  void finish() const;
  // get_path(must_exist) then records a missing file instead of throwing, and finish() reports
  // it after the recipe's own mistakes: a typo is named before the missing file it may cause.
  void defer_file_checks(bool on = true) { defer_files_ = on; }
  // For an error found before finish() could run: throws for the first key present in the
  // recipe that is neither read so far nor in `also_known`, nor under a section in
  // `also_allowed`, and that has a close match there ("did you mean") -- a likely typo, which
  // is then reported instead of the error it caused (a misspelt output_dir: "required").
  void check_likely_typos(const std::vector<std::string>& also_known,
                          const std::vector<std::string>& also_allowed = {}) const;

  const std::vector<KeyDoc>& documented_keys() const { return docs_; }
  // Every key read so far with the value in effect: {key, value as YAML text, where it came
  // from ("file:line:col", "command line" or "default")}. For `selfrl train --check`.
  struct Effective {
    std::string key, value, source;
  };
  std::vector<Effective> effective() const;
  // Where `key` was set, or the recipe file when it was not.
  Location location_of(const std::string& key) const;
  const std::string& source() const { return source_; }

 private:
  const Node* lookup(const std::string& key) const;
  std::optional<Error> first_unknown_key(const std::vector<std::string>& also_known,
                                         const std::vector<std::string>& also_allowed, bool only_typos) const;
  void record(const std::string& key, const std::string& type, const std::string& def, const std::string& allowed,
              const std::string& doc);
  Node root_;
  std::string source_;
  std::vector<std::string> known_;
  std::vector<std::string> allowed_prefixes_;
  bool defer_files_ = false;
  std::vector<Error> missing_files_;  // deferred get_path errors, in reading order
  std::vector<KeyDoc> docs_;
};

// Levenshtein distance, for "did you mean".
size_t edit_distance(const std::string& a, const std::string& b);

// A recipe value or key as quoted in an error message: at most `max` bytes, the rest elided as
// "... (N bytes)" so that a hostile multi-megabyte value does not flood the terminal.
std::string clip_for_message(const std::string& s, size_t max = 80);

}  // namespace selfrl::recipe
