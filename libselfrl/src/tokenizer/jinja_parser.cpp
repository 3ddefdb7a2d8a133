// Lexer and parser for the chat-template Jinja subset. Whitespace handling follows jinja2 with
// the options transformers uses for chat templates (transformers/utils/chat_template_utils.py:
// ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)): "{%-"/"-%}" strip all
// whitespace on that side, trim_blocks drops the first newline after a block or comment tag,
// lstrip_blocks drops spaces and tabs between the start of a line and a block or comment tag.
// Operator precedence follows jinja2/parser.py (or < and < not < comparisons < + - < ~ < * / //
// % < unary < postfix/filters/tests).
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "selfrl/core/error.h"
#include "tokenizer/jinja_ast.h"

namespace selfrl::tokenizer::jinja {
namespace {

struct Tok {
  enum Type { kName, kString, kInt, kFloat, kOp, kEnd } type;
  std::string text;
  int line;
};

struct Part {
  bool is_text = true;
  bool is_block = false;  // {% %} rather than {{ }}
  std::string text;
  std::vector<Tok> toks;
  int line = 1;
};

[[noreturn]] void fail(const std::string& name, int line, const std::string& msg, const std::string& hint = "") {
  Error e(msg);
  e.at(detail::concat(name, ": template line ", line));
  if (!hint.empty()) e.hint(hint);
  throw e;
}

std::vector<Part> lex(const std::string& src, const std::string& name) {
  std::vector<Part> parts;
  size_t pos = 0;
  int line = 1;
  bool trim_ws = false, trim_nl = false;
  const size_t n = src.size();
  auto count_lines = [&](size_t from, size_t to) {
    for (size_t k = from; k < to; ++k) line += src[k] == '\n';
  };
  while (pos <= n) {
    size_t p = pos;
    while (true) {
      p = src.find('{', p);
      if (p == std::string::npos || p + 1 >= n) {
        p = std::string::npos;
        break;
      }
      const char c = src[p + 1];
      if (c == '{' || c == '%' || c == '#') break;
      ++p;
    }
    std::string text = src.substr(pos, p == std::string::npos ? std::string::npos : p - pos);
    const int text_line = line;
    if (trim_ws) {
      size_t k = 0;
      while (k < text.size() && std::isspace(static_cast<unsigned char>(text[k]))) ++k;
      text.erase(0, k);
    } else if (trim_nl) {
      if (text.compare(0, 1, "\n") == 0)
        text.erase(0, 1);
      else if (text.compare(0, 2, "\r\n") == 0)
        text.erase(0, 2);
    }
    if (p == std::string::npos) {
      if (!text.empty()) parts.push_back({true, false, text, {}, text_line});
      break;
    }
    const char kind = src[p + 1];
    const char mod = p + 2 < n ? src[p + 2] : '\0';
    if (mod == '-') {
      while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    } else if ((kind == '%' || kind == '#') && mod != '+') {
      // lstrip_blocks: only when the tag is the first non-blank thing on its line.
      size_t ls = p;
      while (ls > 0 && (src[ls - 1] == ' ' || src[ls - 1] == '\t')) --ls;
      if (ls == 0 || src[ls - 1] == '\n') {
        size_t k = text.size();
        while (k > 0 && (text[k - 1] == ' ' || text[k - 1] == '\t')) --k;
        text.erase(k);
      }
    }
    if (!text.empty()) parts.push_back({true, false, text, {}, text_line});
    count_lines(pos, p);
    const int tag_line = line;
    size_t q = p + 2 + ((mod == '-' || mod == '+') ? 1 : 0);
    trim_ws = trim_nl = false;
    if (kind == '#') {
      const size_t e = src.find("#}", q);
      if (e == std::string::npos) fail(name, tag_line, "unterminated comment {# ... #}");
      trim_ws = e > q && src[e - 1] == '-';
      trim_nl = !trim_ws;
      count_lines(p, e + 2);
      pos = e + 2;
      continue;
    }
    const std::string close = kind == '{' ? "}}" : "%}";
    Part part;
    part.is_text = false;
    part.is_block = kind == '%';
    part.line = tag_line;
    bool closed = false;
    while (q < n) {
      const char c = src[q];
      if (c == '\n') {
        ++line;
        ++q;
        continue;
      }
      if (std::isspace(static_cast<unsigned char>(c))) {
        ++q;
        continue;
      }
      if (src.compare(q, 2, close) == 0) {
        q += 2;
        closed = true;
        break;
      }
      if (c == '-' && src.compare(q + 1, 2, close) == 0) {
        q += 3;
        closed = true;
        trim_ws = true;
        break;
      }
      if (c == '+' && src.compare(q + 1, 2, close) == 0) {
        q += 3;
        closed = true;
        break;
      }
      if (c == '\'' || c == '"') {
        std::string s;
        size_t k = q + 1;
        for (; k < n && src[k] != c; ++k) {
          if (src[k] == '\\' && k + 1 < n) {
            const char e = src[++k];
            switch (e) {
              case 'n':
                s += '\n';
                break;
              case 't':
                s += '\t';
                break;
              case 'r':
                s += '\r';
                break;
              case '\\':
                s += '\\';
                break;
              case '\'':
                s += '\'';
                break;
              case '"':
                s += '"';
                break;
              default:
                s += '\\';
                s += e;
            }
          } else {
            if (src[k] == '\n') ++line;
            s += src[k];
          }
        }
        if (k >= n) fail(name, line, "unterminated string literal");
        part.toks.push_back({Tok::kString, s, line});
        q = k + 1;
        continue;
      }
      if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t k = q;
        bool is_float = false;
        while (k < n &&
               (std::isdigit(static_cast<unsigned char>(src[k])) ||
                (src[k] == '.' && !is_float && k + 1 < n && std::isdigit(static_cast<unsigned char>(src[k + 1]))))) {
          is_float |= src[k] == '.';
          ++k;
        }
        part.toks.push_back({is_float ? Tok::kFloat : Tok::kInt, src.substr(q, k - q), line});
        q = k;
        continue;
      }
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t k = q;
        while (k < n && (std::isalnum(static_cast<unsigned char>(src[k])) || src[k] == '_')) ++k;
        part.toks.push_back({Tok::kName, src.substr(q, k - q), line});
        q = k;
        continue;
      }
      static const char* kTwo[] = {"==", "!=", "<=", ">=", "//", "**"};
      bool two = false;
      for (const char* op : kTwo) {
        if (src.compare(q, 2, op) == 0) {
          part.toks.push_back({Tok::kOp, op, line});
          q += 2;
          two = true;
          break;
        }
      }
      if (two) continue;
      if (std::string("+-*/%~<>()[]{}.,:|=").find(c) == std::string::npos)
        fail(name, line, detail::concat("unexpected character '", c, "' in a tag"));
      part.toks.push_back({Tok::kOp, std::string(1, c), line});
      ++q;
    }
    if (!closed) fail(name, tag_line, "tag opened here is never closed with " + close);
    part.toks.push_back({Tok::kEnd, "", line});
    trim_nl = part.is_block && !trim_ws;
    parts.push_back(std::move(part));
    pos = q;
  }
  return parts;
}

