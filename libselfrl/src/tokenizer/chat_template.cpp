// Chat template rendering: evaluates the Jinja tree of jinja_parser.cpp with Python/jinja2
// semantics for the values chat templates use (strings, ints, bools, None, lists, dicts,
// namespace()), and the variables transformers' apply_chat_template passes: messages,
// add_generation_prompt, bos/eos/pad/unk_token, tools=None, raise_exception, strftime_now.
#include "selfrl/tokenizer/chat_template.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>
#include <optional>
#include <unordered_map>

#include "selfrl/core/error.h"
#include "tokenizer/jinja_ast.h"

namespace selfrl::tokenizer {

using namespace jinja;

namespace jinja {

Value::~Value() {
  if (!list && !dict) return;
  // Flatten instead of recursing: every nested list/dict this Value is the last owner of is
  // emptied into `pending` before it is freed, so each destructor below sees empty containers.
  thread_local bool draining = false;
  if (draining) return;  // an outer ~Value is flattening the structure this one belongs to
  draining = true;
  std::vector<Value> pending;
  auto take = [&pending](Value& v) {
    if (v.list && v.list.use_count() == 1)
      for (auto& x : *v.list)
        if (x.list || x.dict) pending.push_back(std::move(x));
    if (v.dict && v.dict.use_count() == 1)
      for (auto& kv : *v.dict)
        if (kv.second.list || kv.second.dict) pending.push_back(std::move(kv.second));
  };
  take(*this);
  while (!pending.empty()) {
    Value v = std::move(pending.back());
    pending.pop_back();
    take(v);
  }
  draining = false;
}

}  // namespace jinja

namespace {

struct LoopSignal {
  enum { kNone, kBreak, kContinue } what = kNone;
};

// Work the value helpers below (repr, tojson, ==) did since the Renderer last charged it, and
// the most they may do before they stop: one step per value visited. Per thread, like a render.
thread_local int64_t tl_steps = 0;
thread_local int64_t tl_step_limit = kMaxWorkSteps;

[[noreturn]] void work_exhausted() {
  throw Error(detail::concat("rendering exceeded the work limit of ", kMaxWorkSteps,
                             " steps (expressions evaluated, plus values visited, list items and 64-byte blocks of "
                             "text built or scanned)"))
      .hint("the template does far more work than a chat template needs; check its loops");
}
void visit(int64_t steps = 1) {
  tl_steps += steps;
  if (tl_steps > tl_step_limit) work_exhausted();
}

[[noreturn]] void string_too_long(size_t bytes) {
  throw Error(detail::concat("a string value would be ", bytes, " bytes, more than the limit of ", kMaxStringBytes,
                             " bytes (64 MiB)"))
      .hint("the template builds an enormous string (e.g. {% set s = s + s %} in a loop)");
}
void check_string_size(size_t bytes) {
  if (bytes > kMaxStringBytes) string_too_long(bytes);
}
// a + b bytes, checked before anything is allocated.
void check_string_sum(size_t a, size_t b) {
  if (a > kMaxStringBytes || b > kMaxStringBytes - a) string_too_long(a > kMaxStringBytes ? a : a + b);
}
void check_list_size(size_t items) {
  if (items > kMaxListItems)
    throw Error(detail::concat("a list would have ", items, " items, more than the limit of ", kMaxListItems))
        .hint("the template builds an enormous list (range(), split(), list concatenation)");
}
[[noreturn]] void value_too_deep() {
  throw Error(
      detail::concat("a value nests lists, dicts or namespaces deeper than the limit of ", kMaxValueDepth, " levels"))
      .hint("a namespace that contains itself (ns.x = ns) cannot be printed or compared");
}
// Functions (bound methods, globals) stay out of lists, dicts and namespaces: no chat template
// needs that, and a function holding a container that holds a function... would form chains
// that ~Value cannot flatten.
void check_storable(const Value& v, const char* where) {
  if (v.kind == Value::kFunction)
    throw Error(std::string("a function cannot be stored in ") + where)
        .hint("call it: write x.items() rather than x.items");
}

void append_scalar(const Value& v, std::string* out);

// Python's repr of a string.
void quote_py_to(const std::string& s, std::string* out) {
  const char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  *out += q;
  for (char c : s) {
    if (c == q || c == '\\') *out += '\\';
    if (c == '\n') {
      *out += "\\n";
      continue;
    }
    *out += c;
  }
  *out += q;
}

// Python's repr() of `v`, appended to *out. strict: output past `cap` bytes or nesting past
// kMaxValueDepth is an Error (values being printed). Otherwise (error messages) the text is
// cut with "..." there and false is returned.
bool repr_to(const Value& v, std::string* out, size_t cap, bool strict, int depth) {
  if (strict) visit();
  if (depth > kMaxValueDepth) {
    if (strict) value_too_deep();
    *out += "...";
    return false;
  }
  switch (v.kind) {
    case Value::kString: {
      const std::string& s = v.s();
      if (out->size() + s.size() + 2 > cap) {
        if (strict) string_too_long(out->size() + s.size() + 2);
        if (out->size() < cap) quote_py_to(s.substr(0, cap - out->size()), out);
        *out += "...";
        return false;
      }
      quote_py_to(s, out);
      return true;
    }
    case Value::kList:
      *out += '[';
      for (size_t i = 0; i < v.list->size(); ++i) {
        if (i) *out += ", ";
        if (!repr_to((*v.list)[i], out, cap, strict, depth + 1)) return false;
      }
      *out += ']';
      break;
    case Value::kDict: {
      *out += v.is_namespace ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, x] : *v.dict) {
        if (!first) *out += ", ";
        first = false;
        quote_py_to(k, out);
        *out += ": ";
        if (!repr_to(x, out, cap, strict, depth + 1)) return false;
      }
      *out += v.is_namespace ? "}>" : "}";
      break;
    }
    case Value::kFunction:
      *out += "<function>";
      break;
    default:
      append_scalar(v, out);
  }
  if (out->size() > cap) {
    if (strict) string_too_long(out->size());
    *out += "...";
    return false;
  }
  return true;
}

