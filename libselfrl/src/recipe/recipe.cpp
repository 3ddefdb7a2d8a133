// YAML recipes with locations, extends, overrides and unknown-key detection
// (see selfrl/recipe/recipe.h).
#include "selfrl/recipe/recipe.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <set>
#include <cerrno>
#include <fstream>
#include <functional>
#include <sstream>

#include "selfrl/core/error.h"

namespace selfrl::recipe {
namespace fs = std::filesystem;

std::string Location::str() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

const Node* Node::find(const std::string& key) const {
  for (const auto& [k, v] : map)
    if (k == key) return &v;
  return nullptr;
}
Node* Node::find(const std::string& key) {
  for (auto& [k, v] : map)
    if (k == key) return &v;
  return nullptr;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

namespace {

Location loc_of(const YAML::Mark& m, const std::string& file) { return {file, m.line + 1, m.column + 1}; }

Node convert(const YAML::Node& y, const std::string& file) {
  Node n;
  n.loc = loc_of(y.Mark(), file);
  switch (y.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      n.kind = Node::Kind::kNull;
      break;
    case YAML::NodeType::Scalar:
      n.kind = Node::Kind::kScalar;
      n.scalar = y.Scalar();
      break;
    case YAML::NodeType::Sequence:
      n.kind = Node::Kind::kSequence;
      for (const auto& item : y) n.items.push_back(convert(item, file));
      break;
    case YAML::NodeType::Map:
      n.kind = Node::Kind::kMap;
      for (auto it = y.begin(); it != y.end(); ++it) {
        if (!it->first.IsScalar())
          throw Error("mapping keys must be plain names").at(loc_of(it->first.Mark(), file).str());
        const std::string key = it->first.Scalar();
        if (n.find(key) != nullptr) {
          throw Error("key '" + key + "' appears twice in the same mapping").at(loc_of(it->first.Mark(), file).str());
        }
        Node child = convert(it->second, file);
        if (child.kind == Node::Kind::kNull) child.loc = loc_of(it->first.Mark(), file);
        n.map.emplace_back(key, std::move(child));
      }
      break;
  }
  return n;
}

Node parse_yaml(const std::string& text, const std::string& file) {
  try {
    return convert(YAML::Load(text), file);
  } catch (const YAML::ParserException& e) {
    throw Error("YAML syntax error: " + e.msg).at(loc_of(e.mark, file).str());
  }
}

// Child values override base values; maps merge key by key.
void merge_into(Node& base, const Node& child) {
  if (base.kind != Node::Kind::kMap || child.kind != Node::Kind::kMap) {
    base = child;
    return;
  }
  for (const auto& [k, v] : child.map) {
    Node* existing = base.find(k);
    if (existing == nullptr) {
      base.map.emplace_back(k, v);
    } else {
      merge_into(*existing, v);
    }
  }
}

Node load_file(const std::string& path, std::vector<std::string>& chain) {
  const std::string canonical = fs::weakly_canonical(path).string();
  if (std::find(chain.begin(), chain.end(), canonical) != chain.end()) {
    throw Error("recipe extends itself (cycle: " + canonical + ")").at(path);
  }
  if (!fs::exists(path)) throw Error("recipe file not found").at(path).hint("check the path");
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  Node root = parse_yaml(ss.str(), path);
  if (root.kind == Node::Kind::kNull) root.kind = Node::Kind::kMap;
  if (root.kind != Node::Kind::kMap) throw Error("a recipe must be a mapping of keys to values").at(root.loc.str());
  const Node* ext = root.find("extends");
  if (ext == nullptr) return root;
  std::vector<std::string> bases;
  if (ext->kind == Node::Kind::kScalar) {
    bases.push_back(ext->scalar);
  } else if (ext->kind == Node::Kind::kSequence) {
    for (const auto& b : ext->items) bases.push_back(b.scalar);
  } else {
    throw Error("extends: must be a file name or a list of them").at(ext->loc.str());
  }
  chain.push_back(canonical);
  Node merged;
  merged.kind = Node::Kind::kMap;
  merged.loc = root.loc;
  for (const auto& b : bases) {
    const fs::path base_path = fs::path(path).parent_path() / b;
    if (!fs::exists(base_path)) throw Error("extends: base recipe '" + b + "' not found").at(ext->loc.str());
    merge_into(merged, load_file(base_path.string(), chain));
  }
  chain.pop_back();
  root.map.erase(std::remove_if(root.map.begin(), root.map.end(), [](const auto& kv) { return kv.first == "extends"; }),
                 root.map.end());
  merge_into(merged, root);
  return merged;
}

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : key) {
    if (c == '.') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  parts.push_back(cur);
  return parts;
}

void apply_override(Node& root, const std::string& spec) {
  const auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw Error("override '" + spec + "' is not of the form key.sub=value").at("command line");
  }
  const std::string key = spec.substr(0, eq);
  const Location where{"command line override '" + spec + "'", 0, 0};
  Node value;
  try {
    value = convert(YAML::Load(spec.substr(eq + 1)), where.file);
  } catch (const YAML::ParserException& e) {
    throw Error("cannot parse the value: " + e.msg).at(where.file);
  }
  value.loc = where;
  std::function<void(Node&)> relocate = [&](Node& n) {
    n.loc = where;
    for (auto& i : n.items) relocate(i);
    for (auto& [k, v] : n.map) relocate(v);
  };
  relocate(value);
  Node* cur = &root;
  const auto parts = split_key(key);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    Node* next = cur->find(parts[i]);
    if (next == nullptr) {
      Node m;
      m.kind = Node::Kind::kMap;
      m.loc = where;
      cur->map.emplace_back(parts[i], m);
      next = &cur->map.back().second;
    } else if (next->kind == Node::Kind::kNull) {
      next->kind = Node::Kind::kMap;
    } else if (next->kind != Node::Kind::kMap) {
      throw Error("'" + parts[i] + "' is not a section, so '" + key + "' cannot be set").at(where.file);
    }
    cur = next;
  }
  Node* leaf = cur->find(parts.back());
  if (leaf == nullptr) {
    cur->map.emplace_back(parts.back(), value);
  } else {
    *leaf = value;
  }
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string fmt_number(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string range_text(const Range& r) {
  if (std::isinf(r.min) && std::isinf(r.max)) return "";
  return std::string(r.min_exclusive ? "(" : "[") + fmt_number(r.min) + ", " + fmt_number(r.max) +
         (r.max_exclusive || std::isinf(r.max) ? ")" : "]");
}

Error value_error(const std::string& key, const Node& n, const std::string& what) {
  return Error(key + ": " + what).at(n.loc.str());
}

double parse_double(const std::string& key, const Node& n) {
  if (n.kind != Node::Kind::kScalar) throw value_error(key, n, "expected a number");
  const std::string s = lower(n.scalar);
  if (s == ".inf" || s == "inf") return std::numeric_limits<double>::infinity();
  if (s == "-.inf" || s == "-inf") return -std::numeric_limits<double>::infinity();
  char* end = nullptr;
  const double v = std::strtod(n.scalar.c_str(), &end);
  if (n.scalar.empty() || end != n.scalar.c_str() + n.scalar.size() || std::isnan(v)) {
    throw value_error(key, n, "expected a number, got '" + n.scalar + "'");
  }
  return v;
}

void check_range(const std::string& key, const Node& n, double v, const Range& r) {
  const bool low = r.min_exclusive ? v <= r.min : v < r.min;
  const bool high = r.max_exclusive ? v >= r.max : v > r.max;
  if (low || high) throw value_error(key, n, "value " + fmt_number(v) + " is out of range; allowed: " + range_text(r));
}

}  // namespace

Recipe Recipe::load(const std::string& path, const std::vector<std::string>& overrides) {
  Recipe r;
  r.source_ = path;
  std::vector<std::string> chain;
  r.root_ = load_file(path, chain);
  for (const auto& o : overrides) apply_override(r.root_, o);
  return r;
}

Recipe Recipe::parse(const std::string& text, const std::string& name, const std::vector<std::string>& overrides) {
  Recipe r;
  r.source_ = name;
  r.root_ = parse_yaml(text, name);
  if (r.root_.kind == Node::Kind::kNull) r.root_.kind = Node::Kind::kMap;
  if (r.root_.kind != Node::Kind::kMap) throw Error("a recipe must be a mapping of keys to values").at(name);
  if (r.root_.find("extends") != nullptr) throw Error("extends: needs a recipe loaded from a file").at(name);
  for (const auto& o : overrides) apply_override(r.root_, o);
  return r;
}

const Node* Recipe::lookup(const std::string& key) const {
  const Node* cur = &root_;
  std::string walked;
  for (const auto& part : split_key(key)) {
    if (cur->kind == Node::Kind::kNull) return nullptr;
    if (cur->kind != Node::Kind::kMap) {
      throw Error("'" + walked + "' must be a section (a mapping) to hold '" + key + "'").at(cur->loc.str());
    }
    cur = cur->find(part);
    if (cur == nullptr) return nullptr;
    walked += (walked.empty() ? "" : ".") + part;
  }
  return cur->kind == Node::Kind::kNull ? nullptr : cur;
}

bool Recipe::has(const std::string& key) const { return lookup(key) != nullptr; }

namespace {
std::string yaml_text(const Node& n) {
  if (n.kind == Node::Kind::kScalar) return n.scalar;
  if (n.kind == Node::Kind::kSequence) {
    std::string s = "[";
    for (size_t i = 0; i < n.items.size(); ++i) s += (i ? ", " : "") + yaml_text(n.items[i]);
    return s + "]";
  }
  if (n.kind == Node::Kind::kMap) {
    std::string s = "{";
    for (size_t i = 0; i < n.map.size(); ++i) s += (i ? ", " : "") + n.map[i].first + ": " + yaml_text(n.map[i].second);
    return s + "}";
  }
  return "null";
}
}  // namespace

std::vector<Recipe::Effective> Recipe::effective() const {
  std::vector<Effective> out;
  for (const auto& d : docs_) {
    const Node* n = nullptr;
    try {
      n = lookup(d.key);
    } catch (const Error&) {}
    if (n != nullptr)
      out.push_back({d.key, yaml_text(*n), n->loc.str()});
    else
      out.push_back({d.key, d.default_value, "default"});
  }
  return out;
}

void Recipe::record(const std::string& key, const std::string& type, const std::string& def, const std::string& allowed,
                    const std::string& doc) {
  if (std::find(known_.begin(), known_.end(), key) != known_.end()) return;
  known_.push_back(key);
  docs_.push_back({key, type, def, allowed, doc});
}

void Recipe::allow(const std::string& prefix) { allowed_prefixes_.push_back(prefix); }

namespace {
nlohmann::json node_json(const Node& n) {
  switch (n.kind) {
    case Node::Kind::kScalar: {
      const auto j = nlohmann::json::parse(n.scalar, nullptr, false);  // 4, 0.5, true → typed
      return !j.is_discarded() && (j.is_number() || j.is_boolean()) ? j : nlohmann::json(n.scalar);
    }
    case Node::Kind::kSequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& i : n.items) a.push_back(node_json(i));
      return a;
    }
    case Node::Kind::kMap: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& [k, v] : n.map) o[k] = node_json(v);
      return o;
    }
    default:
      return nullptr;
  }
}
}  // namespace

