// Recursive-descent parser with jinja2's operator precedence (lowest first):
// cond-expr, or, and, not, comparisons/in/not in, + -, ~, * / // %, **, unary - +,
// then primary with postfix (. [] ()) and filters/tests (| name, is [not] name).
// GCC 12 at -O3 reports a false -Wrestrict inside std::string for "literal" + string
// (GCC bug 105329); the code is fine, so the warning is off for this file.
#pragma GCC diagnostic ignored "-Wrestrict"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_lexer.h"
#include "tokenizer/jinja_limits.h"
#include "util/error.h"
#include "util/one_line.h"

namespace lorafit::jinja {
namespace {

using T = Token::Type;

class Parser {
 public:
  Parser(std::vector<Token> toks, std::string name) : t_(std::move(toks)), name_(std::move(name)) {}

  Body parse_body(const std::vector<std::string>& end_tags, std::string* which) {
    Body body;
    while (true) {
      const Token& tok = peek();
      if (tok.type == T::End) {
        if (!end_tags.empty())
          fail(tok.line ? tok.line : last_line_, "unexpected end of template; expected '{}'", join_tags(end_tags));
        return body;
      }
      if (tok.type == T::Text) {
        auto n = node(Node::Kind::Text, tok.line);
        n->text = tok.value;
        body.push_back(std::move(n));
        next();
      } else if (tok.type == T::VarBegin) {
        next();
        auto n = node(Node::Kind::Output, tok.line);
        n->expr = parse_expression();
        expect(T::VarEnd, "}}");
        body.push_back(std::move(n));
      } else if (tok.type == T::BlockBegin) {
        const Token& kw = t_[pos_ + 1];
        if (kw.type != T::Name) fail(kw.line, "expected a tag name after '{{%'");
        if (std::find(end_tags.begin(), end_tags.end(), kw.value) != end_tags.end()) {
          *which = kw.value;
          pos_ += 2;
          return body;
        }
        next();
        body.push_back(parse_statement());
      } else {
        fail(tok.line, "unexpected '{}'", tok.value);
      }
    }
  }

 private:
  std::vector<Token> t_;
  size_t pos_ = 0;
  std::string name_;
  int last_line_ = 1;

  template <class... A>
  [[noreturn]] void fail(int line, fmt::format_string<A...> f, A&&... a) {
    throw Error("{}:{}: syntax error: {}", name_, line, fmt::format(f, std::forward<A>(a)...));
  }
  static std::string join_tags(const std::vector<std::string>& tags) {
    std::string s;
    for (const auto& t : tags) s += (s.empty() ? "" : "' or '") + t;
    return s;
  }
  const Token& peek(size_t k = 0) const { return t_[std::min(pos_ + k, t_.size() - 1)]; }
  const Token& next() {
    const Token& tok = t_[pos_];
    if (tok.line) last_line_ = tok.line;
    if (pos_ + 1 < t_.size()) ++pos_;
    return tok;
  }
  bool is_op(const char* op, size_t k = 0) const { return peek(k).type == T::Op && peek(k).value == op; }
  bool is_name(const char* n, size_t k = 0) const { return peek(k).type == T::Name && peek(k).value == n; }
  void expect(T type, const char* what) {
    if (peek().type != type || (type == T::Op && peek().value != what))
      fail(peek().line ? peek().line : last_line_, "expected '{}', got '{}'", what, describe(peek()));
    next();
  }
  void expect_op(const char* op) { expect(T::Op, op); }
  std::string expect_name() {
    if (peek().type != T::Name) fail(peek().line ? peek().line : last_line_, "expected a name, got '{}'", describe(peek()));
    return next().value;
  }
  static std::string describe(const Token& t) { return t.type == T::End ? "end of template" : one_line(t.value); }
  static NodePtr node(Node::Kind k, int line) {
    auto n = std::make_unique<Node>();
    n->kind = k;
    n->line = line;
    return n;
  }
  static ExprPtr expr(Expr::Kind k, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = line;
    return e;
  }
  // Chains such as `a + b + c ...` or `x|f|g ...` are built in loops, not by recursion, so
  // their height is counted here: a tree taller than kMaxNesting would overflow the stack
  // when evaluated or freed.
  ExprPtr seal(ExprPtr e) {
    int h = 0;
    for (const auto& a : e->args)
      if (a) h = std::max(h, a->height);
    for (const auto& [k, v] : e->kwargs) h = std::max(h, v->height);
    e->height = h + 1;
    if (e->height > kMaxNesting) too_deep(e->line);
    return e;
  }
  [[noreturn]] void too_deep(int line) {
    fail(line, "expressions or tags nested deeper than {} levels (the template engine's limit)", kMaxNesting);
  }
  // Recursion guard for the parse functions that call themselves (parentheses, `not not`,
  // `- -`, tags inside tags).
  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) {
      if (++p.nest_ > kMaxNesting) p.too_deep(p.peek().line ? p.peek().line : p.last_line_);
    }
    ~Nest() { --p.nest_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;
  };
  int nest_ = 0;
  // An integer literal; Python's are unbounded, ours 64-bit.
  int64_t int_literal(const Token& t) {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(t.value.data(), t.value.data() + t.value.size(), v);
    if (ec != std::errc() || end != t.value.data() + t.value.size())
      fail(t.line ? t.line : last_line_, "integer {} does not fit in 64 bits", t.value);
    return v;
  }

