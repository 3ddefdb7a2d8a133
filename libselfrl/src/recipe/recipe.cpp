// YAML recipes with locations, extends, overrides and unknown-key detection
// (see selfrl/recipe/recipe.h).
#include "selfrl/recipe/recipe.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "selfrl/core/error.h"
#include "selfrl/io/file_util.h"

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

std::string clip_for_message(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
  return s.substr(0, cut) + "... (" + std::to_string(s.size()) + " bytes)";
}

namespace {

Location loc_of(const YAML::Mark& m, const std::string& file) { return {file, m.line + 1, m.column + 1}; }

// What one Recipe::load (all its files) or parse may still convert: the limits of recipe.h.
struct Budget {
  int64_t values = 0;
  uint64_t text_bytes = 0;
  int files = 0;
};

struct Converter {
  const std::string& file;
  Budget& budget;
  std::vector<YAML::Node> open;  // the mappings / lists being converted, outermost first

  Error limit_error(const YAML::Node& y, const std::string& what, const std::string& hint) const {
    return Error(what).at(loc_of(y.Mark(), file).str()).hint(hint);
  }

  void count(const YAML::Node& y, size_t bytes, int64_t values = 1) {
    budget.values += values;
    if (budget.values > kMaxRecipeValues)
      throw limit_error(y,
                        "the recipe has more than " + std::to_string(kMaxRecipeValues) +
                            " values once its YAML aliases are expanded (limit reached here)",
                        "a recipe needs far fewer; write the values out instead of nesting aliases (*name)");
    budget.text_bytes += bytes;
    if (budget.text_bytes > kMaxRecipeTextBytes)
      throw limit_error(y,
                        "the recipe has more than " + std::to_string(kMaxRecipeTextBytes >> 20) +
                            " MiB of keys and values once its YAML aliases are expanded (limit reached here)",
                        "a recipe needs far less; do not repeat long values through aliases (*name)");
  }

  // yaml-cpp 0.7 writes the escapes \N (U+0085) and \_ (U+00A0) of double-quoted strings as
  // single Latin-1 bytes, which is not UTF-8 (the recipe text itself was checked), and JSON, the
  // tokenizers and Python refuse it later. Those two bytes become their UTF-8 encodings; any
  // other invalid sequence is an error at the value (none is known: yaml-cpp itself refuses
  // escaped surrogates and code points above U+10FFFF).
  std::string utf8_of(const YAML::Node& y, std::string s) const {
    for (size_t from = 0;;) {
      const size_t bad = io::find_invalid_utf8(std::string_view(s).substr(from));
      if (bad == std::string::npos) return s;
      const size_t at = from + bad;
      const auto c = static_cast<unsigned char>(s[at]);
      if (c != 0x85 && c != 0xA0)
        throw Error("a value is not valid UTF-8 once its escapes are decoded (byte " + std::to_string(at + 1) + ")")
            .at(loc_of(y.Mark(), file).str())
            .hint("escapes must name Unicode characters: no surrogates (\\uD800-\\uDFFF), nothing above \\U0010FFFF");
      s.replace(at, 1, c == 0x85 ? "\xC2\x85" : "\xC2\xA0");
      from = at + 2;
    }
  }