nlohmann::json Recipe::section_json(const std::string& key) const {
  const Node* n = lookup(key);
  return n == nullptr ? nlohmann::json(nullptr) : node_json(*n);
}

namespace {
// A wrong type names the allowed range too (as an out-of-range value does).
double parse_double_in(const std::string& key, const Node& n, const Range& range) {
  try {
    return parse_double(key, n);
  } catch (Error& e) {
    if (!range_text(range).empty()) e.hint("allowed: a number in " + range_text(range));
    throw;
  }
}
}  // namespace

Location Recipe::location_of(const std::string& key) const {
  const Node* n = lookup(key);
  return n != nullptr ? n->loc : Location{source_, 0, 0};
}

double Recipe::get_double(const std::string& key, double def, Range range, const std::string& doc) {
  record(key, "number", fmt_number(def), range_text(range), doc);
  const Node* n = lookup(key);
  if (n == nullptr) return def;
  const double v = parse_double_in(key, *n, range);
  check_range(key, *n, v, range);
  return v;
}

std::optional<double> Recipe::get_optional_double(const std::string& key, Range range, const std::string& doc) {
  record(key, "number or null", "null", range_text(range), doc);
  const Node* n = lookup(key);
  if (n == nullptr) return std::nullopt;
  const double v = parse_double_in(key, *n, range);
  check_range(key, *n, v, range);
  return v;
}