class ExprParser {
 public:
  ExprParser(const std::vector<Tok>& toks, size_t start, const std::string& name) : t_(toks), i_(start), name_(name) {}

  ExprPtr parse_expression() {
    Nest guard(this);
    ExprPtr e = parse_or();
    if (is_name("if")) {  // a if cond else b
      const int line = next().line;
      auto cond = std::make_unique<Expr>(Expr::kCond, line);
      cond->b = parse_or();
      cond->a = std::move(e);
      if (is_name("else")) {
        next();
        cond->c = parse_expression();
      }
      return seal(std::move(cond));
    }
    return e;
  }

  const Tok& peek() const { return t_[i_]; }
  const Tok& next() { return t_[i_ < t_.size() - 1 ? i_++ : i_]; }
  bool is_op(const char* op) const { return peek().type == Tok::kOp && peek().text == op; }
  bool is_name(const char* w) const { return peek().type == Tok::kName && peek().text == w; }
  void expect_op(const char* op) {
    if (!is_op(op)) fail(name_, peek().line, detail::concat("expected '", op, "', found '", peek().text, "'"));
    next();
  }
  std::string expect_name() {
    if (peek().type != Tok::kName) fail(name_, peek().line, "expected a name, found '" + peek().text + "'");
    return next().text;
  }
  void expect_end() {
    if (peek().type != Tok::kEnd) fail(name_, peek().line, "unexpected '" + peek().text + "' in tag");
  }
  size_t pos() const { return i_; }