  Node convert(const YAML::Node& y) {
    Node n;
    n.loc = loc_of(y.Mark(), file);
    switch (y.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        n.kind = Node::Kind::kNull;
        count(y, 0);
        return n;
      case YAML::NodeType::Scalar:
        n.kind = Node::Kind::kScalar;
        n.scalar = utf8_of(y, y.Scalar());
        count(y, n.scalar.size());
        return n;
      case YAML::NodeType::Sequence:
      case YAML::NodeType::Map:
        break;
    }
    count(y, 0);
    for (const auto& o : open)
      if (o.is(y))
        throw limit_error(y, "recursive YAML alias: this value contains itself (an alias *name inside &name's value)",
                          "an alias may only refer to a value defined before it, not to one that encloses it");
    if (static_cast<int>(open.size()) >= kMaxRecipeDepth)
      throw limit_error(y, "the recipe is nested deeper than " + std::to_string(kMaxRecipeDepth) + " levels",
                        "recipes are flat mappings with a few sections; flatten the value");
    open.push_back(y);
    if (y.IsSequence()) {
      n.kind = Node::Kind::kSequence;
      for (const auto& item : y) n.items.push_back(convert(item));
    } else {
      n.kind = Node::Kind::kMap;
      std::unordered_set<std::string> seen;
      for (auto it = y.begin(); it != y.end(); ++it) {
        if (!it->first.IsScalar())
          throw Error("mapping keys must be plain names").at(loc_of(it->first.Mark(), file).str());
        const std::string key = utf8_of(it->first, it->first.Scalar());
        count(it->first, key.size(), 0);  // a key is no value of its own, but its bytes count
        if (!seen.insert(key).second) {
          throw Error("key '" + clip_for_message(key) + "' appears twice in the same mapping")
              .at(loc_of(it->first.Mark(), file).str());
        }
        Node child = convert(it->second);
        if (child.kind == Node::Kind::kNull) child.loc = loc_of(it->first.Mark(), file);
        n.map.emplace_back(key, std::move(child));
      }
    }
    open.pop_back();
    return n;
  }
};

Node convert(const YAML::Node& y, const std::string& file, Budget& budget) {
  return Converter{file, budget, {}}.convert(y);
}

// Counts documents through yaml-cpp's event interface (see parse_yaml).
struct DocumentCounter : YAML::EventHandler {
  int documents = 0;
  YAML::Mark second_start, last_start;  // second_start: the second document's first node
  void OnDocumentStart(const YAML::Mark& mark) override {
    ++documents;
    last_start = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { node(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { node(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string&) override { node(m); }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(m);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(m);
  }
  void OnMapEnd() override {}

 private:
  int seen_ = 0;  // documents whose first node was seen
  void node(const YAML::Mark& m) {
    if (seen_ == documents) return;
    seen_ = documents;
    if (documents == 2) second_start = m;
  }
};

Node parse_yaml(const std::string& text, const std::string& file, Budget& budget) {
  if (const size_t nul = text.find('\0'); nul != std::string::npos) {
    const int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(nul), '\n'));
    throw Error("a NUL byte: this is not a text file")
        .at(file + ":" + std::to_string(line))
        .hint("a recipe is YAML text");
  }
  // Recipes are UTF-8 (YAML 1.2); the values go on into JSON, which refuses anything else.
  if (const size_t bad = io::find_invalid_utf8(text); bad != std::string::npos) {
    const auto [line, col] = io::line_column(text, bad);
    throw Error("invalid UTF-8")
        .at(file + ":" + std::to_string(line) + ":" + std::to_string(col))
        .hint("save the recipe as UTF-8");
  }
  // yaml-cpp 0.7 (Debian 12) loops forever, allocating, on a document whose first token is ','
  // (jbeder/yaml-cpp#1040, fixed after 0.8): refuse that before the parser sees it.
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      ++i;
    } else if (c == '#' || c == '%') {  // a comment or a directive: the rest of the line
      const size_t nl = text.find('\n', i);
      i = nl == std::string::npos ? text.size() : nl + 1;
    } else if (text.compare(i, 3, "---") == 0) {  // document start
      i += 3;
    } else {
      if (c == ',') {
        const auto [line, col] = io::line_column(text, i);
        throw Error("YAML syntax error: a document cannot start with ','")
            .at(file + ":" + std::to_string(line) + ":" + std::to_string(col));
      }
      break;
    }
  }
  YAML::Node doc;
  try {
    // yaml-cpp 0.7 also loops forever when a ',' follows a complete node or node properties at
    // document level ("!,", "&a ,", "[1] ,", a second document "---\n,"): the parser never
    // consumes the token and LoadAll keeps appending empty documents. A first pass through the
    // event parser stops at the second document, which a recipe may not have anyway, before
    // LoadAll ever runs. It does not expand aliases, so it costs a fraction of the real parse.
    {
      std::istringstream in(text);
      YAML::Parser parser(in);
      DocumentCounter counter;
      int last_pos = -1;
      while (parser.HandleNextDocument(counter)) {
        const YAML::Mark m = counter.last_start;
        const size_t pos = m.pos >= 0 ? static_cast<size_t>(m.pos) : text.size();
        if (counter.documents > 1 && pos < text.size() && text[pos] == ',')
          throw Error("YAML syntax error: ',' outside a [ ] or { } collection")
              .at(loc_of(m, file).str())
              .hint("quote a value that starts with ',', or remove the ','");
        if (counter.documents > 1 && m.pos == last_pos)  // the same token again: no progress
          throw Error("YAML syntax error: the parser cannot continue here").at(loc_of(m, file).str());
        last_pos = m.pos;
        if (counter.documents > 64) break;  // reported below; no need to read them all
      }
      if (counter.documents > 1)
        throw Error("a recipe is one YAML document, this text has " +
                    (counter.documents > 64 ? std::string("more than 64") : std::to_string(counter.documents)))
            .at(loc_of(counter.second_start, file).str())
            .hint("remove the '---' separators (use extends: to combine recipes)");
    }
    std::vector<YAML::Node> docs = YAML::LoadAll(text);
    if (docs.size() > 1) {
      throw Error("a recipe is one YAML document, this text has " + std::to_string(docs.size()))
          .at(loc_of(docs[1].Mark(), file).str())
          .hint("remove the '---' separators (use extends: to combine recipes)");
    }
    if (!docs.empty()) doc = docs[0];
  } catch (const YAML::DeepRecursion& e) {
    throw Error("the recipe is nested deeper than " + std::to_string(kMaxRecipeDepth) + " levels")
        .at(loc_of(e.mark, file).str())
        .hint("recipes are flat mappings with a few sections; flatten the value");
  } catch (const YAML::ParserException& e) {
    throw Error("YAML syntax error: " + e.msg).at(loc_of(e.mark, file).str());
  } catch (const YAML::Exception& e) {
    throw Error("cannot read the YAML: " + e.msg).at(loc_of(e.mark, file).str());
  }
  try {
    return convert(doc, file, budget);
  } catch (const YAML::Exception& e) {
    throw Error("cannot read the YAML: " + e.msg).at(loc_of(e.mark, file).str());
  }
}

