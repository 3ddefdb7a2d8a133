// The Jinja subset used by chat templates: values, the expression/statement tree, and the
// parser entry point. Evaluation lives in chat_template.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace selfrl::tokenizer::jinja {

// Limits on what a template may make the parser and the renderer do (a tokenizer_config.json is
// as untrusted as any input file). Real chat templates stay far below every one of them.
// Expressions and {% if %}/{% for %} blocks nest at most this deep (parser).
inline constexpr int kMaxNesting = 200;
// Lists, dicts and namespaces inside each other: printing, comparing or tojson of a deeper value
// (e.g. a namespace that contains itself) is an Error.
inline constexpr int kMaxValueDepth = 200;
// Iterations of all {% for %} loops of one render together.
inline constexpr int64_t kMaxLoopIterations = 1'000'000;
// Bytes of the rendered output, and of any one string value.
inline constexpr size_t kMaxOutputBytes = size_t{64} << 20;
inline constexpr size_t kMaxStringBytes = size_t{64} << 20;
// Items of any one list (range(), split(), string iteration, list concatenation).
inline constexpr size_t kMaxListItems = 1'000'000;
// Work of one render, in steps: one per expression evaluated or statement run, plus one per
// value visited (printing, tojson, ==), list item and 64 bytes of string data built, copied or
// scanned. Bounds the time of a template whose loops stay under kMaxLoopIterations but do
// expensive things in every one (a step is 50-200 ns: the limit is a few seconds of work; a
// 1,000-message conversation through the Qwen3 template takes about 90,000).
inline constexpr int64_t kMaxWorkSteps = 20'000'000;

struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion-ordered, like Python's dict
using Args = std::vector<Value>;
using Kwargs = std::vector<std::pair<std::string, Value>>;
using Function = std::function<Value(const Args&, const Kwargs&)>;

struct Value {
  enum Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kFunction } kind = kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::shared_ptr<const std::string> str;  // kString; shared, so copying a Value never copies text
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;  // shared: a namespace() is mutated through every reference
  std::shared_ptr<Function> fn;
  bool is_namespace = false;

  Value() = default;
  Value(const Value&) = default;
  Value(Value&&) noexcept = default;
  Value& operator=(const Value&) = default;
  Value& operator=(Value&&) noexcept = default;
  // Frees nested lists and dicts iteratively (chat_template.cpp): a list nested a million levels
  // deep, built by a loop, would otherwise overflow the stack in recursive destructors.
  ~Value();

  // The text of a kString (empty for other kinds).
  const std::string& s() const {
    static const std::string empty;
    return str ? *str : empty;
  }

  static Value none() {
    Value v;
    v.kind = kNone;
    return v;
  }
  static Value boolean(bool x) {
    Value v;
    v.kind = kBool;
    v.b = x;
    return v;
  }
  static Value integer(int64_t x) {
    Value v;
    v.kind = kInt;
    v.i = x;
    return v;
  }
  static Value number(double x) {
    Value v;
    v.kind = kFloat;
    v.f = x;
    return v;
  }
  static Value string(std::string x) {
    Value v;
    v.kind = kString;
    v.str = std::make_shared<const std::string>(std::move(x));
    return v;
  }
  static Value make_list(List l = {}) {
    Value v;
    v.kind = kList;
    v.list = std::make_shared<List>(std::move(l));
    return v;
  }
  static Value make_dict(Dict d = {}) {
    Value v;
    v.kind = kDict;
    v.dict = std::make_shared<Dict>(std::move(d));
    return v;
  }
  static Value function(Function f) {
    Value v;
    v.kind = kFunction;
    v.fn = std::make_shared<Function>(std::move(f));
    return v;
  }

  const Value* find(const std::string& key) const {
    if (kind != kDict) return nullptr;
    for (const auto& [k, v] : *dict)
      if (k == key) return &v;
    return nullptr;
  }
  void set(const std::string& key, Value v) {
    for (auto& [k, old] : *dict)
      if (k == key) {
        old = std::move(v);
        return;
      }
    dict->emplace_back(key, std::move(v));
  }
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum Kind {
    kLiteral,
    kName,
    kAttr,
    kItem,
    kSlice,
    kCall,
    kFilter,
    kTest,
    kNot,
    kNeg,
    kBinary,
    kCond,
    kListLit,
    kDictLit
  } kind;
  int line = 0;
  int depth = 1;  // levels of the tree below and including this node (<= kMaxNesting)
  Value literal;
  std::string name;  // kName, kAttr, kFilter, kTest; operator for kBinary
  ExprPtr a, b, c;   // operands (kSlice: a=object, b=start, c=stop, step in args[0])
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;                            // kTest: "is not"
  std::vector<std::pair<ExprPtr, ExprPtr>> items;  // kDictLit
  Expr(Kind k, int l) : kind(k), line(l) {}
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  enum Kind { kText, kOutput, kIf, kFor, kSet, kBreak, kContinue } kind;
  int line = 0;
  std::string text;                                // kText
  ExprPtr expr;                                    // kOutput, kSet value, kFor iterable
  std::vector<std::pair<ExprPtr, Body>> branches;  // kIf: (condition, body)...
  Body body, else_body;                            // kFor, kIf else
  std::vector<std::string> targets;                // kFor loop variables, kSet name
  std::string attr;                                // kSet "ns.attr": attribute name
  ExprPtr filter;                                  // kFor "if" clause
  Stmt(Kind k, int l) : kind(k), line(l) {}
};

// Parses template source (trim_blocks and lstrip_blocks on, as transformers renders chat
// templates). Throws selfrl::Error "<name>: template line N: ..." on syntax errors and
// unsupported tags.
Body parse(const std::string& source, const std::string& name);

}  // namespace selfrl::tokenizer::jinja