// A value for an error message: repr, at most about 200 bytes.
std::string brief(const Value& v) {
  std::string out;
  repr_to(v, &out, 200, false, 0);
  return out;
}

void append_scalar(const Value& v, std::string* out) {
  switch (v.kind) {
    case Value::kUndefined:
      return;
    case Value::kNone:
      *out += "None";
      return;
    case Value::kBool:
      *out += v.b ? "True" : "False";
      return;
    case Value::kInt:
      *out += std::to_string(v.i);
      return;
    case Value::kFloat: {
      if (std::floor(v.f) == v.f && std::fabs(v.f) < 1e16) {
        *out += std::to_string(static_cast<int64_t>(v.f)) + ".0";
        return;
      }
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.17g", v.f);
      *out += buf;
      return;
    }
    case Value::kString:
      *out += v.s();
      return;
    default:
      repr_to(v, out, kMaxStringBytes, true, 0);
  }
}

// Python's str(); a list or dict is printed as its repr (at most kMaxStringBytes).
std::string str(const Value& v) {
  if (v.kind == Value::kString) return v.s();
  std::string out;
  append_scalar(v, &out);
  return out;
}

void json_string(const std::string& s, std::string* out) {
  *out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          *out += buf;
        } else {
          *out += static_cast<char>(c);  // ensure_ascii=False
        }
    }
  }
  *out += '"';
}