// Child values override base values; maps merge key by key.
void merge_into(Node& base, const Node& child) {
  if (base.kind != Node::Kind::kMap || child.kind != Node::Kind::kMap) {
    base = child;
    return;
  }
  std::unordered_map<std::string, size_t> index;  // large mappings: no quadratic search
  for (size_t i = 0; i < base.map.size(); ++i) index.emplace(base.map[i].first, i);
  for (const auto& [k, v] : child.map) {
    const auto it = index.find(k);
    if (it == index.end()) {
      index.emplace(k, base.map.size());
      base.map.emplace_back(k, v);
    } else {
      merge_into(base.map[it->second].second, v);
    }
  }
}

std::string size_text(uint64_t bytes) {
  if (bytes >= (1u << 20)) return std::to_string(bytes >> 20) + " MiB";
  if (bytes >= (1u << 10)) return std::to_string(bytes >> 10) + " KiB";
  return std::to_string(bytes) + " bytes";
}

// Why `st` is no recipe file, or "" for a regular file.
std::string not_regular_text(const struct stat& st) {
  if (S_ISREG(st.st_mode)) return "";
  if (S_ISDIR(st.st_mode)) return "is a directory, not a recipe file";
  if (S_ISFIFO(st.st_mode)) return "is a FIFO (named pipe), not a regular file";
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) return "is a device, not a regular file";
  if (S_ISSOCK(st.st_mode)) return "is a socket, not a regular file";
  return "is not a regular file";
}

// Reads a recipe file: a regular file of at most kMaxRecipeBytes. Errors name `path` (and
// are placed at `where` when given: the `extends:` entry that named it).
std::string read_recipe_file(const std::string& path, const std::string& where) {
  auto fail = [&](const std::string& what, const std::string& hint) {
    // The recipe itself: "PATH: is a directory, ..."; a base: "r.yaml:1:10: extends: base recipe 'PATH' is ...".
    const std::string shown = clip_for_message(path, 512);
    Error e = where.empty() ? Error(what).at(shown) : Error("extends: base recipe '" + shown + "' " + what).at(where);
    if (!hint.empty()) e.hint(hint);
    return e;
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      throw where.empty() ? fail("recipe file not found", "check the path")
                          : fail("not found", "check the path; it is relative to the recipe that names it");
    }
    throw fail(std::string("cannot be read: ") + std::strerror(err), "");
  }
  const char* recipe_hint = "a recipe is a YAML file; name the file, e.g. recipes/tiny/base.yaml";
  if (const std::string why = not_regular_text(st); !why.empty()) throw fail(why, recipe_hint);
  auto too_large = [&](uint64_t size) {
    return fail("is too large for a recipe (" + std::to_string(size) + " bytes; the limit is " +
                    size_text(kMaxRecipeBytes) + ")",
                "a recipe is a small YAML file; keep data in data.train / data.eval files");
  };
  if (static_cast<uint64_t>(st.st_size) > kMaxRecipeBytes) throw too_large(static_cast<uint64_t>(st.st_size));
  // O_NONBLOCK: a file swapped for a FIFO since the stat() must not block the open.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw fail(std::string("cannot be read: ") + std::strerror(errno), "");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::fstat(fd, &st) != 0) throw fail(std::string("cannot be read: ") + std::strerror(errno), "");
  if (const std::string why = not_regular_text(st); !why.empty()) throw fail(why, recipe_hint);
  std::string text;
  char buf[65536];
  for (;;) {  // at most the limit (+1 to notice more): files like /proc's report size 0
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw fail(std::string("cannot be read: ") + std::strerror(errno), "");
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxRecipeBytes) throw too_large(text.size());
  }
  return text;
}