int64_t Recipe::get_int(const std::string& key, int64_t def, Range range, const std::string& doc) {
  record(key, "integer", std::to_string(def), range_text(range), doc);
  const Node* n = lookup(key);
  if (n == nullptr) return def;
  const std::string allowed = range_text(range).empty() ? "any integer" : "an integer in " + range_text(range);
  if (n->kind != Node::Kind::kScalar) throw value_error(key, *n, "expected an integer").hint("allowed: " + allowed);
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(n->scalar.c_str(), &end, 10);
  if (n->scalar.empty() || end != n->scalar.c_str() + n->scalar.size() || errno == ERANGE) {
    throw value_error(key, *n, "expected an integer, got '" + n->scalar + "'").hint("allowed: " + allowed);
  }
  check_range(key, *n, static_cast<double>(v), range);
  return v;
}

bool Recipe::get_bool(const std::string& key, bool def, const std::string& doc) {
  record(key, "boolean", def ? "true" : "false", "true, false", doc);
  const Node* n = lookup(key);
  if (n == nullptr) return def;
  const std::string s = n->kind == Node::Kind::kScalar ? lower(n->scalar) : "";
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  throw value_error(key, *n, "expected true or false, got '" + n->scalar + "'");
}

std::string Recipe::get_string(const std::string& key, const std::string& def, const std::vector<std::string>& choices,
                               const std::string& doc) {
  std::string allowed;
  for (const auto& c : choices) allowed += (allowed.empty() ? "" : ", ") + c;
  record(key, "string", def.empty() ? "\"\"" : def, allowed, doc);
  const Node* n = lookup(key);
  if (n == nullptr) return def;
  if (n->kind != Node::Kind::kScalar) throw value_error(key, *n, "expected a string");
  if (!choices.empty() && std::find(choices.begin(), choices.end(), n->scalar) == choices.end()) {
    std::string best;
    size_t best_d = 3;
    for (const auto& c : choices) {
      const size_t d = edit_distance(n->scalar, c);
      if (d < best_d) {
        best_d = d;
        best = c;
      }
    }
    Error e = value_error(key, *n, "'" + n->scalar + "' is not one of: " + allowed);
    if (!best.empty()) e.hint("did you mean '" + best + "'?");
    throw e;
  }
  return n->scalar;
}