// transformers' tojson: json.dumps(x, ensure_ascii=False, indent=indent); Python's separators
// are ", " / ": " without indent and "," / ": " with it. The output is limited to
// kMaxStringBytes and the nesting to kMaxValueDepth.
void to_json(const Value& v, int64_t indent, int depth, std::string* out) {
  visit();
  if (depth > kMaxValueDepth) value_too_deep();
  const auto newline = [&](int d) {
    if (indent < 0) return;
    // indent * d spaces; checked first, since indent comes from the template.
    const uint64_t spaces = static_cast<uint64_t>(indent) * static_cast<uint64_t>(d);
    if (spaces > kMaxStringBytes) string_too_long(out->size() + spaces);
    check_string_sum(out->size(), spaces + 1);
    *out += '\n';
    out->append(static_cast<size_t>(spaces), ' ');
  };
  const char* item_sep = indent < 0 ? ", " : ",";
  switch (v.kind) {
    case Value::kUndefined:
    case Value::kNone:
      *out += "null";
      break;
    case Value::kBool:
      *out += v.b ? "true" : "false";
      break;
    case Value::kInt:
      *out += std::to_string(v.i);
      break;
    case Value::kFloat:
      append_scalar(v, out);
      break;
    case Value::kString:
      // Escaping at most doubles the bytes (or 6x for control characters).
      check_string_sum(out->size(), v.s().size() + 2);
      json_string(v.s(), out);
      break;
    case Value::kList:
      if (v.list->empty()) {
        *out += "[]";
        break;
      }
      *out += '[';
      for (size_t i = 0; i < v.list->size(); ++i) {
        if (i) *out += item_sep;
        newline(depth + 1);
        to_json((*v.list)[i], indent, depth + 1, out);
      }
      newline(depth);
      *out += ']';
      break;
    case Value::kDict: {
      if (v.is_namespace) throw Error("tojson: a namespace() is not JSON serializable");
      if (v.dict->empty()) {
        *out += "{}";
        break;
      }
      *out += '{';
      bool first = true;
      for (const auto& [k, x] : *v.dict) {
        if (!first) *out += item_sep;
        first = false;
        newline(depth + 1);
        json_string(k, out);
        *out += ": ";
        to_json(x, indent, depth + 1, out);
      }
      newline(depth);
      *out += '}';
      break;
    }
    case Value::kFunction:
      throw Error("tojson: a function is not JSON serializable");
  }
  check_string_size(out->size());
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Value::kUndefined:
    case Value::kNone:
      return false;
    case Value::kBool:
      return v.b;
    case Value::kInt:
      return v.i != 0;
    case Value::kFloat:
      return v.f != 0;
    case Value::kString:
      return !v.s().empty();
    case Value::kList:
      return !v.list->empty();
    case Value::kDict:
      return v.is_namespace || !v.dict->empty();
    case Value::kFunction:
      return true;
  }
  return false;
}

bool is_number(const Value& v) { return v.kind == Value::kInt || v.kind == Value::kFloat || v.kind == Value::kBool; }
double as_double(const Value& v) {
  return v.kind == Value::kFloat ? v.f : v.kind == Value::kBool ? v.b : static_cast<double>(v.i);
}
int64_t as_int(const Value& v) { return v.kind == Value::kBool ? v.b : v.i; }

// Python's ==.
bool equals(const Value& a, const Value& b, int depth) {
  if (depth > kMaxValueDepth) value_too_deep();
  visit();
  if (is_number(a) && is_number(b)) {
    if (a.kind != Value::kFloat && b.kind != Value::kFloat) return as_int(a) == as_int(b);
    return as_double(a) == as_double(b);
  }
  if (a.kind != b.kind) {
    return (a.kind == Value::kNone || a.kind == Value::kUndefined) &&
           (b.kind == Value::kNone || b.kind == Value::kUndefined) && a.kind == b.kind;
  }
  switch (a.kind) {
    case Value::kString:
      visit(static_cast<int64_t>(std::min(a.s().size(), b.s().size()) >> 6));
      return a.s() == b.s();
    case Value::kList:
      if (a.list == b.list) return true;
      if (a.list->size() != b.list->size()) return false;
      for (size_t i = 0; i < a.list->size(); ++i)
        if (!equals((*a.list)[i], (*b.list)[i], depth + 1)) return false;
      return true;
    case Value::kDict:
      // jinja2's Namespace has no __eq__: namespaces compare by identity.
      if (a.dict == b.dict || a.is_namespace || b.is_namespace) return a.dict == b.dict;
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [k, x] : *a.dict) {
        visit(static_cast<int64_t>(b.dict->size()));
        const Value* y = b.find(k);
        if (!y || !equals(x, *y, depth + 1)) return false;
      }
      return true;
    case Value::kFunction:
      return a.fn == b.fn;
    default:
      return true;  // none == none, undefined == undefined
  }
}

std::string strip_chars(const std::string& s, const std::string& chars, bool left, bool right) {
  const std::string set = chars.empty() ? std::string(" \t\n\r\f\v") : chars;
  size_t b = 0, e = s.size();
  if (left)
    while (b < e && set.find(s[b]) != std::string::npos) ++b;
  if (right)
    while (e > b && set.find(s[e - 1]) != std::string::npos) --e;
  return s.substr(b, e - b);
}

int64_t norm_index(int64_t i, size_t n) { return i < 0 ? i + static_cast<int64_t>(n) : i; }

// Work steps for building, copying or scanning a value of this size.
int64_t weight(const Value& v) {
  switch (v.kind) {
    case Value::kString:
      return static_cast<int64_t>(v.s().size() >> 6);
    case Value::kList:
      return static_cast<int64_t>(v.list->size());
    case Value::kDict:
      return static_cast<int64_t>(v.dict->size());
    default:
      return 0;
  }
}

}  // namespace