 private:
  // Both the parser's recursion and the depth of the tree it builds are bounded by kMaxNesting:
  // "((((...))))" recurses, "1 + 1 + ... + 1" and "x|trim|trim..." build deep trees iteratively,
  // and evaluating or freeing a deep tree recurses as well.
  [[noreturn]] void too_deep(int line) const {
    fail(name_, line, detail::concat("expression nests deeper than the limit of ", kMaxNesting, " levels"),
         "split the expression with {% set %}; real chat templates nest a few levels");
  }
  struct Nest {
    explicit Nest(ExprParser* p) : p_(p) {
      if (++p_->nesting_ > kMaxNesting) p_->too_deep(p_->peek().line);
    }
    ~Nest() { --p_->nesting_; }
    ExprParser* p_;
  };
  // Sets e->depth from its children; fails past kMaxNesting.
  ExprPtr seal(ExprPtr e) {
    int d = 0;
    for (const Expr* c : {e->a.get(), e->b.get(), e->c.get()})
      if (c) d = std::max(d, c->depth);
    for (const auto& x : e->args)
      if (x) d = std::max(d, x->depth);
    for (const auto& kv : e->kwargs) d = std::max(d, kv.second->depth);
    for (const auto& kv : e->items) d = std::max({d, kv.first->depth, kv.second->depth});
    e->depth = d + 1;
    if (e->depth > kMaxNesting) too_deep(e->line);
    return e;
  }
  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, int line) {
    auto e = std::make_unique<Expr>(Expr::kBinary, line);
    e->name = op;
    e->a = std::move(l);
    e->b = std::move(r);
    return seal(std::move(e));
  }
  ExprPtr parse_or() {
    ExprPtr l = parse_and();
    while (is_name("or")) {
      const int ln = next().line;
      l = binary("or", std::move(l), parse_and(), ln);
    }
    return l;
  }
  ExprPtr parse_and() {
    ExprPtr l = parse_not();
    while (is_name("and")) {
      const int ln = next().line;
      l = binary("and", std::move(l), parse_not(), ln);
    }
    return l;
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      Nest guard(this);
      auto e = std::make_unique<Expr>(Expr::kNot, next().line);
      e->a = parse_not();
      return seal(std::move(e));
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    ExprPtr l = parse_math1();
    while (true) {
      const int ln = peek().line;
      if (peek().type == Tok::kOp && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                      peek().text == ">" || peek().text == "<=" || peek().text == ">=")) {
        const std::string op = next().text;
        l = binary(op, std::move(l), parse_math1(), ln);
      } else if (is_name("in")) {
        next();
        l = binary("in", std::move(l), parse_math1(), ln);
      } else if (is_name("not") && t_[i_ + 1].type == Tok::kName && t_[i_ + 1].text == "in") {
        next();
        next();
        l = binary("not in", std::move(l), parse_math1(), ln);
      } else {
        return l;
      }
    }
  }
  ExprPtr parse_math1() {
    ExprPtr l = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Tok& t = next();
      const std::string op = t.text;
      l = binary(op, std::move(l), parse_concat(), t.line);
    }
    return l;
  }
  ExprPtr parse_concat() {
    ExprPtr l = parse_math2();
    while (is_op("~")) {
      const int ln = next().line;
      l = binary("~", std::move(l), parse_math2(), ln);
    }
    return l;
  }
  ExprPtr parse_math2() {
    ExprPtr l = parse_unary();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Tok& t = next();
      const std::string op = t.text;
      l = binary(op, std::move(l), parse_unary(), t.line);
    }
    return l;
  }
  ExprPtr parse_unary() {
    if (is_op("-")) {
      Nest guard(this);
      auto e = std::make_unique<Expr>(Expr::kNeg, next().line);
      e->a = parse_unary();
      return seal(std::move(e));
    }
    if (is_op("+")) {
      Nest guard(this);
      next();
      return parse_unary();
    }
    return parse_filters(parse_postfix(parse_primary()));
  }
  void parse_call_args(Expr* e) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().type == Tok::kName && t_[i_ + 1].type == Tok::kOp && t_[i_ + 1].text == "=") {
        std::string key = next().text;
        next();
        e->kwargs.emplace_back(key, parse_expression());
      } else {
        e->args.push_back(parse_expression());
      }
      if (!is_op(")")) expect_op(",");
    }
    next();
  }
  ExprPtr parse_primary() {
    const Tok& t = next();
    switch (t.type) {
      case Tok::kString: {
        auto e = std::make_unique<Expr>(Expr::kLiteral, t.line);
        std::string s = t.text;
        while (peek().type == Tok::kString) s += next().text;  // adjacent literals concatenate
        e->literal = Value::string(s);
        return e;
      }
      case Tok::kInt: {
        auto e = std::make_unique<Expr>(Expr::kLiteral, t.line);
        errno = 0;
        const long long v = std::strtoll(t.text.c_str(), nullptr, 10);
        if (errno == ERANGE) {
          fail(name_, t.line,
               "integer literal " + (t.text.size() > 40 ? t.text.substr(0, 40) + "..." : t.text) +
                   " is out of range (integers are 64-bit)");
        }
        e->literal = Value::integer(v);
        return e;
      }
      case Tok::kFloat: {
        auto e = std::make_unique<Expr>(Expr::kLiteral, t.line);
        errno = 0;
        const double v = std::strtod(t.text.c_str(), nullptr);
        if (errno == ERANGE && std::abs(v) > 1) {
          fail(name_, t.line,
               "float literal " + (t.text.size() > 40 ? t.text.substr(0, 40) + "..." : t.text) + " is out of range");
        }
        e->literal = Value::number(v);
        return e;
      }
      case Tok::kName: {
        auto e = std::make_unique<Expr>(Expr::kLiteral, t.line);
        if (t.text == "true" || t.text == "True") {
          e->literal = Value::boolean(true);
          return e;
        }
        if (t.text == "false" || t.text == "False") {
          e->literal = Value::boolean(false);
          return e;
        }
        if (t.text == "none" || t.text == "None") {
          e->literal = Value::none();
          return e;
        }
        e->kind = Expr::kName;
        e->name = t.text;
        return e;
      }
      case Tok::kOp:
        if (t.text == "(") {
          ExprPtr e = parse_expression();
          if (is_op(",")) fail(name_, t.line, "tuples are not supported in chat templates");
          expect_op(")");
          return e;
        }
        if (t.text == "[") {
          auto e = std::make_unique<Expr>(Expr::kListLit, t.line);
          while (!is_op("]")) {
            e->args.push_back(parse_expression());
            if (!is_op("]")) expect_op(",");
          }
          next();
          return seal(std::move(e));
        }
        if (t.text == "{") {
          auto e = std::make_unique<Expr>(Expr::kDictLit, t.line);
          while (!is_op("}")) {
            ExprPtr k = parse_expression();
            expect_op(":");
            e->items.emplace_back(std::move(k), parse_expression());
            if (!is_op("}")) expect_op(",");
          }
          next();
          return seal(std::move(e));
        }
        break;
      case Tok::kEnd:
        fail(name_, t.line, "expression expected, found the end of the tag");
    }
    fail(name_, t.line, "unexpected '" + t.text + "' in an expression");
  }
  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      const int ln = peek().line;
      if (is_op(".")) {
        next();
        auto a = std::make_unique<Expr>(Expr::kAttr, ln);
        a->name = expect_name();
        a->a = std::move(e);
        e = seal(std::move(a));
      } else if (is_op("[")) {
        next();
        ExprPtr start, stop, step;
        bool slice = false;
        if (!is_op(":")) start = parse_expression();
        if (is_op(":")) {
          slice = true;
          next();
          if (!is_op(":") && !is_op("]")) stop = parse_expression();
          if (is_op(":")) {
            next();
            if (!is_op("]")) step = parse_expression();
          }
        }
        expect_op("]");
        auto s = std::make_unique<Expr>(slice ? Expr::kSlice : Expr::kItem, ln);
        s->a = std::move(e);
        s->b = std::move(start);
        s->c = std::move(stop);
        if (slice) s->args.push_back(std::move(step));
        e = seal(std::move(s));
      } else if (is_op("(")) {
        auto c = std::make_unique<Expr>(Expr::kCall, ln);
        c->a = std::move(e);
        parse_call_args(c.get());
        e = seal(std::move(c));
      } else {
        return e;
      }
    }
  }
  ExprPtr parse_filters(ExprPtr e) {
    while (true) {
      const int ln = peek().line;
      if (is_op("|")) {
        next();
        auto f = std::make_unique<Expr>(Expr::kFilter, ln);
        f->name = expect_name();
        f->a = std::move(e);
        if (is_op("(")) parse_call_args(f.get());
        e = parse_postfix(seal(std::move(f)));
      } else if (is_name("is")) {
        next();
        auto t = std::make_unique<Expr>(Expr::kTest, ln);
        if (is_name("not")) {
          next();
          t->negated = true;
        }
        t->name = expect_name();
        t->a = std::move(e);
        if (is_op("(")) parse_call_args(t.get());
        e = seal(std::move(t));
      } else {
        return e;
      }
    }
  }

  const std::vector<Tok>& t_;
  size_t i_;
  const std::string& name_;
  int nesting_ = 0;
};