Node load_file(const std::string& path, const std::string& where, std::vector<std::string>& chain, Budget& budget) {
  std::error_code ec;
  std::string canonical = fs::weakly_canonical(path, ec).string();
  if (ec) canonical = fs::path(path).lexically_normal().string();
  if (std::find(chain.begin(), chain.end(), canonical) != chain.end()) {
    throw Error("recipe extends itself (cycle: " + canonical + ")").at(where.empty() ? path : where);
  }
  if (static_cast<int>(chain.size()) >= kMaxExtendsDepth)
    throw Error("extends: chain longer than " + std::to_string(kMaxExtendsDepth) + " recipes")
        .at(where.empty() ? path : where)
        .hint("a recipe extends one or two bases; flatten the chain");
  if (++budget.files > kMaxRecipeFiles)
    throw Error("extends: more than " + std::to_string(kMaxRecipeFiles) + " recipe files read for one recipe")
        .at(where.empty() ? path : where)
        .hint("a recipe extends one or two bases; do not list the same bases many times");
  Node root = parse_yaml(read_recipe_file(path, where), path, budget);
  if (root.kind == Node::Kind::kNull) root.kind = Node::Kind::kMap;
  if (root.kind != Node::Kind::kMap) throw Error("a recipe must be a mapping of keys to values").at(root.loc.str());
  const Node* ext = root.find("extends");
  if (ext == nullptr) return root;
  std::vector<const Node*> bases;
  const char* extends_hint = "write extends: base.yaml or extends: [a.yaml, b.yaml] (paths relative to this recipe)";
  if (ext->kind == Node::Kind::kScalar) {
    bases.push_back(ext);
  } else if (ext->kind == Node::Kind::kSequence) {
    for (const auto& b : ext->items) bases.push_back(&b);
  } else {
    throw Error("extends: must be a file name or a list of them").at(ext->loc.str()).hint(extends_hint);
  }
  for (const Node* b : bases)
    if (b->kind != Node::Kind::kScalar || b->scalar.empty())
      throw Error("extends: each entry must be a recipe file name").at(b->loc.str()).hint(extends_hint);
  chain.push_back(canonical);
  Node merged;
  merged.kind = Node::Kind::kMap;
  merged.loc = root.loc;
  for (const Node* b : bases) {
    const fs::path base_path = fs::path(path).parent_path() / b->scalar;
    merge_into(merged, load_file(base_path.string(), b->loc.str(), chain, budget));
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
  // Not echoed: the message itself must stay valid UTF-8 (Python decodes it).
  if (const size_t bad = io::find_invalid_utf8(spec); bad != std::string::npos)
    throw Error("a command line override is not valid UTF-8 (byte " + std::to_string(bad + 1) + ")")
        .at("command line")
        .hint("write overrides as key.sub=value in UTF-8");
  const auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw Error("override '" + spec + "' is not of the form key.sub=value").at("command line");
  }
  const std::string key = spec.substr(0, eq);
  const Location where{"command line override '" + spec + "'", 0, 0};
  const auto parts = split_key(key);
  if (std::any_of(parts.begin(), parts.end(), [](const std::string& p) { return p.empty(); }))
    throw Error("'" + key + "' is not a key: a dotted name has no empty parts")
        .at(where.file)
        .hint("e.g. data.train=PATH");
  if (static_cast<int>(parts.size()) > kMaxRecipeDepth)
    throw Error("'" + key + "' is nested deeper than " + std::to_string(kMaxRecipeDepth) + " levels").at(where.file);
  Node value;
  Budget budget;
  try {
    value = parse_yaml(spec.substr(eq + 1), where.file, budget);
  } catch (Error& e) {
    throw Error("cannot parse the value: " + e.message()).at(where.file).hint(e.hint_text());
  }
  value.loc = where;
  std::function<void(Node&)> relocate = [&](Node& n) {
    n.loc = where;
    for (auto& i : n.items) relocate(i);
    for (auto& [k, v] : n.map) relocate(v);
  };
  relocate(value);
  Node* cur = &root;
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
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));  // 31536000
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