struct ChatTemplate::Impl {
  std::string name;
  Body body;
};

namespace {

class Renderer {
 public:
  Renderer(const std::string& name, const ChatTemplateOptions& opt) : name_(name), opt_(opt) {
    scopes_.emplace_back();
    tl_steps = 0;
    tl_step_limit = kMaxWorkSteps;
  }

  std::unordered_map<std::string, Value>& globals() { return scopes_.front(); }

  void exec(const Body& body, std::string* out, LoopSignal* sig) {
    for (const auto& s : body) {
      if (sig->what != LoopSignal::kNone) return;
      line_ = s->line;
      charge(1);
      try {
        exec_one(*s, out, sig);
      } catch (Error& e) {
        // Errors of the value helpers (limits, tojson) carry no place yet.
        if (e.where().empty()) e.at(detail::concat(name_, ": template line ", s->line));
        throw;
      }
      if (sig->what != LoopSignal::kNone) return;
    }
  }

 private:
  void exec_one(const Stmt& st, std::string* out, LoopSignal* sig) {
    const Stmt* s = &st;
    switch (s->kind) {
      case Stmt::kText:
        emit(s->text, out);
        break;
      case Stmt::kOutput: {
        const Value v = eval(*s->expr);
        if (v.kind == Value::kString)
          emit(v.s(), out);
        else
          emit(str(v), out);
        break;
      }
      case Stmt::kIf: {
        bool done = false;
        for (const auto& [cond, b] : s->branches) {
          if (truthy(eval(*cond))) {
            exec(b, out, sig);
            done = true;
            break;
          }
        }
        if (!done) exec(s->else_body, out, sig);
        break;
      }
      case Stmt::kFor:
        exec_for(*s, out);
        break;
      case Stmt::kSet: {
        Value v = eval(*s->expr);
        if (s->attr.empty()) {
          scopes_.back()[s->targets[0]] = std::move(v);
        } else {
          Value ns = lookup(s->targets[0]);
          if (!ns.is_namespace)
            fail(s->line,
                 "{% set " + s->targets[0] + "." + s->attr + " %}: '" + s->targets[0] + "' is not a namespace()");
          check_storable(v, "a namespace");
          charge(static_cast<int64_t>(ns.dict->size()));
          ns.set(s->attr, std::move(v));
        }
        break;
      }
      case Stmt::kBreak:
        if (loop_depth_ == 0) fail(s->line, "{% break %} outside a loop");
        sig->what = LoopSignal::kBreak;
        break;
      case Stmt::kContinue:
        if (loop_depth_ == 0) fail(s->line, "{% continue %} outside a loop");
        sig->what = LoopSignal::kContinue;
        break;
    }
  }

  [[noreturn]] void fail(int line, const std::string& msg, const std::string& hint = "") const {
    Error e(msg);
    e.at(detail::concat(name_, ": template line ", line));
    if (!hint.empty()) e.hint(hint);
    throw e;
  }

  // Counts work against kMaxWorkSteps, with what the value helpers did meanwhile.
  void charge(int64_t steps) {
    work_ += steps + tl_steps;
    tl_steps = 0;
    if (work_ > kMaxWorkSteps) {
      try {
        work_exhausted();
      } catch (Error& e) {
        throw e.at(detail::concat(name_, ": template line ", line_));
      }
    }
    tl_step_limit = kMaxWorkSteps - work_;
  }
  void charge_bytes(size_t bytes) { charge(static_cast<int64_t>(bytes >> 6)); }

  // Appends to the rendered output, which is limited to kMaxOutputBytes.
  void emit(const std::string& text, std::string* out) {
    if (text.size() > kMaxOutputBytes - std::min(out->size(), kMaxOutputBytes))
      fail(line_,
           detail::concat("the rendered output would be ", out->size() + text.size(), " bytes, more than the limit of ",
                          kMaxOutputBytes, " bytes (64 MiB)"),
           "the template writes far more text than a prompt can hold; check its loops");
    charge_bytes(text.size());
    *out += text;
  }

  void count_iteration() {
    if (++iterations_ > kMaxLoopIterations)
      fail(line_,
           detail::concat("{% for %} loops ran more than the limit of ", kMaxLoopIterations, " iterations in total"),
           "the template loops far more than a chat template needs (e.g. nested range() loops)");
  }