  NodePtr parse_statement() {
    Nest nest(*this);
    const Token& kw = next();
    const int line = kw.line;
    const std::string& k = kw.value;
    std::string which;
    if (k == "if") {
      auto n = node(Node::Kind::If, line);
      auto cond = parse_expression();
      expect(T::BlockEnd, "%}");
      while (true) {
        Body b = parse_body({"elif", "else", "endif"}, &which);
        n->branches.emplace_back(std::move(cond), std::move(b));
        if (which == "elif") {
          cond = parse_expression();
          expect(T::BlockEnd, "%}");
          continue;
        }
        if (which == "else") {
          expect(T::BlockEnd, "%}");
          n->else_body = parse_body({"endif"}, &which);
        }
        expect(T::BlockEnd, "%}");
        return n;
      }
    }
    if (k == "for") {
      auto n = node(Node::Kind::For, line);
      bool paren = is_op("(");
      if (paren) next();
      n->targets.push_back(expect_name());
      while (is_op(",")) {
        next();
        n->targets.push_back(expect_name());
      }
      if (paren) expect_op(")");
      if (!is_name("in")) fail(line, "expected 'in' in a for loop");
      next();
      n->expr = parse_or();  // no cond-expr: a trailing `if` filters the loop
      if (is_name("if")) {
        next();
        n->filter = parse_or();
      }
      if (is_name("recursive")) fail(line, "recursive for loops are not supported");
      expect(T::BlockEnd, "%}");
      n->body = parse_body({"else", "endfor"}, &which);
      if (which == "else") {
        expect(T::BlockEnd, "%}");
        n->else_body = parse_body({"endfor"}, &which);
      }
      expect(T::BlockEnd, "%}");
      return n;
    }
    if (k == "set") {
      auto n = node(Node::Kind::Set, line);
      n->targets.push_back(expect_name());
      if (is_op(".")) {
        next();
        n->targets.push_back(expect_name());
        n->attr_target = true;
      } else {
        while (is_op(",")) {
          next();
          n->targets.push_back(expect_name());
        }
      }
      if (peek().type == T::BlockEnd && !n->attr_target && n->targets.size() == 1) {
        next();
        n->kind = Node::Kind::SetBlock;
        n->body = parse_body({"endset"}, &which);
        expect(T::BlockEnd, "%}");
        return n;
      }
      expect_op("=");
      n->expr = parse_expression();
      if (is_op(",")) {  // `set a, b = x, y`: the value is a tuple
        auto tuple = expr(Expr::Kind::ListLit, line);
        tuple->name = "tuple";
        tuple->args.push_back(std::move(n->expr));
        while (is_op(",")) {
          next();
          tuple->args.push_back(parse_expression());
        }
        n->expr = std::move(tuple);
      }
      expect(T::BlockEnd, "%}");
      return n;
    }
    if (k == "macro") {
      auto n = node(Node::Kind::Macro, line);
      n->name = expect_name();
      expect_op("(");
      while (!is_op(")")) {
        std::string p = expect_name();
        ExprPtr def;
        if (is_op("=")) {
          next();
          def = parse_expression();
        }
        n->params.emplace_back(p, std::move(def));
        if (!is_op(")")) expect_op(",");
      }
      next();
      expect(T::BlockEnd, "%}");
      n->body = parse_body({"endmacro"}, &which);
      if (peek().type == T::Name) next();  // {% endmacro name %}
      expect(T::BlockEnd, "%}");
      return n;
    }
    if (k == "break" || k == "continue") {
      auto n = node(k == "break" ? Node::Kind::Break : Node::Kind::Continue, line);
      expect(T::BlockEnd, "%}");
      return n;
    }
    if (k == "generation") {  // transformers' AssistantTracker tag: renders its body as is
      auto n = node(Node::Kind::Generation, line);
      expect(T::BlockEnd, "%}");
      n->body = parse_body({"endgeneration"}, &which);
      expect(T::BlockEnd, "%}");
      return n;
    }
    fail(line, "encountered unknown tag '{}'", k);
  }

