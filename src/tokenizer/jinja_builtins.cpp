// Operators, attribute/item access and Python string/dict methods for the interpreter.
// Filters and tests live in jinja_filters.cpp.
// GCC 12 at -O3 reports a false -Wrestrict inside std::string for "literal" + string
// (GCC bug 105329); the code is fine, so the warning is off for this file.
#pragma GCC diagnostic ignored "-Wrestrict"

#include <cctype>
#include <cmath>
#include <optional>
#include <ctime>
#include <stdexcept>
#include <unordered_set>

#include <fmt/format.h>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_limits.h"
#include "tokenizer/jinja_text.h"

namespace lorafit::jinja {

using K = Value::Kind;

void raise_undefined(const Value& v) {
  const std::string& h = v.undefined_hint();
  throw std::runtime_error(h.empty() ? "value is undefined" : h);
}

static std::runtime_error type_error(const std::string& op, const Value& a, const Value& b) {
  return std::runtime_error("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" +
                            b.type_name() + "'");
}

static bool is_intlike(const Value& v) { return v.kind() == K::Int || v.kind() == K::Bool; }
static int64_t int_of(const Value& v) { return v.kind() == K::Bool ? (v.as_bool() ? 1 : 0) : v.as_int(); }

// Python integers are unbounded; ours are 64-bit, so a result that does not fit is an error
// (never a wrapped value, never undefined behaviour).
static std::runtime_error int_overflow(const std::string& op, int64_t x, int64_t y) {
  return std::runtime_error(fmt::format("integer overflow: {} {} {} does not fit in 64 bits", x, op, y));
}
static int64_t checked(const std::string& op, int64_t x, int64_t y) {
  int64_t r = 0;
  bool bad = op == "+" ? __builtin_add_overflow(x, y, &r)
           : op == "-" ? __builtin_sub_overflow(x, y, &r)
                       : __builtin_mul_overflow(x, y, &r);
  if (bad) throw int_overflow(op, x, y);
  return r;
}
static int64_t checked_pow(int64_t base, int64_t exp) {  // exp >= 0; by squaring
  int64_t r = 1, b = base;
  for (int64_t e = exp; e > 0; e >>= 1) {
    if ((e & 1) && __builtin_mul_overflow(r, b, &r)) throw int_overflow("**", base, exp);
    if (e > 1 && __builtin_mul_overflow(b, b, &b)) {
      if (r == 0) return 0;
      throw int_overflow("**", base, exp);
    }
  }
  return r;
}
// `seq * times` where the result would hold `unit * times` bytes or items.
static void check_repeat(size_t unit, int64_t times, size_t limit, const char* what) {
  if (times > 0 && unit > 0 && unit > limit / static_cast<uint64_t>(times))
    throw std::runtime_error(fmt::format("repeating a {} {} times is larger than the limit of {} {}", what, times,
                                         limit, what[0] == 's' ? "bytes" : "items"));
}

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return Value(values_equal(a, b));
  if (op == "!=") return Value(!values_equal(a, b));
  if (op == "~") return Value(a.to_str() + b.to_str());
  if (op == "in" || op == "notin") {
    bool found = false;
    if (b.is_string()) {
      if (!a.is_string()) throw std::runtime_error("'in <string>' requires string as left operand, not " + a.type_name());
      found = b.str().find(a.str()) != std::string::npos;
    } else if (b.is_dict()) {
      found = a.is_string() && b.find(a.str()) != nullptr;
    } else if (b.is_list()) {
      for (const auto& x : b.items()) found = found || values_equal(a, x);
    } else if (!b.is_undefined()) {
      throw std::runtime_error("argument of type '" + b.type_name() + "' is not iterable");
    }
    return Value(op == "in" ? found : !found);
  }
  if (a.is_undefined()) raise_undefined(a);
  if (b.is_undefined()) raise_undefined(b);
  if (op == "<" || op == ">" || op == "<=" || op == ">=") {
    int c = values_compare(a, b);
    return Value(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0);
  }
  const bool nums = (a.is_number() || a.kind() == K::Bool) && (b.is_number() || b.kind() == K::Bool);
  const bool ints = is_intlike(a) && is_intlike(b);
  if (op == "+") {
    if (ints) return Value(checked("+", int_of(a), int_of(b)));
    if (nums) return Value(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) {
      check_repeat(a.str().size() + b.str().size(), 1, kMaxStringBytes, "string");
      return Value(a.str() + b.str());
    }
    if (a.is_list() && b.is_list()) {
      check_repeat(a.items().size() + b.items().size(), 1, kMaxListItems, "list");
      ValueList items = a.items();
      items.insert(items.end(), b.items().begin(), b.items().end());
      return Value::list(std::move(items));
    }
    if (a.is_string())
      throw std::runtime_error("can only concatenate str (not \"" + b.type_name().substr(0, b.type_name().find(' ')) + "\") to str");
    throw type_error("+", a, b);
  }
  if (op == "*") {
    if (ints) return Value(checked("*", int_of(a), int_of(b)));
    if (nums) return Value(a.as_double() * b.as_double());
    const Value* seq = a.is_string() || a.is_list() ? &a : (b.is_string() || b.is_list() ? &b : nullptr);
    const Value* n = seq == &a ? &b : &a;
    if (seq && is_intlike(*n)) {
      int64_t times = std::max<int64_t>(0, int_of(*n));
      if (seq->is_string()) {
        check_repeat(seq->str().size(), times, kMaxStringBytes, "string");
        std::string out;
        for (int64_t i = 0; i < times; ++i) out += seq->str();
        return Value(out);
      }
      check_repeat(seq->items().size(), times, kMaxListItems, "list");
      ValueList out;
      for (int64_t i = 0; i < times; ++i) out.insert(out.end(), seq->items().begin(), seq->items().end());
      return Value::list(std::move(out));
    }
    throw type_error("*", a, b);
  }
  if (!nums) throw type_error(op, a, b);
  if (op == "-") return ints ? Value(checked("-", int_of(a), int_of(b))) : Value(a.as_double() - b.as_double());
  if (op == "/") {
    if (b.as_double() == 0) throw std::runtime_error("division by zero");
    return Value((ints ? static_cast<double>(int_of(a)) : a.as_double()) /
                 (ints ? static_cast<double>(int_of(b)) : b.as_double()));
  }
  if (op == "//" || op == "%") {
    if ((ints ? int_of(b) : b.as_double()) == 0) throw std::runtime_error("integer division or modulo by zero");
    if (ints) {  // Python floors toward negative infinity
      int64_t x = int_of(a), y = int_of(b);
      if (x == INT64_MIN && y == -1) {  // the one quotient that does not fit
        if (op == "%") return Value(int64_t{0});
        throw int_overflow("//", x, y);
      }
      int64_t q = x / y;
      if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
      return op == "//" ? Value(q) : Value(x - q * y);
    }
    double x = a.as_double(), y = b.as_double();
    double q = std::floor(x / y);
    return op == "//" ? Value(q) : Value(x - q * y);
  }
  if (op == "**") {
    if (ints && int_of(b) >= 0) {
      return Value(checked_pow(int_of(a), int_of(b)));
    }
    return Value(std::pow(a.as_double(), b.as_double()));
  }
  throw std::runtime_error("unknown operator " + op);
}