  Value lookup(const std::string& n) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto f = it->find(n);
      if (f != it->end()) return f->second;
    }
    return Value();
  }

  void exec_for(const Stmt& s, std::string* out) {
    Value seq = eval(*s.expr);
    List items;
    if (seq.kind == Value::kList) {
      charge(weight(seq));
      items = *seq.list;
    } else if (seq.kind == Value::kDict) {
      charge(weight(seq));
      for (const auto& kv : *seq.dict) items.push_back(Value::string(kv.first));
    } else if (seq.kind == Value::kString) {
      check_list_size(seq.s().size());
      charge(static_cast<int64_t>(seq.s().size()));
      for (char c : seq.s()) items.push_back(Value::string(std::string(1, c)));
    } else if (seq.kind == Value::kUndefined || seq.kind == Value::kNone) {
      items.clear();
    } else {
      fail(s.line, "{% for %}: " + brief(seq) + " is not iterable");
    }
    auto bind = [&](std::unordered_map<std::string, Value>& scope, const Value& item) {
      if (s.targets.size() == 1) {
        scope[s.targets[0]] = item;
        return;
      }
      if (item.kind != Value::kList || item.list->size() != s.targets.size())
        fail(s.line,
             "{% for %}: cannot unpack " + brief(item) + " into " + std::to_string(s.targets.size()) + " names");
      for (size_t k = 0; k < s.targets.size(); ++k) scope[s.targets[k]] = (*item.list)[k];
    };
    if (s.filter) {
      List kept;
      for (const auto& it : items) {
        line_ = s.line;
        count_iteration();
        scopes_.emplace_back();
        bind(scopes_.back(), it);
        const bool keep = truthy(eval(*s.filter));
        scopes_.pop_back();
        if (keep) kept.push_back(it);
      }
      items.swap(kept);
    }
    if (items.empty()) {
      LoopSignal sig;
      exec(s.else_body, out, &sig);
      return;
    }
    const int64_t n = static_cast<int64_t>(items.size());
    ++loop_depth_;
    for (int64_t k = 0; k < n; ++k) {
      line_ = s.line;
      count_iteration();
      scopes_.emplace_back();
      auto& scope = scopes_.back();
      bind(scope, items[k]);
      Value loop = Value::make_dict({{"index0", Value::integer(k)},
                                     {"index", Value::integer(k + 1)},
                                     {"revindex0", Value::integer(n - k - 1)},
                                     {"revindex", Value::integer(n - k)},
                                     {"first", Value::boolean(k == 0)},
                                     {"last", Value::boolean(k == n - 1)},
                                     {"length", Value::integer(n)},
                                     {"previtem", k > 0 ? items[k - 1] : Value()},
                                     {"nextitem", k + 1 < n ? items[k + 1] : Value()}});
      scope["loop"] = loop;
      LoopSignal sig;
      exec(s.body, out, &sig);
      scopes_.pop_back();
      if (sig.what == LoopSignal::kBreak) break;
    }
    --loop_depth_;
  }

  Value eval(const Expr& e) {
    charge(1);
    switch (e.kind) {
      case Expr::kLiteral:
        return e.literal;
      case Expr::kName:
        return lookup(e.name);
      case Expr::kAttr:
        return attribute(eval(*e.a), e.name, e.line);
      case Expr::kItem:
        return item(eval(*e.a), eval(*e.b), e.line);
      case Expr::kSlice:
        return slice(e);
      case Expr::kCall: {
        Value f = eval(*e.a);
        if (f.kind != Value::kFunction) fail(e.line, "calling " + describe(*e.a) + ", which is not a function");
        Args args;
        Kwargs kwargs;
        for (const auto& a : e.args) args.push_back(eval(*a));
        for (const auto& [k, a] : e.kwargs) kwargs.emplace_back(k, eval(*a));
        try {
          Value r = (*f.fn)(args, kwargs);
          charge(weight(r));  // what the function built (strings and lists of the methods, range())
          return r;
        } catch (Error& err) {
          if (err.where().empty()) err.at(detail::concat(name_, ": template line ", e.line));
          throw;
        }
      }
      case Expr::kFilter:
        return filter(e);
      case Expr::kTest:
        return Value::boolean(test(e) != e.negated);
      case Expr::kNot:
        return Value::boolean(!truthy(eval(*e.a)));
      case Expr::kNeg: {
        Value v = eval(*e.a);
        if (v.kind == Value::kInt) {
          if (v.i == std::numeric_limits<int64_t>::min()) fail(e.line, "integer overflow in unary '-'");
          return Value::integer(-v.i);
        }
        if (v.kind == Value::kFloat) return Value::number(-v.f);
        fail(e.line, "unary '-' needs a number, got " + brief(v));
      }
      case Expr::kBinary:
        return binary(e);
      case Expr::kCond:
        if (truthy(eval(*e.b))) return eval(*e.a);
        return e.c ? eval(*e.c) : Value();
      case Expr::kListLit: {
        List l;
        for (const auto& a : e.args) {
          l.push_back(eval(*a));
          check_storable(l.back(), "a list");
        }
        return Value::make_list(std::move(l));
      }
      case Expr::kDictLit: {
        Value d = Value::make_dict();
        for (const auto& [k, v] : e.items) {
          const std::string key = str(eval(*k));
          Value x = eval(*v);
          check_storable(x, "a dict");
          charge(static_cast<int64_t>(d.dict->size()));
          d.set(key, std::move(x));
        }
        return d;
      }
    }
    return Value();
  }

  std::string describe(const Expr& e) const {
    if (e.kind == Expr::kName) return "'" + e.name + "'";
    if (e.kind == Expr::kAttr) return "'." + e.name + "'";
    return "an expression";
  }

  bool eq(const Value& a, const Value& b) {
    const bool r = equals(a, b, 0);
    charge(0);
    return r;
  }

  Value binary(const Expr& e) {
    const std::string& op = e.name;
    if (op == "and") {
      Value l = eval(*e.a);
      return truthy(l) ? eval(*e.b) : l;
    }
    if (op == "or") {
      Value l = eval(*e.a);
      return truthy(l) ? l : eval(*e.b);
    }
    Value l = eval(*e.a), r = eval(*e.b);
    if (op == "~") {
      std::string a = str(l);
      const std::string b = str(r);
      check_string_sum(a.size(), b.size());
      a += b;
      charge_bytes(a.size());
      return Value::string(std::move(a));
    }
    if (op == "==") return Value::boolean(eq(l, r));
    if (op == "!=") return Value::boolean(!eq(l, r));
    if (op == "in" || op == "not in") {
      bool found = false;
      if (r.kind == Value::kString) {
        if (l.kind != Value::kString) fail(e.line, "'in <string>' requires a string on the left, got " + brief(l));
        charge_bytes(r.s().size());
        found = r.s().find(l.s()) != std::string::npos;
      } else if (r.kind == Value::kList) {
        for (const auto& x : *r.list) {
          if (eq(x, l)) {
            found = true;
            break;
          }
        }
      } else if (r.kind == Value::kDict) {
        charge(weight(r));
        found = l.kind == Value::kString && r.find(l.s()) != nullptr;
      } else if (r.kind != Value::kUndefined && r.kind != Value::kNone) {
        fail(e.line, "'in' needs a string, list or mapping on the right, got " + brief(r));
      } else {
        fail(e.line, "'in' on an undefined or None value");
      }
      return Value::boolean(found == (op == "in"));
    }
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      int c;
      if (is_number(l) && is_number(r)) {
        if (l.kind != Value::kFloat && r.kind != Value::kFloat)
          c = as_int(l) < as_int(r) ? -1 : as_int(l) > as_int(r) ? 1 : 0;
        else
          c = as_double(l) < as_double(r) ? -1 : as_double(l) > as_double(r) ? 1 : 0;
      } else if (l.kind == Value::kString && r.kind == Value::kString) {
        charge_bytes(std::min(l.s().size(), r.s().size()));
        c = l.s().compare(r.s());
      } else {
        fail(e.line, "cannot compare " + brief(l) + " " + op + " " + brief(r));
      }
      return Value::boolean(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0);
    }
    if (op == "+") {
      if (l.kind == Value::kString && r.kind == Value::kString) {
        check_string_sum(l.s().size(), r.s().size());
        charge_bytes(l.s().size() + r.s().size());
        return Value::string(l.s() + r.s());
      }
      if (l.kind == Value::kList && r.kind == Value::kList) {
        check_list_size(l.list->size() + r.list->size());
        charge(static_cast<int64_t>(l.list->size() + r.list->size()));
        List x = *l.list;
        x.insert(x.end(), r.list->begin(), r.list->end());
        return Value::make_list(std::move(x));
      }
    }
    if (op == "*" && l.kind == Value::kString && r.kind == Value::kInt) {
      const size_t unit = l.s().size();
      if (r.i <= 0 || unit == 0) return Value::string("");
      if (static_cast<uint64_t>(r.i) > kMaxStringBytes / unit)
        string_too_long(static_cast<uint64_t>(r.i) > kMaxStringBytes ? static_cast<size_t>(r.i) : unit * r.i);
      std::string s;
      s.reserve(unit * static_cast<size_t>(r.i));
      for (int64_t k = 0; k < r.i; ++k) s += l.s();
      charge_bytes(s.size());
      return Value::string(std::move(s));
    }
    if (!is_number(l) || !is_number(r))
      fail(e.line, "unsupported operand types for " + op + ": " + brief(l) + " and " + brief(r),
           "use ~ to concatenate values that are not both strings");
    const bool ints = l.kind != Value::kFloat && r.kind != Value::kFloat;
    const double a = as_double(l), b = as_double(r);
    if (op == "/") {
      if (b == 0) fail(e.line, "division by zero");
      return Value::number(a / b);
    }
    if (ints) {
      const int64_t x = as_int(l), y = as_int(r);
      int64_t z = 0;
      auto overflow = [&]() -> Value {
        fail(e.line, "integer overflow in " + std::to_string(x) + " " + op + " " + std::to_string(y),
             "integers in chat templates are 64-bit");
      };
      if (op == "+") return __builtin_add_overflow(x, y, &z) ? overflow() : Value::integer(z);
      if (op == "-") return __builtin_sub_overflow(x, y, &z) ? overflow() : Value::integer(z);
      if (op == "*") return __builtin_mul_overflow(x, y, &z) ? overflow() : Value::integer(z);
      if (y == 0) fail(e.line, "integer division or modulo by zero");
      if (x == std::numeric_limits<int64_t>::min() && y == -1) {
        if (op == "%") return Value::integer(0);
        overflow();
      }
      const int64_t q = x / y - ((x % y != 0) && ((x < 0) != (y < 0)));  // Python floors
      if (op == "//") return Value::integer(q);
      if (op == "%") return Value::integer(x - q * y);
    } else {
      if (op == "+") return Value::number(a + b);
      if (op == "-") return Value::number(a - b);
      if (op == "*") return Value::number(a * b);
      if (b == 0 && (op == "//" || op == "%")) fail(e.line, "float division or modulo by zero");
      if (op == "//") return Value::number(std::floor(a / b));
      if (op == "%") return Value::number(a - std::floor(a / b) * b);
    }
    fail(e.line, "unsupported operator " + op);
  }

  Value item(const Value& obj, const Value& key, int line) {
    if (obj.kind == Value::kDict) {
      if (key.kind != Value::kString) return Value();
      charge(weight(obj));
      const Value* v = obj.find(key.s());
      return v ? *v : Value();
    }
    if ((obj.kind == Value::kList || obj.kind == Value::kString) && key.kind == Value::kInt) {
      const size_t n = obj.kind == Value::kList ? obj.list->size() : obj.s().size();
      const int64_t i = norm_index(key.i, n);
      if (i < 0 || i >= static_cast<int64_t>(n)) return Value();
      return obj.kind == Value::kList ? (*obj.list)[i] : Value::string(std::string(1, obj.s()[i]));
    }
    if (key.kind == Value::kString) return attribute(obj, key.s(), line);
    if (obj.kind == Value::kUndefined) fail(line, "subscript of an undefined value");
    return Value();
  }

  Value slice(const Expr& e) {
    Value obj = eval(*e.a);
    auto opt = [&](const ExprPtr& p) -> std::optional<int64_t> {
      if (!p) return std::nullopt;
      Value v = eval(*p);
      if (v.kind == Value::kNone) return std::nullopt;
      if (v.kind != Value::kInt) fail(e.line, "slice indices must be integers, got " + brief(v));
      return v.i;
    };
    const auto start = opt(e.b), stop = opt(e.c), step_o = opt(e.args[0]);
    const int64_t step = step_o.value_or(1);
    if (step == 0) fail(e.line, "slice step cannot be zero");
    if (obj.kind != Value::kList && obj.kind != Value::kString) fail(e.line, "cannot slice " + brief(obj));
    const int64_t n = obj.kind == Value::kList ? obj.list->size() : obj.s().size();
    // Python's slice.indices()
    auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
      if (!v) return dflt;
      int64_t x = *v < 0 ? *v + n : *v;
      if (step > 0) return std::clamp<int64_t>(x, 0, n);
      return std::clamp<int64_t>(x, -1, n - 1);
    };
    const int64_t b = clamp(start, step > 0 ? 0 : n - 1), en = clamp(stop, step > 0 ? n : -1);
    // The number of items, computed without overflow (step may be any 64-bit integer).
    const uint64_t span =
        step > 0 ? (en > b ? static_cast<uint64_t>(en - b) : 0) : (b > en ? static_cast<uint64_t>(b - en) : 0);
    const uint64_t abs_step = step > 0 ? static_cast<uint64_t>(step) : 0 - static_cast<uint64_t>(step);
    const uint64_t count = span == 0 ? 0 : (span - 1) / abs_step + 1;
    charge(static_cast<int64_t>(obj.kind == Value::kList ? count : count >> 6));
    List l;
    std::string s;
    for (uint64_t k = 0; k < count; ++k) {
      const int64_t i = step > 0 ? b + static_cast<int64_t>(k * abs_step) : b - static_cast<int64_t>(k * abs_step);
      if (obj.kind == Value::kList)
        l.push_back((*obj.list)[i]);
      else
        s += obj.s()[i];
    }
    return obj.kind == Value::kList ? Value::make_list(std::move(l)) : Value::string(s);
  }

  static std::string arg_str(const Args& a, size_t i, const std::string& dflt) {
    if (i >= a.size() || a[i].kind == Value::kNone) return dflt;
    return str(a[i]);
  }

  Value attribute(const Value& obj, const std::string& n, int line);
  Value filter(const Expr& e);
  Value filter_impl(const Expr& e);
  bool test(const Expr& e);

  std::string name_;
  const ChatTemplateOptions& opt_;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
  int line_ = 0;
  int loop_depth_ = 0;
  int64_t iterations_ = 0;
  int64_t work_ = 0;
};

