// Tree-walking interpreter for the parsed template (statements and expressions).
// GCC 12 at -O3 reports a false -Wrestrict inside std::string for "literal" + string
// (GCC bug 105329); the code is fine, so the warning is off for this file.
#pragma GCC diagnostic ignored "-Wrestrict"

#include <unordered_map>

#include "tokenizer/jinja.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_limits.h"
#include "util/error.h"
#include "util/one_line.h"

namespace lorafit::jinja {
namespace {

enum class Flow { Normal, Break, Continue };

class Interp {
 public:
  Interp(const TemplateAst& ast, const Value& context, const std::unordered_map<const void*, int>* tracked)
      : ast_(ast), tracked_(tracked) {
    ValueDict globals;
    add_globals(globals);
    scopes_.emplace_back();
    for (auto& [k, v] : globals) scopes_.back()[k] = v;
    for (const auto& [k, v] : context.entries()) scopes_.back()[k] = v;
    scopes_.emplace_back();  // template-level `set` goes here
    out_stack_.push_back(&result_.text);
  }

  RenderResult run() {
    if (exec_body(ast_.body) != Flow::Normal) fail(0, "'break' or 'continue' outside a loop");
    return std::move(result_);
  }

 private:
  const TemplateAst& ast_;
  const std::unordered_map<const void*, int>* tracked_;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
  std::vector<std::string*> out_stack_;
  RenderResult result_;
  int current_index_ = -1;
  int loop_depth_ = 0;
  int call_depth_ = 0;           // macro calls in progress
  int eval_depth_ = 0;           // eval() frames in progress
  int64_t loop_iterations_ = 0;  // all `for` iterations so far (kMaxLoopIterations)

  template <class... A>
  [[noreturn]] void fail(int line, fmt::format_string<A...> f, A&&... a) {
    throw Error("{}:{}: {}", ast_.name, line, fmt::format(f, std::forward<A>(a)...));
  }

  void write(const std::string& s) {
    if (s.empty()) return;
    std::string* out = out_stack_.back();
    if (out == &result_.text && current_index_ >= 0) {
      size_t begin = out->size();
      auto& spans = result_.spans;
      if (!spans.empty() && spans.back().index == current_index_ && spans.back().end == begin)
        spans.back().end = begin + s.size();
      else
        spans.push_back({begin, begin + s.size(), current_index_});
    }
    if (out->size() + s.size() > kMaxStringBytes)
      throw Error("{}: rendered output passes {} MiB (the template engine's limit)", ast_.name, kMaxStringBytes >> 20);
    *out += s;
  }

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto f = it->find(name);
      if (f != it->end()) return f->second;
    }
    return Value::undefined("'" + name + "' is undefined");
  }
  void assign(const std::string& name, Value v) { scopes_.back()[name] = std::move(v); }

