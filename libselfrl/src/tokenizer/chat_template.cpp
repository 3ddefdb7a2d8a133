// Chat template rendering: evaluates the Jinja tree of jinja_parser.cpp with Python/jinja2
// semantics for the values chat templates use (strings, ints, bools, None, lists, dicts,
// namespace()), and the variables transformers' apply_chat_template passes: messages,
// add_generation_prompt, bos/eos/pad/unk_token, tools=None, raise_exception, strftime_now.
#include "selfrl/tokenizer/chat_template.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <optional>
#include <unordered_map>

#include "selfrl/core/error.h"
#include "tokenizer/jinja_ast.h"

namespace selfrl::tokenizer {

using namespace jinja;

namespace {

struct LoopSignal {
  enum { kNone, kBreak, kContinue } what = kNone;
};

std::string repr(const Value& v);

// Python's str().
std::string str(const Value& v) {
  switch (v.kind) {
    case Value::kUndefined:
      return "";
    case Value::kNone:
      return "None";
    case Value::kBool:
      return v.b ? "True" : "False";
    case Value::kInt:
      return std::to_string(v.i);
    case Value::kFloat: {
      if (std::floor(v.f) == v.f && std::fabs(v.f) < 1e16) return std::to_string(static_cast<int64_t>(v.f)) + ".0";
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.17g", v.f);
      return buf;
    }
    case Value::kString:
      return v.s;
    default:
      return repr(v);
  }
}

std::string quote_py(const std::string& s) {
  const char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    if (c == q || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + q;
}

std::string repr(const Value& v) {
  if (v.kind == Value::kString) return quote_py(v.s);
  if (v.kind == Value::kList) {
    std::string out = "[";
    for (size_t i = 0; i < v.list->size(); ++i) out += (i ? ", " : "") + repr((*v.list)[i]);
    return out + "]";
  }
  if (v.kind == Value::kDict) {
    std::string out = v.is_namespace ? "<Namespace {" : "{";
    bool first = true;
    for (const auto& [k, x] : *v.dict) {
      out += (first ? "" : ", ") + quote_py(k) + ": " + repr(x);
      first = false;
    }
    return out + (v.is_namespace ? "}>" : "}");
  }
  if (v.kind == Value::kFunction) return "<function>";
  return str(v);
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
// are ", " / ": " without indent and "," / ": " with it.
void to_json(const Value& v, int indent, int depth, std::string* out) {
  const auto newline = [&](int d) {
    if (indent < 0) return;
    *out += '\n';
    out->append(static_cast<size_t>(indent * d), ' ');
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
      *out += str(v);
      break;
    case Value::kString:
      json_string(v.s, out);
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
      return !v.s.empty();
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

bool equals(const Value& a, const Value& b) {
  if (is_number(a) && is_number(b)) return as_double(a) == as_double(b);
  if (a.kind != b.kind) {
    return (a.kind == Value::kNone || a.kind == Value::kUndefined) &&
           (b.kind == Value::kNone || b.kind == Value::kUndefined) && a.kind == b.kind;
  }
  switch (a.kind) {
    case Value::kString:
      return a.s == b.s;
    case Value::kList:
      if (a.list->size() != b.list->size()) return false;
      for (size_t i = 0; i < a.list->size(); ++i)
        if (!equals((*a.list)[i], (*b.list)[i])) return false;
      return true;
    case Value::kDict:
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [k, x] : *a.dict) {
        const Value* y = b.find(k);
        if (!y || !equals(x, *y)) return false;
      }
      return true;
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

}  // namespace

struct ChatTemplate::Impl {
  std::string name;
  Body body;
};

namespace {

class Renderer {
 public:
  Renderer(const std::string& name, const ChatTemplateOptions& opt) : name_(name), opt_(opt) { scopes_.emplace_back(); }

  std::unordered_map<std::string, Value>& globals() { return scopes_.front(); }

  void exec(const Body& body, std::string* out, LoopSignal* sig) {
    for (const auto& s : body) {
      if (sig->what != LoopSignal::kNone) return;
      line_ = s->line;
      switch (s->kind) {
        case Stmt::kText:
          *out += s->text;
          break;
        case Stmt::kOutput:
          *out += str(eval(*s->expr));
          break;
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
            ns.set(s->attr, std::move(v));
          }
          break;
        }
        case Stmt::kBreak:
          if (loop_depth_ == 0) fail(s->line, "{% break %} outside a loop");
          sig->what = LoopSignal::kBreak;
          return;
        case Stmt::kContinue:
          if (loop_depth_ == 0) fail(s->line, "{% continue %} outside a loop");
          sig->what = LoopSignal::kContinue;
          return;
      }
    }
  }

 private:
  [[noreturn]] void fail(int line, const std::string& msg, const std::string& hint = "") const {
    Error e(msg);
    e.at(detail::concat(name_, ": template line ", line));
    if (!hint.empty()) e.hint(hint);
    throw e;
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
    if (seq.kind == Value::kList)
      items = *seq.list;
    else if (seq.kind == Value::kDict)
      for (const auto& kv : *seq.dict) items.push_back(Value::string(kv.first));
    else if (seq.kind == Value::kString)
      for (char c : seq.s) items.push_back(Value::string(std::string(1, c)));
    else if (seq.kind == Value::kUndefined || seq.kind == Value::kNone)
      items.clear();
    else
      fail(s.line, "{% for %}: " + repr(seq) + " is not iterable");
    auto bind = [&](std::unordered_map<std::string, Value>& scope, const Value& item) {
      if (s.targets.size() == 1) {
        scope[s.targets[0]] = item;
        return;
      }
      if (item.kind != Value::kList || item.list->size() != s.targets.size())
        fail(s.line, "{% for %}: cannot unpack " + repr(item) + " into " + std::to_string(s.targets.size()) + " names");
      for (size_t k = 0; k < s.targets.size(); ++k) scope[s.targets[k]] = (*item.list)[k];
    };
    if (s.filter) {
      List kept;
      for (const auto& it : items) {
        scopes_.emplace_back();
        bind(scopes_.back(), it);
        if (truthy(eval(*s.filter))) kept.push_back(it);
        scopes_.pop_back();
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
          return (*f.fn)(args, kwargs);
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
        if (v.kind == Value::kInt) return Value::integer(-v.i);
        if (v.kind == Value::kFloat) return Value::number(-v.f);
        fail(e.line, "unary '-' needs a number, got " + repr(v));
      }
      case Expr::kBinary:
        return binary(e);
      case Expr::kCond:
        if (truthy(eval(*e.b))) return eval(*e.a);
        return e.c ? eval(*e.c) : Value();
      case Expr::kListLit: {
        List l;
        for (const auto& a : e.args) l.push_back(eval(*a));
        return Value::make_list(std::move(l));
      }
      case Expr::kDictLit: {
        Value d = Value::make_dict();
        for (const auto& [k, v] : e.items) d.set(str(eval(*k)), eval(*v));
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
    if (op == "~") return Value::string(str(l) + str(r));
    if (op == "==") return Value::boolean(equals(l, r));
    if (op == "!=") return Value::boolean(!equals(l, r));
    if (op == "in" || op == "not in") {
      bool found = false;
      if (r.kind == Value::kString) {
        if (l.kind != Value::kString) fail(e.line, "'in <string>' requires a string on the left, got " + repr(l));
        found = r.s.find(l.s) != std::string::npos;
      } else if (r.kind == Value::kList) {
        for (const auto& x : *r.list) found = found || equals(x, l);
      } else if (r.kind == Value::kDict) {
        found = l.kind == Value::kString && r.find(l.s) != nullptr;
      } else if (r.kind != Value::kUndefined && r.kind != Value::kNone) {
        fail(e.line, "'in' needs a string, list or mapping on the right, got " + repr(r));
      } else {
        fail(e.line, "'in' on an undefined or None value");
      }
      return Value::boolean(found == (op == "in"));
    }
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      int c;
      if (is_number(l) && is_number(r))
        c = as_double(l) < as_double(r) ? -1 : as_double(l) > as_double(r) ? 1 : 0;
      else if (l.kind == Value::kString && r.kind == Value::kString)
        c = l.s.compare(r.s);
      else
        fail(e.line, "cannot compare " + repr(l) + " " + op + " " + repr(r));
      return Value::boolean(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0);
    }
    if (op == "+") {
      if (l.kind == Value::kString && r.kind == Value::kString) return Value::string(l.s + r.s);
      if (l.kind == Value::kList && r.kind == Value::kList) {
        List x = *l.list;
        x.insert(x.end(), r.list->begin(), r.list->end());
        return Value::make_list(std::move(x));
      }
    }
    if (op == "*" && l.kind == Value::kString && r.kind == Value::kInt) {
      std::string s;
      for (int64_t k = 0; k < r.i; ++k) s += l.s;
      return Value::string(s);
    }
    if (!is_number(l) || !is_number(r))
      fail(e.line, "unsupported operand types for " + op + ": " + repr(l) + " and " + repr(r),
           "use ~ to concatenate values that are not both strings");
    const bool ints = l.kind != Value::kFloat && r.kind != Value::kFloat;
    const double a = as_double(l), b = as_double(r);
    if (op == "/") {
      if (b == 0) fail(e.line, "division by zero");
      return Value::number(a / b);
    }
    if (ints) {
      const int64_t x = static_cast<int64_t>(a), y = static_cast<int64_t>(b);
      if (op == "+") return Value::integer(x + y);
      if (op == "-") return Value::integer(x - y);
      if (op == "*") return Value::integer(x * y);
      if (y == 0) fail(e.line, "integer division or modulo by zero");
      const int64_t q = x / y - ((x % y != 0) && ((x < 0) != (y < 0)));  // Python floors
      if (op == "//") return Value::integer(q);
      if (op == "%") return Value::integer(x - q * y);
    } else {
      if (op == "+") return Value::number(a + b);
      if (op == "-") return Value::number(a - b);
      if (op == "*") return Value::number(a * b);
      if (op == "//") return Value::number(std::floor(a / b));
      if (op == "%") return Value::number(a - std::floor(a / b) * b);
    }
    fail(e.line, "unsupported operator " + op);
  }

  Value item(const Value& obj, const Value& key, int line) {
    if (obj.kind == Value::kDict) {
      if (key.kind != Value::kString) return Value();
      const Value* v = obj.find(key.s);
      return v ? *v : Value();
    }
    if ((obj.kind == Value::kList || obj.kind == Value::kString) && key.kind == Value::kInt) {
      const size_t n = obj.kind == Value::kList ? obj.list->size() : obj.s.size();
      const int64_t i = norm_index(key.i, n);
      if (i < 0 || i >= static_cast<int64_t>(n)) return Value();
      return obj.kind == Value::kList ? (*obj.list)[i] : Value::string(std::string(1, obj.s[i]));
    }
    if (key.kind == Value::kString) return attribute(obj, key.s, line);
    if (obj.kind == Value::kUndefined) fail(line, "subscript of an undefined value");
    return Value();
  }

  Value slice(const Expr& e) {
    Value obj = eval(*e.a);
    auto opt = [&](const ExprPtr& p) -> std::optional<int64_t> {
      if (!p) return std::nullopt;
      Value v = eval(*p);
      if (v.kind == Value::kNone) return std::nullopt;
      if (v.kind != Value::kInt) fail(e.line, "slice indices must be integers, got " + repr(v));
      return v.i;
    };
    const auto start = opt(e.b), stop = opt(e.c), step_o = opt(e.args[0]);
    const int64_t step = step_o.value_or(1);
    if (step == 0) fail(e.line, "slice step cannot be zero");
    if (obj.kind != Value::kList && obj.kind != Value::kString) fail(e.line, "cannot slice " + repr(obj));
    const int64_t n = obj.kind == Value::kList ? obj.list->size() : obj.s.size();
    // Python's slice.indices()
    auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
      if (!v) return dflt;
      int64_t x = *v < 0 ? *v + n : *v;
      if (step > 0) return std::clamp<int64_t>(x, 0, n);
      return std::clamp<int64_t>(x, -1, n - 1);
    };
    const int64_t b = clamp(start, step > 0 ? 0 : n - 1), en = clamp(stop, step > 0 ? n : -1);
    List l;
    std::string s;
    for (int64_t i = b; step > 0 ? i < en : i > en; i += step) {
      if (obj.kind == Value::kList)
        l.push_back((*obj.list)[i]);
      else
        s += obj.s[i];
    }
    return obj.kind == Value::kList ? Value::make_list(std::move(l)) : Value::string(s);
  }

  static std::string arg_str(const Args& a, size_t i, const std::string& dflt) {
    if (i >= a.size() || a[i].kind == Value::kNone) return dflt;
    return str(a[i]);
  }

  Value attribute(const Value& obj, const std::string& n, int line);
  Value filter(const Expr& e);
  bool test(const Expr& e);

  std::string name_;
  const ChatTemplateOptions& opt_;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
  int line_ = 0;
  int loop_depth_ = 0;
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
  install_globals(g, opt);
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