static const std::unordered_set<std::string> kStrMethods = {
    "startswith", "endswith", "split", "rsplit", "strip", "lstrip", "rstrip", "upper", "lower", "title",
    "capitalize", "replace", "find", "rfind", "count", "join", "format", "isdigit", "isalpha", "isspace",
    "splitlines"};
static const std::unordered_set<std::string> kDictMethods = {"get", "items", "keys", "values"};

bool has_method(const Value& obj, const std::string& name) {
  if (obj.is_string()) return kStrMethods.count(name) > 0;
  if (obj.is_dict()) return kDictMethods.count(name) > 0 && !is_namespace(obj);
  return false;
}

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) raise_undefined(obj);
  if (has_method(obj, name))
    return Value::function(name, [obj, name](CallArgs& a) { return call_method(obj, name, a); });
  if (obj.is_dict()) {
    if (const Value* v = obj.find(name)) return *v;
  }
  return Value::undefined(fmt::format("'{}' has no attribute '{}'", obj.type_name(), name));
}

static int64_t norm_index(int64_t i, size_t n) { return i < 0 ? i + static_cast<int64_t>(n) : i; }

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) raise_undefined(obj);
  if (obj.is_dict()) {
    if (key.is_string()) {
      if (const Value* v = obj.find(key.str())) return *v;
      if (has_method(obj, key.str())) return get_attr(obj, key.str());
    }
    return Value::undefined(fmt::format("'{}' has no attribute '{}'", obj.type_name(), key.to_str()));
  }
  if ((obj.is_list() || obj.is_string()) && is_intlike(key)) {
    if (obj.is_list()) {
      int64_t i = norm_index(int_of(key), obj.items().size());
      if (i >= 0 && i < static_cast<int64_t>(obj.items().size())) return obj.items()[static_cast<size_t>(i)];
    } else {
      auto cps = split_code_points(obj.str());
      int64_t i = norm_index(int_of(key), cps.size());
      if (i >= 0 && i < static_cast<int64_t>(cps.size())) return Value(cps[static_cast<size_t>(i)]);
    }
    return Value::undefined(fmt::format("'{}' has no element {}", obj.type_name(), key.to_str()));
  }
  if (key.is_string()) return get_attr(obj, key.str());
  return Value::undefined(fmt::format("'{}' has no attribute '{}'", obj.type_name(), key.to_str()));
}

Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) raise_undefined(obj);
  ValueList src;
  std::vector<std::string> cps;
  size_t n;
  if (obj.is_list()) n = obj.items().size();
  else if (obj.is_string()) n = (cps = split_code_points(obj.str())).size();
  else throw std::runtime_error("'" + obj.type_name() + "' object is not subscriptable");
  // Python slice semantics (PySlice_AdjustIndices).
  int64_t st = step.is_none() ? 1 : int_of(step);
  if (st == 0) throw std::runtime_error("slice step cannot be zero");
  const int64_t len = static_cast<int64_t>(n);
  auto adjust = [&](const Value& v, int64_t def) -> int64_t {
    if (v.is_none()) return def;
    int64_t i = int_of(v);
    if (i < 0) {
      i += len;
      if (i < 0) i = st < 0 ? -1 : 0;
    } else if (i >= len) {
      i = st < 0 ? len - 1 : len;
    }
    return i;
  };
  int64_t b = adjust(start, st < 0 ? len - 1 : 0);
  int64_t e = adjust(stop, st < 0 ? -1 : len);
  std::vector<size_t> idx;
  // b and e lie in [-1, len]; stop before `i + st` could overflow.
  for (int64_t i = b; st > 0 ? i < e : i > e;) {
    idx.push_back(static_cast<size_t>(i));
    if (__builtin_add_overflow(i, st, &i)) break;
  }
  if (obj.is_list()) {
    ValueList out;
    for (size_t i : idx) out.push_back(obj.items()[i]);
    return Value::list(std::move(out));
  }
  std::string out;
  for (size_t i : idx) out += cps[i];
  return Value(out);
}