class StmtParser {
 public:
  StmtParser(std::vector<Part> parts, const std::string& name) : parts_(std::move(parts)), name_(name) {}

  Body parse_all() {
    std::string stop;
    Body b = parse_body({}, &stop);
    return b;
  }

 private:
  // Parses until a block tag whose keyword is in `ends`; *stop receives it (and the parser is
  // left on that tag so the caller can read its tokens).
  // One {% if %} / {% for %} block more, opened on `line`; parsing, rendering and freeing recurse
  // once per level.
  struct Level {
    Level(StmtParser* p, int line) : p_(p) {
      if (++p_->nesting_ > kMaxNesting)
        fail(p_->name_, line,
             detail::concat("{% if %}/{% for %} blocks nest deeper than the limit of ", kMaxNesting, " levels"),
             "real chat templates nest a few blocks");
    }
    ~Level() { --p_->nesting_; }
    StmtParser* p_;
  };

  Body parse_body(const std::vector<std::string>& ends, std::string* stop) {
    Body body;
    while (i_ < parts_.size()) {
      Part& p = parts_[i_];
      if (p.is_text) {
        auto s = std::make_unique<Stmt>(Stmt::kText, p.line);
        s->text = p.text;
        body.push_back(std::move(s));
        ++i_;
        continue;
      }
      ExprParser ep(p.toks, 0, name_);
      if (!p.is_block) {
        auto s = std::make_unique<Stmt>(Stmt::kOutput, p.line);
        s->expr = ep.parse_expression();
        ep.expect_end();
        body.push_back(std::move(s));
        ++i_;
        continue;
      }
      if (p.toks[0].type != Tok::kName) fail(name_, p.line, "a block tag must start with a keyword");
      const std::string kw = p.toks[0].text;
      for (const auto& e : ends) {
        if (kw == e) {
          *stop = kw;
          return body;
        }
      }
      ++i_;
      ep.next();
      if (kw == "if") {
        Level level(this, p.line);
        auto s = std::make_unique<Stmt>(Stmt::kIf, p.line);
        ExprPtr cond = ep.parse_expression();
        ep.expect_end();
        while (true) {
          std::string end;
          Body b = parse_body({"elif", "else", "endif"}, &end);
          s->branches.emplace_back(std::move(cond), std::move(b));
          if (end.empty()) fail(name_, p.line, "{% if %} is never closed with {% endif %}");
          Part& tag = parts_[i_++];
          if (end == "elif") {
            ExprParser cp(tag.toks, 1, name_);
            cond = cp.parse_expression();
            cp.expect_end();
            continue;
          }
          if (end == "else") {
            std::string e2;
            s->else_body = parse_body({"endif"}, &e2);
            if (e2.empty()) fail(name_, p.line, "{% if %} is never closed with {% endif %}");
            ++i_;
          }
          break;
        }
        body.push_back(std::move(s));
      } else if (kw == "for") {
        Level level(this, p.line);
        auto s = std::make_unique<Stmt>(Stmt::kFor, p.line);
        s->targets.push_back(ep.expect_name());
        while (ep.is_op(",")) {
          ep.next();
          s->targets.push_back(ep.expect_name());
        }
        if (!ep.is_name("in")) fail(name_, p.line, "expected 'in' in {% for %}");
        ep.next();
        s->expr = parse_no_cond(ep);
        if (pending_filter_) {
          s->filter = std::move(pending_filter_);
        } else if (ep.is_name("if")) {
          ep.next();
          s->filter = ep.parse_expression();
        }
        if (ep.is_name("recursive")) fail(name_, p.line, "unsupported Jinja feature: recursive loops");
        ep.expect_end();
        std::string end;
        s->body = parse_body({"else", "endfor"}, &end);
        if (end.empty()) fail(name_, p.line, "{% for %} is never closed with {% endfor %}");
        ++i_;
        if (end == "else") {
          s->else_body = parse_body({"endfor"}, &end);
          if (end != "endfor") fail(name_, p.line, "{% for %} is never closed with {% endfor %}");
          ++i_;
        }
        body.push_back(std::move(s));
      } else if (kw == "set") {
        auto s = std::make_unique<Stmt>(Stmt::kSet, p.line);
        s->targets.push_back(ep.expect_name());
        if (ep.is_op(".")) {
          ep.next();
          s->attr = ep.expect_name();
        }
        if (ep.is_op(",")) fail(name_, p.line, "unsupported Jinja feature: tuple assignment in {% set %}");
        if (!ep.is_op("=")) fail(name_, p.line, "unsupported Jinja feature: block {% set %} ... {% endset %}");
        ep.next();
        s->expr = ep.parse_expression();
        ep.expect_end();
        body.push_back(std::move(s));
      } else if (kw == "break" || kw == "continue") {
        body.push_back(std::make_unique<Stmt>(kw == "break" ? Stmt::kBreak : Stmt::kContinue, p.line));
      } else if (kw == "generation" || kw == "endgeneration") {
        // transformers' AssistantTracker marks assistant spans; it renders nothing itself.
      } else {
        fail(
            name_, p.line, "unsupported Jinja feature: {% " + kw + " %}",
            "supported tags: if/elif/else, for/else (loop.*, break, continue), set (namespace attributes), generation");
      }
    }
    stop->clear();
    if (!ends.empty()) return body;
    return body;
  }

  // The iterable of a for loop stops before "if" (the loop filter), so no conditional expression.
  ExprPtr parse_no_cond(ExprParser& ep) {
    // Parse with parse_expression and undo a trailing conditional: a for-loop filter "x in xs if
    // c" must not be read as "xs if c else undefined".
    ExprPtr e = ep.parse_expression();
    if (e->kind == Expr::kCond && !e->c) {
      // Reinterpret: the condition was the loop filter; hand it back through a side channel.
      pending_filter_ = std::move(e->b);
      ExprPtr base = std::move(e->a);
      return base;
    }
    return e;
  }

 public:
  ExprPtr pending_filter_;

 private:
  std::vector<Part> parts_;
  size_t i_ = 0;
  const std::string& name_;
  int nesting_ = 0;
};

}  // namespace

Body parse(const std::string& source, const std::string& name) {
  StmtParser p(lex(source, name), name);
  return p.parse_all();
}

}  // namespace selfrl::tokenizer::jinja