  ExprPtr parse_expression() {
    Nest nest(*this);
    auto e = parse_or();
    if (is_name("if")) {
      int line = next().line;
      auto c = expr(Expr::Kind::Cond, line);
      c->args.push_back(std::move(e));
      c->args.push_back(parse_or());
      if (is_name("else")) {
        next();
        c->args.push_back(parse_expression());
      } else {
        c->args.push_back(nullptr);
      }
      return seal(std::move(c));
    }
    return e;
  }
  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, int line) {
    auto b = expr(Expr::Kind::Binary, line);
    b->name = op;
    b->args.push_back(std::move(l));
    b->args.push_back(std::move(r));
    return seal(std::move(b));
  }
  ExprPtr parse_or() {
    auto l = parse_and();
    while (is_name("or")) {
      int line = next().line;
      l = binary("or", std::move(l), parse_and(), line);
    }
    return l;
  }
  ExprPtr parse_and() {
    auto l = parse_not();
    while (is_name("and")) {
      int line = next().line;
      l = binary("and", std::move(l), parse_not(), line);
    }
    return l;
  }
  ExprPtr parse_not() {
    if (is_name("not")) {
      Nest nest(*this);
      int line = next().line;
      auto u = expr(Expr::Kind::Unary, line);
      u->name = "not";
      u->args.push_back(parse_not());
      return seal(std::move(u));
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    auto l = parse_math1();
    while (true) {
      const Token& t = peek();
      std::string op;
      if (t.type == T::Op && (t.value == "==" || t.value == "!=" || t.value == "<" || t.value == ">" ||
                              t.value == "<=" || t.value == ">="))
        op = t.value;
      else if (is_name("in")) op = "in";
      else if (is_name("not") && is_name("in", 1)) op = "notin";
      else return l;
      int line = next().line;
      if (op == "notin") next();
      l = binary(op, std::move(l), parse_math1(), line);
    }
  }
  ExprPtr parse_math1() {
    auto l = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& t = next();
      l = binary(t.value, std::move(l), parse_concat(), t.line);
    }
    return l;
  }
  ExprPtr parse_concat() {
    auto l = parse_math2();
    while (is_op("~")) {
      int line = next().line;
      l = binary("~", std::move(l), parse_math2(), line);
    }
    return l;
  }
  ExprPtr parse_math2() {
    auto l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& t = next();
      l = binary(t.value, std::move(l), parse_pow(), t.line);
    }
    return l;
  }
  ExprPtr parse_pow() {
    auto l = parse_unary(true);
    while (is_op("**")) {
      int line = next().line;
      l = binary("**", std::move(l), parse_unary(true), line);
    }
    return l;
  }
  ExprPtr parse_unary(bool with_filter) {
    if (is_op("-") || is_op("+")) {
      Nest nest(*this);
      const Token& t = next();
      auto u = expr(Expr::Kind::Unary, t.line);
      u->name = t.value;
      u->args.push_back(parse_unary(false));
      u = seal(std::move(u));
      return with_filter ? parse_filters(std::move(u)) : std::move(u);
    }
    auto e = parse_postfix(parse_primary());
    return with_filter ? parse_filters(std::move(e)) : std::move(e);
  }
  void parse_call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().type == T::Name && is_op("=", 1)) {
        std::string k = next().value;
        next();
        e.kwargs.emplace_back(k, parse_expression());
      } else {
        e.args.push_back(parse_expression());
      }
      if (!is_op(")")) expect_op(",");
    }
    next();
  }
  ExprPtr parse_filters(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        int line = next().line;
        auto f = expr(Expr::Kind::Filter, line);
        f->name = expect_name();
        while (is_op(".")) {  // dotted filter names are not used by chat templates
          next();
          f->name.append(".").append(expect_name());
        }
        f->args.push_back(std::move(e));
        if (is_op("(")) parse_call_args(*f);
        e = seal(std::move(f));
      } else if (is_name("is")) {
        int line = next().line;
        auto t = expr(Expr::Kind::Test, line);
        if (is_name("not")) {
          next();
          t->negated = true;
        }
        t->name = expect_name();
        t->args.push_back(std::move(e));
        if (is_op("(")) {
          parse_call_args(*t);
        } else {
          // One argument without parentheses: `is equalto 'x'`, `is divisibleby 3`.
          const Token& n = peek();
          bool starts_value = n.type == T::String || n.type == T::Int || n.type == T::Float ||
                              is_op("[") || is_op("{") ||
                              (n.type == T::Name && n.value != "and" && n.value != "or" && n.value != "else" &&
                               n.value != "if" && n.value != "in" && n.value != "is" && n.value != "not");
          if (starts_value) t->args.push_back(parse_postfix(parse_primary()));
        }
        e = seal(std::move(t));
      } else {
        return e;
      }
    }
  }
  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        int line = next().line;
        auto a = expr(Expr::Kind::Attr, line);
        if (peek().type == T::Int) {  // `x.0` is x[0] in Jinja
          a->kind = Expr::Kind::Item;
          a->args.push_back(std::move(e));
          auto idx = expr(Expr::Kind::Literal, line);
          idx->value = Value(int_literal(next()));
          a->args.push_back(std::move(idx));
        } else {
          a->name = expect_name();
          a->args.push_back(std::move(e));
        }
        e = seal(std::move(a));
      } else if (is_op("[")) {
        int line = next().line;
        ExprPtr parts[3];
        int n_colons = 0;
        while (!is_op("]")) {
          if (is_op(":")) {
            next();
            if (++n_colons > 2) fail(line, "too many ':' in a subscript");
            continue;
          }
          if (parts[n_colons]) fail(line, "expected ':' or ']' in a subscript");
          parts[n_colons] = parse_expression();
        }
        next();
        auto s = expr(n_colons ? Expr::Kind::Slice : Expr::Kind::Item, line);
        s->args.push_back(std::move(e));
        if (!n_colons && !parts[0]) fail(line, "empty subscript");
        for (int i = 0; i < (n_colons ? 3 : 1); ++i) s->args.push_back(std::move(parts[i]));
        e = seal(std::move(s));
      } else if (is_op("(")) {
        auto c = expr(Expr::Kind::Call, peek().line);
        c->args.push_back(std::move(e));
        parse_call_args(*c);
        e = seal(std::move(c));
      } else {
        return e;
      }
    }
  }
  ExprPtr parse_primary() {
    const Token& t = peek();
    int line = t.line ? t.line : last_line_;
    switch (t.type) {
      case T::Name: {
        next();
        auto e = expr(Expr::Kind::Literal, line);
        if (t.value == "true" || t.value == "True") e->value = Value(true);
        else if (t.value == "false" || t.value == "False") e->value = Value(false);
        else if (t.value == "none" || t.value == "None") e->value = Value::none();
        else {
          e->kind = Expr::Kind::Name;
          e->name = t.value;
        }
        return e;
      }
      case T::String: {
        std::string s = next().value;
        while (peek().type == T::String) s += next().value;  // adjacent literals concatenate
        auto e = expr(Expr::Kind::Literal, line);
        e->value = Value(s);
        return e;
      }
      case T::Int: {
        auto e = expr(Expr::Kind::Literal, line);
        e->value = Value(int_literal(next()));
        return e;
      }
      case T::Float: {
        auto e = expr(Expr::Kind::Literal, line);
        e->value = Value(std::strtod(next().value.c_str(), nullptr));  // 1e999 is inf, as in Python
        return e;
      }
      case T::Op:
        if (t.value == "(") {
          next();
          auto inner = parse_expression();
          if (is_op(",")) {  // tuple; we represent tuples as lists
            auto tuple = expr(Expr::Kind::ListLit, line);
            tuple->name = "tuple";
            tuple->args.push_back(std::move(inner));
            while (is_op(",")) {
              next();
              if (is_op(")")) break;
              tuple->args.push_back(parse_expression());
            }
            inner = seal(std::move(tuple));
          }
          expect_op(")");
          return inner;
        }
        if (t.value == "[") {
          next();
          auto e = expr(Expr::Kind::ListLit, line);
          while (!is_op("]")) {
            e->args.push_back(parse_expression());
            if (!is_op("]")) expect_op(",");
          }
          next();
          return seal(std::move(e));
        }
        if (t.value == "{") {
          next();
          auto e = expr(Expr::Kind::DictLit, line);
          while (!is_op("}")) {
            e->args.push_back(parse_expression());
            expect_op(":");
            e->args.push_back(parse_expression());
            if (!is_op("}")) expect_op(",");
          }
          next();
          return seal(std::move(e));
        }
        break;
      default: break;
    }
    fail(line, "unexpected '{}'", describe(t));
  }
};

}  // namespace

TemplateAst parse_template(const std::string& source, const std::string& name) {
  Parser p(lex(source, name), name);
  std::string which;
  TemplateAst ast;
  ast.name = name;
  ast.body = p.parse_body({}, &which);
  return ast;
}

}  // namespace lorafit::jinja