  Flow exec_body(const Body& body) {
    for (const auto& n : body) {
      Flow f = exec(*n);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Flow exec(const Node& n) {
    switch (n.kind) {
      case Node::Kind::Text: write(n.text); return Flow::Normal;
      case Node::Kind::Output: {
        Value v = eval(*n.expr);
        std::string text;
        try {
          text = v.to_str();  // may hit a value limit (nesting, size): name the line
        } catch (const std::runtime_error& e) {
          fail(n.line, "{}", one_line(e.what()));  // raise_exception may quote text with newlines
        }
        write(text);
        return Flow::Normal;
      }
      case Node::Kind::If:
        for (const auto& [cond, body] : n.branches)
          if (eval(*cond).truthy()) return exec_body(body);
        return exec_body(n.else_body);
      case Node::Kind::For: return exec_for(n);
      case Node::Kind::Set: {
        Value v = eval(*n.expr);
        if (n.attr_target) {
          Value ns = lookup(n.targets[0]);
          if (!is_namespace(ns)) fail(n.line, "cannot assign attribute on non-namespace object '{}'", n.targets[0]);
          ns.set(n.targets[1], v);
        } else if (n.targets.size() == 1) {
          assign(n.targets[0], v);
        } else {
          unpack(n.targets, v, n.line);
        }
        return Flow::Normal;
      }
      case Node::Kind::SetBlock: assign(n.targets[0], Value(capture(n.body))); return Flow::Normal;
      case Node::Kind::Macro: define_macro(n); return Flow::Normal;
      case Node::Kind::Break:
        if (!loop_depth_) fail(n.line, "'break' outside a loop");
        return Flow::Break;
      case Node::Kind::Continue:
        if (!loop_depth_) fail(n.line, "'continue' outside a loop");
        return Flow::Continue;
      case Node::Kind::Generation: return exec_body(n.body);
    }
    return Flow::Normal;
  }

  std::string capture(const Body& body) {
    std::string buf;
    out_stack_.push_back(&buf);
    Flow f = exec_body(body);
    out_stack_.pop_back();
    (void)f;
    return buf;
  }

  void unpack(const std::vector<std::string>& targets, const Value& v, int line) {
    ValueList items = iterate(v);
    if (items.size() != targets.size())
      fail(line, "cannot unpack {} values into {} names", items.size(), targets.size());
    for (size_t i = 0; i < targets.size(); ++i) assign(targets[i], items[i]);
  }

  Flow exec_for(const Node& n) {
    Value iterable = eval(*n.expr);
    if (iterable.kind() == Value::Kind::Dict) iterable = Value::list(iterate(iterable));
    if (!iterable.is_undefined() && !iterable.is_list() && !iterable.is_string())
      fail(n.line, "'{}' is not iterable", iterable.type_name());
    ValueList all = iterate(iterable);
    scopes_.emplace_back();
    // `for x in xs if cond`: filter first, so loop.index/length count kept items only.
    ValueList items;
    for (const auto& item : all) {
      if (!n.filter) {
        items.push_back(item);
        continue;
      }
      bind_targets(n, item);
      if (eval(*n.filter).truthy()) items.push_back(item);
    }
    ++loop_depth_;
    const int saved_index = current_index_;
    for (size_t i = 0; i < items.size(); ++i) {
      if (++loop_iterations_ > kMaxLoopIterations)
        fail(n.line, "more than {} loop iterations in one render (the template engine's limit)", kMaxLoopIterations);
      scopes_.back().clear();
      bind_targets(n, items[i]);
      const size_t len = items.size();
      ValueDict loop = {
          {"index", Value(static_cast<int64_t>(i + 1))},
          {"index0", Value(static_cast<int64_t>(i))},
          {"revindex", Value(static_cast<int64_t>(len - i))},
          {"revindex0", Value(static_cast<int64_t>(len - i - 1))},
          {"first", Value(i == 0)},
          {"last", Value(i + 1 == len)},
          {"length", Value(static_cast<int64_t>(len))},
          {"depth", Value(static_cast<int64_t>(1))},
          {"depth0", Value(static_cast<int64_t>(0))},
          {"previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item")},
          {"nextitem", i + 1 < len ? items[i + 1] : Value::undefined("there is no next item")},
      };
      loop.emplace_back("cycle", Value::function("cycle", [i](CallArgs& a) {
                          if (a.args.empty()) throw std::runtime_error("no items for cycling given");
                          return a.args[i % a.args.size()];
                        }));
      assign("loop", Value::dict(std::move(loop)));
      if (tracked_) {
        auto it = tracked_->find(items[i].identity());
        if (it != tracked_->end()) current_index_ = it->second;
      }
      Flow f = exec_body(n.body);
      current_index_ = saved_index;
      if (f == Flow::Break) break;
    }
    --loop_depth_;
    if (items.empty()) {
      scopes_.back().clear();
      exec_body(n.else_body);
    }
    scopes_.pop_back();
    return Flow::Normal;
  }

  void bind_targets(const Node& n, const Value& item) {
    if (n.targets.size() == 1) assign(n.targets[0], item);
    else unpack(n.targets, item, n.line);
  }

  void define_macro(const Node& n) {
    const Node* node = &n;
    assign(n.name, Value::function(n.name, [this, node](CallArgs& a) {
             if (call_depth_ >= kMaxCallDepth)
               throw std::runtime_error(fmt::format("macro '{}': calls nested deeper than {} (recursion without end?)",
                                                    node->name, kMaxCallDepth));
             ++call_depth_;
             struct Leave {
               int& d;
               ~Leave() { --d; }
             } leave{call_depth_};
             scopes_.emplace_back();
             for (size_t i = 0; i < node->params.size(); ++i) {
               const auto& [pname, pdef] = node->params[i];
               Value v = a.get(i, pname.c_str(), Value::undefined("'" + pname + "' is undefined"));
               if (v.is_undefined() && pdef) v = eval(*pdef);
               assign(pname, v);
             }
             if (a.args.size() > node->params.size())
               throw std::runtime_error("macro '" + node->name + "' takes not more than " +
                                        std::to_string(node->params.size()) + " argument(s)");
             const int saved_depth = loop_depth_;
             loop_depth_ = 0;
             std::string out = capture(node->body);
             loop_depth_ = saved_depth;
             scopes_.pop_back();
             return Value(out);
           }));
  }

  CallArgs eval_args(const Expr& e, size_t first) {
    CallArgs a;
    for (size_t i = first; i < e.args.size(); ++i) a.args.push_back(eval(*e.args[i]));
    for (const auto& [k, v] : e.kwargs) a.kwargs.emplace_back(k, eval(*v));
    return a;
  }

  Value eval(const Expr& e) {
    // Macro calls inside expressions inside macros multiply the stack one eval() at a time.
    if (eval_depth_ >= kMaxEvalDepth)
      fail(e.line, "expressions nested deeper than {} levels through macro calls (the template engine's limit)",
           kMaxEvalDepth);
    ++eval_depth_;
    struct Leave {
      int& d;
      ~Leave() { --d; }
    } leave{eval_depth_};
    try {
      return eval_inner(e);
    } catch (const Error&) {
      throw;
    } catch (const std::runtime_error& err) {
      fail(e.line, "{}", one_line(err.what()));
    }
  }

  Value eval_inner(const Expr& e) {
    using K = Expr::Kind;
    switch (e.kind) {
      case K::Literal: return e.value;
      case K::Name: return lookup(e.name);
      case K::ListLit: {
        ValueList items;
        for (const auto& a : e.args) items.push_back(eval(*a));
        return e.name == "tuple" ? Value::tuple(std::move(items)) : Value::list(std::move(items));
      }
      case K::DictLit: {
        Value d = Value::dict();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          Value k = eval(*e.args[i]);
          d.set(k.to_str(), eval(*e.args[i + 1]));
        }
        return d;
      }
      case K::Attr: return get_attr(eval(*e.args[0]), e.name);
      case K::Item: return get_item(eval(*e.args[0]), eval(*e.args[1]));
      case K::Slice: {
        Value obj = eval(*e.args[0]);
        auto part = [&](size_t i) { return e.args[i] ? eval(*e.args[i]) : Value::none(); };
        return get_slice(obj, part(1), part(2), part(3));
      }
      case K::Call: {
        const Expr& callee = *e.args[0];
        if (callee.kind == K::Attr) {
          Value obj = eval(*callee.args[0]);
          if (has_method(obj, callee.name)) {
            CallArgs a = eval_args(e, 1);
            return call_method(obj, callee.name, a);
          }
          Value fn = get_attr(obj, callee.name);
          return call_value(fn, e);
        }
        return call_value(eval(callee), e);
      }
      case K::Filter: {
        if (!has_filter(e.name)) fail(e.line, "no filter named '{}'", e.name);
        Value v = eval(*e.args[0]);
        CallArgs a = eval_args(e, 1);
        return call_filter(e.name, v, a);
      }
      case K::Test: {
        if (!has_test(e.name)) fail(e.line, "no test named '{}'", e.name);
        Value v = eval(*e.args[0]);
        CallArgs a = eval_args(e, 1);
        return Value(call_test(e.name, v, a) != e.negated);
      }
      case K::Unary: {
        Value v = eval(*e.args[0]);
        if (e.name == "not") return Value(!v.truthy());
        if (v.is_undefined()) raise_undefined(v);
        if (!v.is_number()) throw std::runtime_error("bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
        if (e.name == "+") return v;
        if (v.kind() == Value::Kind::Int && v.as_int() == INT64_MIN)
          throw std::runtime_error("integer overflow: -(-9223372036854775808) does not fit in 64 bits");
        return v.kind() == Value::Kind::Int ? Value(-v.as_int()) : Value(-v.as_double());
      }
      case K::Binary: {
        if (e.name == "and") {
          Value l = eval(*e.args[0]);
          return l.truthy() ? eval(*e.args[1]) : l;
        }
        if (e.name == "or") {
          Value l = eval(*e.args[0]);
          return l.truthy() ? l : eval(*e.args[1]);
        }
        Value l = eval(*e.args[0]);
        Value r = eval(*e.args[1]);
        return binary_op(e.name, l, r);
      }
      case K::Cond:
        if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
        return e.args[2] ? eval(*e.args[2]) : Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
    return Value();
  }

  Value call_value(const Value& fn, const Expr& e) {
    if (fn.is_undefined()) raise_undefined(fn);
    if (fn.kind() != Value::Kind::Function) throw std::runtime_error("'" + fn.type_name() + "' is not callable");
    CallArgs a = eval_args(e, 1);
    return fn.fn()(a);
  }
};

}  // namespace

static std::shared_ptr<const TemplateAst> parse_or_throw(const std::string& source, const std::string& name) {
  try {
    return std::make_shared<TemplateAst>(parse_template(source, name));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // e.g. std::stoll on a number literal out of range
    throw Error("{}: syntax error: {}", name, one_line(e.what()));
  }
}

static std::shared_ptr<const TemplateAst> parse_checked(const std::string& source, const std::string& name) {
  if (source.size() > kMaxSourceBytes)
    throw Error("{}: template of {} bytes is larger than the limit of {} MiB", name, source.size(), kMaxSourceBytes >> 20);
  return parse_or_throw(source, name);
}

Template::Template(const std::string& source, std::string name)
    : name_(std::move(name)), ast_(parse_checked(source, name_)) {}
Template::~Template() = default;
Template::Template(const Template&) = default;
Template& Template::operator=(const Template&) = default;

RenderResult Template::render(const Value& context, const std::unordered_map<const void*, int>* tracked) const {
  LF_CHECK(context.is_dict(), "template context must be a dict");
  Interp interp(*ast_, context, tracked);
  try {
    return interp.run();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // a library exception that escaped an expression
    throw Error("{}: {}", name_, one_line(e.what()));
  }
}

}  // namespace lorafit::jinja