// Numbers are finite: YAML's .inf / .nan, strtod's inf / nan and overflowing literals (1e999)
// are refused for every key.
double parse_double(const std::string& key, const Node& n) {
  if (n.kind != Node::Kind::kScalar) throw value_error(key, n, "expected a number");
  std::string s = lower(n.scalar);
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.erase(0, 1);
  if (s == ".inf" || s == "inf" || s == "infinity" || s == ".nan" || s == "nan")
    throw value_error(key, n, "'" + clip_for_message(n.scalar) + "' is not a finite number");
  char* end = nullptr;
  const double v = std::strtod(n.scalar.c_str(), &end);
  if (n.scalar.empty() || end != n.scalar.c_str() + n.scalar.size()) {
    throw value_error(key, n, "expected a number, got '" + clip_for_message(n.scalar) + "'");
  }
  if (!std::isfinite(v)) throw value_error(key, n, "'" + clip_for_message(n.scalar) + "' is not a finite number");
  return v;
}

// A decimal integer that fits int64_t; `allowed` describes the key's range for the messages.
int64_t parse_int(const std::string& key, const Node& n, const std::string& allowed, const std::string& expected) {
  if (n.kind != Node::Kind::kScalar) throw value_error(key, n, expected).hint("allowed: " + allowed);
  const std::string& s = n.scalar;
  const size_t digits_from = !s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0;
  const bool all_digits = s.size() > digits_from && std::all_of(s.begin() + static_cast<long>(digits_from), s.end(),
                                                                [](char ch) { return ch >= '0' && ch <= '9'; });
  if (!all_digits)
    throw value_error(key, n, expected + ", got '" + clip_for_message(s) + "'").hint("allowed: " + allowed);
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno == ERANGE)
    throw value_error(key, n, "value " + clip_for_message(s) + " is out of range: it does not fit a 64-bit integer")
        .hint("allowed: " + allowed);
  return v;
}

void check_range(const std::string& key, const Node& n, double v, const Range& r) {
  const bool low = r.min_exclusive ? v <= r.min : v < r.min;
  const bool high = r.max_exclusive ? v >= r.max : v > r.max;
  const std::string text =
      n.kind == Node::Kind::kScalar ? clip_for_message(n.scalar) : fmt_number(v);  // as written: 1e-3, 10000000000
  if (low || high) throw value_error(key, n, "value " + text + " is out of range; allowed: " + range_text(r));
}

}  // namespace

Recipe Recipe::load(const std::string& path, const std::vector<std::string>& overrides) {
  Recipe r;
  r.source_ = path;
  std::vector<std::string> chain;
  Budget budget;
  r.root_ = load_file(path, "", chain, budget);
  for (const auto& o : overrides) apply_override(r.root_, o);
  return r;
}