std::vector<std::string> Recipe::get_string_list(const std::string& key, const std::vector<std::string>& def,
                                                 const std::string& doc) {
  std::string d;
  for (const auto& s : def) d += (d.empty() ? "" : ", ") + s;
  record(key, "list of strings", "[" + d + "]", "", doc);
  const Node* n = lookup(key);
  if (n == nullptr) return def;
  if (n->kind == Node::Kind::kScalar) return {n->scalar};  // a single value is a list of one
  if (n->kind != Node::Kind::kSequence) throw value_error(key, *n, "expected a list of strings");
  std::vector<std::string> out;
  for (const auto& item : n->items) {
    if (item.kind != Node::Kind::kScalar) throw value_error(key, item, "expected a list of strings");
    out.push_back(item.scalar);
  }
  return out;
}

std::vector<double> Recipe::get_double_list(const std::string& key, const std::vector<double>& def,
                                            const std::string& doc) {
  std::string d;
  for (double v : def) d += (d.empty() ? "" : ", ") + fmt_number(v);
  record(key, "list of numbers", "[" + d + "]", "", doc);
  const Node* n = lookup(key);
  if (n == nullptr) return def;
  if (n->kind == Node::Kind::kScalar) return {parse_double(key, *n)};
  if (n->kind != Node::Kind::kSequence) throw value_error(key, *n, "expected a list of numbers");
  std::vector<double> out;
  for (const auto& item : n->items) out.push_back(parse_double(key, item));
  return out;
}