static Value str_method(const std::string& s, const std::string& name, CallArgs& a) {
  auto opt_str = [&](size_t i, const char* kw) -> std::optional<std::string> {
    Value v = a.get(i, kw, Value::none());
    if (v.is_none()) return std::nullopt;
    if (!v.is_string()) throw std::runtime_error(name + "() argument must be str or None");
    return v.str();
  };
  if (name == "startswith" || name == "endswith") {
    Value p = a.get(0, "prefix");
    std::vector<std::string> pats;
    if (p.is_string()) pats.push_back(p.str());
    else if (p.is_list())
      for (const auto& x : p.items()) pats.push_back(x.to_str());
    else throw std::runtime_error(name + " first arg must be str or a tuple of str, not " + p.type_name());
    for (const auto& pat : pats) {
      if (pat.size() > s.size()) continue;
      if (name == "startswith" ? s.compare(0, pat.size(), pat) == 0 : s.compare(s.size() - pat.size(), pat.size(), pat) == 0)
        return Value(true);
    }
    return Value(false);
  }
  if (name == "split" || name == "rsplit") {
    Value ms = a.get(1, "maxsplit", Value(static_cast<int64_t>(-1)));
    ValueList out;
    for (auto& part : py_split(s, opt_str(0, "sep"), int_of(ms), name == "rsplit")) out.emplace_back(part);
    return Value::list(std::move(out));
  }
  if (name == "splitlines") {
    ValueList out;
    for (auto& part : py_split(s, std::string("\n"), -1, false)) out.emplace_back(part);
    if (!out.empty() && out.back().str().empty()) out.pop_back();
    return Value::list(std::move(out));
  }
  if (name == "strip") return Value(py_strip(s, opt_str(0, "chars"), true, true));
  if (name == "lstrip") return Value(py_strip(s, opt_str(0, "chars"), true, false));
  if (name == "rstrip") return Value(py_strip(s, opt_str(0, "chars"), false, true));
  if (name == "upper") return Value(ascii_upper(s));
  if (name == "lower") return Value(ascii_lower(s));
  if (name == "title") return Value(py_title(s));
  if (name == "capitalize") return Value(py_capitalize(s));
  if (name == "replace") {
    Value cnt = a.get(2, "count", Value(static_cast<int64_t>(-1)));
    return Value(py_replace(s, a.get(0, "old").to_str(), a.get(1, "new").to_str(), int_of(cnt)));
  }
  if (name == "find" || name == "rfind" || name == "count") {
    std::string sub = a.get(0, "sub").to_str();
    if (name == "count") {
      if (sub.empty()) return Value(static_cast<int64_t>(split_code_points(s).size() + 1));
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value(n);
    }
    size_t p = name == "find" ? s.find(sub) : s.rfind(sub);
    return Value(p == std::string::npos ? int64_t{-1} : static_cast<int64_t>(split_code_points(s.substr(0, p)).size()));
  }
  if (name == "join") {
    std::string out;
    bool first = true;
    for (const auto& x : iterate(a.get(0, "iterable"))) {
      if (!x.is_string()) throw std::runtime_error("sequence item: expected str instance, " + x.type_name() + " found");
      out += (first ? "" : s) + x.str();
      first = false;
    }
    return Value(out);
  }
  if (name == "format") return Value(py_format(s, a));
  if (name == "isdigit" || name == "isalpha" || name == "isspace") {
    if (s.empty()) return Value(false);
    for (unsigned char c : s) {
      bool ok = name == "isdigit" ? std::isdigit(c) : name == "isalpha" ? std::isalpha(c) : std::isspace(c);
      if (!ok) return Value(false);
    }
    return Value(true);
  }
  throw std::runtime_error("'str object' has no attribute '" + name + "'");
}