Recipe Recipe::parse(const std::string& text, const std::string& name, const std::vector<std::string>& overrides) {
  Recipe r;
  r.source_ = name;
  if (text.size() > kMaxRecipeBytes)
    throw Error("the recipe text is too large (" + std::to_string(text.size()) + " bytes; the limit is " +
                size_text(kMaxRecipeBytes) + ")")
        .at(name)
        .hint("a recipe is a small YAML file; keep data in data.train / data.eval files");
  Budget budget;
  r.root_ = parse_yaml(text, name, budget);
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
      if (n.scalar.size() > 64) return nlohmann::json(n.scalar);       // no number or boolean is longer
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
  const int64_t v = parse_int(key, *n, allowed, "expected an integer");
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
  throw value_error(key, *n, "expected true or false, got '" + clip_for_message(n->scalar) + "'");
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
      if (std::max(c.size(), n->scalar.size()) - std::min(c.size(), n->scalar.size()) >= best_d) continue;
      const size_t d = edit_distance(n->scalar, c);
      if (d < best_d) {
        best_d = d;
        best = c;
      }
    }
    Error e = value_error(key, *n, "'" + clip_for_message(n->scalar) + "' is not one of: " + allowed);
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
  const std::string allowed = range_text(range).empty() ? "integers" : "integers in " + range_text(range);
  for (const auto& item : n->kind == Node::Kind::kScalar ? one : n->items) {
    const int64_t v = parse_int(key, item, allowed, "expected a list of integers");
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
  // An empty path is "not set", not the recipe's own directory (which `'' relative to the recipe`
  // would be): `output_dir: ''` must not run in the directory of the recipe.
  if (n->scalar.empty()) {
    if (must_exist) fail(value_error(key, *n, "is empty").hint("set " + key + " to a path"));
    return "";
  }
  fs::path p(n->scalar);
  if (p.is_relative() && n->loc.line > 0) p = fs::path(n->loc.file).parent_path() / p;  // relative to its recipe
  if (must_exist && !fs::exists(p)) {
    fail(value_error(key, *n, "'" + clip_for_message(p.string(), 512) + "' does not exist")
             .hint("paths are relative to the recipe file that sets them"));
  }
  return p.lexically_normal().string();
}

std::optional<Error> Recipe::first_unknown_key(const std::vector<std::string>& also_known,
                                               const std::vector<std::string>& also_allowed, bool only_typos) const {
  std::unordered_set<std::string> known(known_.begin(), known_.end());
  known.insert(also_known.begin(), also_known.end());
  std::unordered_set<std::string> sections;  // every proper prefix of a known key: "data", "judge", ...
  for (const auto& kk : known)
    for (size_t p = kk.find('.'); p != std::string::npos; p = kk.find('.', p + 1)) sections.insert(kk.substr(0, p));
  std::vector<std::string> allowed = allowed_prefixes_;
  allowed.insert(allowed.end(), also_allowed.begin(), also_allowed.end());
  // Suggestions: known keys and sections ("dta" → "data").
  std::vector<std::string> candidates(known.begin(), known.end());
  candidates.insert(candidates.end(), sections.begin(), sections.end());
  std::sort(candidates.begin(), candidates.end());  // deterministic ties
  std::optional<Error> found;
  std::function<void(const Node&, const std::string&)> walk = [&](const Node& n, const std::string& prefix) {
    for (const auto& [k, v] : n.map) {
      if (found) return;
      const std::string key = prefix.empty() ? k : prefix + "." + k;
      const std::string shown = clip_for_message(key);
      bool is_allowed = false;
      for (const auto& p : allowed) is_allowed |= key == p || key.rfind(p + ".", 0) == 0;
      if (is_allowed) continue;
      if (k.find('.') != std::string::npos || k.empty()) {  // would read as a known dotted key, and is never found
        found = Error("'" + clip_for_message(k) + "' is not a key name" +
                      std::string(k.empty() ? "" : " (it contains '.')"))
                    .at(v.loc.str())
                    .hint(k.empty() ? "remove the entry"
                                    : "nest the parts instead, e.g. data: {train: PATH} for data.train");
        return;
      }
      if (known.count(key) != 0) continue;
      if (sections.count(key) != 0 && v.kind == Node::Kind::kMap) {
        walk(v, key);
        continue;
      }
      std::string best;
      size_t best_d = std::max<size_t>(3, key.size() / 3 + 1);
      for (const auto& kk : candidates) {
        if (kk.size() > key.size() + best_d || key.size() > kk.size() + best_d) continue;  // cannot be closer
        const size_t d = edit_distance(key, kk);
        if (d < best_d) {
          best_d = d;
          best = kk;
        }
      }
      if (only_typos && best.empty()) continue;
      Error e(shown + ": unknown key");
      e.at(v.loc.str());
      e.hint(best.empty() ? "see docs/recipes.md for the keys" : "did you mean '" + best + "'?");
      found = e;
      return;
    }
  };
  walk(root_, "");
  return found;
}

void Recipe::finish() const {
  if (auto e = first_unknown_key({}, {}, false)) throw *e;
  if (!missing_files_.empty()) throw missing_files_.front();
}

void Recipe::check_likely_typos(const std::vector<std::string>& also_known,
                                const std::vector<std::string>& also_allowed) const {
  if (auto e = first_unknown_key(also_known, also_allowed, true)) throw *e;
}

}  // namespace selfrl::recipe