std::vector<int64_t> Recipe::get_int_list(const std::string& key, const std::vector<int64_t>& def, Range range,
                                          const std::string& doc) {
  std::string d;
  for (int64_t v : def) d += (d.empty() ? "" : ", ") + std::to_string(v);
  record(key, "list of integers", "[" + d + "]", range_text(range), doc);
  const Node* n = lookup(key);
  if (n == nullptr) return def;
  if (n->kind != Node::Kind::kScalar && n->kind != Node::Kind::kSequence)
    throw value_error(key, *n, "expected a list of integers");
  const std::vector<Node> one = n->kind == Node::Kind::kScalar ? std::vector<Node>{*n} : std::vector<Node>{};
  std::vector<int64_t> out;
  for (const auto& item : n->kind == Node::Kind::kScalar ? one : n->items) {
    char* end = nullptr;
    errno = 0;
    const long long v = item.kind == Node::Kind::kScalar ? std::strtoll(item.scalar.c_str(), &end, 10) : 0;
    if (item.kind != Node::Kind::kScalar || item.scalar.empty() || end != item.scalar.c_str() + item.scalar.size() ||
        errno == ERANGE)
      throw value_error(key, item, "expected a list of integers, got '" + item.scalar + "'");
    check_range(key, item, static_cast<double>(v), range);
    out.push_back(v);
  }
  return out;
}

std::string Recipe::get_path(const std::string& key, const std::string& def, bool must_exist, const std::string& doc) {
  record(key, "path", def.empty() ? "\"\"" : def, must_exist ? "an existing file or directory" : "", doc);
  const Node* n = lookup(key);
  auto fail = [&](Error e) {
    if (!defer_files_) throw e;
    missing_files_.push_back(std::move(e));
  };
  if (n == nullptr) {
    if (must_exist && def.empty())
      fail(Error(key + ": required").at(source_).hint("set " + key + " in the recipe or as " + key + "=PATH"));
    else if (must_exist && !fs::exists(def))
      fail(Error(key + ": '" + def + "' does not exist").at(source_));
    return def;
  }
  if (n->kind != Node::Kind::kScalar) throw value_error(key, *n, "expected a path");
  fs::path p(n->scalar);
  if (p.is_relative() && n->loc.line > 0) p = fs::path(n->loc.file).parent_path() / p;  // relative to its recipe
  if (must_exist && !fs::exists(p)) {
    fail(value_error(key, *n, "'" + p.string() + "' does not exist")
             .hint("paths are relative to the recipe file that sets them"));
  }
  return p.lexically_normal().string();
}

void Recipe::finish() const {
  std::function<void(const Node&, const std::string&)> walk = [&](const Node& n, const std::string& prefix) {
    for (const auto& [k, v] : n.map) {
      const std::string key = prefix.empty() ? k : prefix + "." + k;
      bool allowed = false;
      for (const auto& p : allowed_prefixes_) allowed |= key == p || key.rfind(p + ".", 0) == 0;
      if (allowed) continue;
      const bool known = std::find(known_.begin(), known_.end(), key) != known_.end();
      if (known) continue;
      const bool is_section =
          std::any_of(known_.begin(), known_.end(), [&](const std::string& kk) { return kk.rfind(key + ".", 0) == 0; });
      if (is_section && v.kind == Node::Kind::kMap) {
        walk(v, key);
        continue;
      }
      std::string best;
      size_t best_d = std::max<size_t>(3, key.size() / 3 + 1);
      for (const auto& kk : known_) {
        const size_t d = edit_distance(key, kk);
        if (d < best_d) {
          best_d = d;
          best = kk;
        }
      }
      Error e(key + ": unknown key");
      e.at(v.loc.str());
      e.hint(best.empty() ? "see docs/recipes.md for the keys" : "did you mean '" + best + "'?");
      throw e;
    }
  };
  walk(root_, "");
  if (!missing_files_.empty()) throw missing_files_.front();
}

}  // namespace selfrl::recipe