Value call_method(const Value& obj, const std::string& name, CallArgs& a) {
  if (obj.is_string()) return str_method(obj.str(), name, a);
  if (obj.is_dict()) {
    if (name == "get") {
      const Value* v = obj.find(a.get(0, "key").to_str());
      return v ? *v : a.get(1, "default", Value::none());
    }
    ValueList out;
    for (const auto& [k, v] : obj.entries()) {
      if (name == "items") out.push_back(Value::tuple({Value(k), v}));
      else if (name == "keys") out.emplace_back(k);
      else out.push_back(v);
    }
    return Value::list(std::move(out));
  }
  throw std::runtime_error("'" + obj.type_name() + "' has no attribute '" + name + "'");
}

ValueList iterate(const Value& v) {
  switch (v.kind()) {
    case K::Undefined: return {};
    case K::List: return v.items();
    case K::Dict: {
      ValueList keys;
      for (const auto& [k, x] : v.entries()) keys.emplace_back(k);
      return keys;
    }
    case K::String: {
      ValueList out;
      for (auto& cp : split_code_points(v.str())) out.emplace_back(cp);
      return out;
    }
    default: throw std::runtime_error("'" + v.type_name() + "' object is not iterable");
  }
}

// Namespaces are dicts whose identity is remembered here (per process; they are few and
// short-lived, so the set holds weak references by address only while rendering).
static thread_local std::unordered_set<const void*> g_namespaces;