#include "tokenizer/jinja_builtins.inc"

}  // namespace

ChatTemplate::ChatTemplate(const std::string& source, const std::string& name) : impl_(std::make_unique<Impl>()) {
  impl_->name = name;
  impl_->body = jinja::parse(source, name);
}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& opt) const {
  Renderer r(impl_->name, opt);
  auto& g = r.globals();
  List msgs;
  for (const auto& m : messages)
    msgs.push_back(Value::make_dict({{"role", Value::string(m.role)}, {"content", Value::string(m.content)}}));
  g["messages"] = Value::make_list(std::move(msgs));
  g["add_generation_prompt"] = Value::boolean(opt.add_generation_prompt);
  g["bos_token"] = Value::string(opt.bos_token);
  g["eos_token"] = Value::string(opt.eos_token);
  g["pad_token"] = Value::string(opt.pad_token);
  g["unk_token"] = Value::string(opt.unk_token);
  g["tools"] = Value::none();
  g["documents"] = Value::none();
  for (const auto& [k, v] : opt.string_vars) g[k] = Value::string(v);
  for (const auto& [k, v] : opt.bool_vars) g[k] = Value::boolean(v);
  auto made = std::make_shared<std::vector<std::weak_ptr<Dict>>>();
  install_globals(g, opt, made);
  struct BreakCycles {  // on return and on an Error alike
    std::shared_ptr<std::vector<std::weak_ptr<Dict>>> made;
    ~BreakCycles() {
      for (auto& w : *made)
        if (auto d = w.lock()) Dict().swap(*d);  // frees what it held, itself included
    }
  } break_cycles{made};
  std::string out;
  LoopSignal sig;
  r.exec(impl_->body, &out, &sig);
  return out;
}

std::string builtin_chat_template(const std::string& name) {
  if (name == "chatml")
    return "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + "
           "'<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
           "{%- endif %}";
  if (name == "llama3")
    return "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message.role + "
           "'<|end_header_id|>\\n\\n' + message.content | trim + '<|eot_id|>' }}{%- endfor %}"
           "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";
  if (name == "plain")
    return "{%- for message in messages %}{%- if message.role == 'system' %}{{- message.content + '\\n\\n' }}"
           "{%- elif message.role == 'user' %}{{- 'User: ' + message.content + '\\n' }}"
           "{%- else %}{{- 'Assistant: ' + message.content + '\\n' }}{%- endif %}{%- endfor %}"
           "{%- if add_generation_prompt %}{{- 'Assistant:' }}{%- endif %}";
  throw Error("unknown built-in chat format \"" + name + "\"").hint("use chatml, llama3 or plain");
}

}  // namespace selfrl::tokenizer