bool is_namespace(const Value& v) { return v.is_dict() && g_namespaces.count(v.identity()) > 0; }

void add_globals(ValueDict& g) {
  g_namespaces.clear();
  g.emplace_back("range", Value::function("range", [](CallArgs& a) {
                   int64_t start = 0, stop, step = 1;
                   if (a.args.size() == 1) stop = int_of(a.args[0]);
                   else if (a.args.size() >= 2) {
                     start = int_of(a.args[0]);
                     stop = int_of(a.args[1]);
                     if (a.args.size() > 2) step = int_of(a.args[2]);
                   } else throw std::runtime_error("range expected at least 1 argument, got 0");
                   if (step == 0) throw std::runtime_error("range() arg 3 must not be zero");
                   // Python's length formula, in unsigned arithmetic so no step overflows.
                   uint64_t n = 0;
                   if (step > 0 && start < stop)
                     n = (static_cast<uint64_t>(stop) - static_cast<uint64_t>(start) - 1) / static_cast<uint64_t>(step) + 1;
                   else if (step < 0 && start > stop)
                     n = (static_cast<uint64_t>(start) - static_cast<uint64_t>(stop) - 1) /
                             (0 - static_cast<uint64_t>(step)) + 1;
                   if (n > kMaxListItems)
                     throw std::runtime_error(fmt::format("range of {} items is larger than the limit of {}", n,
                                                          kMaxListItems));
                   ValueList out;
                   out.reserve(n);
                   for (uint64_t k = 0; k < n; ++k)
                     out.emplace_back(static_cast<int64_t>(static_cast<uint64_t>(start) + k * static_cast<uint64_t>(step)));
                   return Value::list(std::move(out));
                 }));
  auto kwargs_dict = [](CallArgs& a) {
    Value d = Value::dict();
    for (const auto& x : a.args)
      if (x.is_dict())
        for (const auto& [k, v] : x.entries()) d.set(k, v);
    for (const auto& [k, v] : a.kwargs) d.set(k, v);
    return d;
  };
  g.emplace_back("dict", Value::function("dict", kwargs_dict));
  g.emplace_back("namespace", Value::function("namespace", [kwargs_dict](CallArgs& a) {
                   Value d = kwargs_dict(a);
                   g_namespaces.insert(d.identity());
                   return d;
                 }));
  g.emplace_back("raise_exception", Value::function("raise_exception", [](CallArgs& a) -> Value {
                   throw std::runtime_error("template raised an exception: " + a.get(0, "message").to_str());
                 }));
  g.emplace_back("strftime_now", Value::function("strftime_now", [](CallArgs& a) {
                   std::time_t t = std::time(nullptr);
                   std::tm tm{};
                   tm = *std::localtime(&t);  // renders are single-threaded
                   char buf[256];
                   size_t n = std::strftime(buf, sizeof buf, a.get(0, "format").to_str().c_str(), &tm);
                   return Value(std::string(buf, n));
                 }));
}

}  // namespace lorafit::jinja
