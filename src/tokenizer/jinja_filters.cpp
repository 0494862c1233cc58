// jinja2's built-in filters and tests that chat templates use, plus transformers' tojson.
// GCC 12 at -O3 reports a false -Wrestrict inside std::string for "literal" + string
// (GCC bug 105329); the code is fine, so the warning is off for this file.
#pragma GCC diagnostic ignored "-Wrestrict"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_limits.h"
#include "tokenizer/jinja_text.h"

namespace lorafit::jinja {
namespace {

using K = Value::Kind;
using FilterFn = std::function<Value(const Value&, CallArgs&)>;
using TestFn = std::function<bool(const Value&, CallArgs&)>;

int64_t to_int(const Value& v) { return v.kind() == K::Bool ? (v.as_bool() ? 1 : 0) : v.as_int(); }

// Python's int(float): NaN is a ValueError (jinja2's `int` then gives the default); anything
// outside 64 bits would be a big integer or an OverflowError: an error here.
Value float_to_int(double d, const Value& fallback) {
  if (std::isnan(d)) return fallback;
  if (!(d > -9.2233720368547758e18 && d < 9.2233720368547758e18))
    throw std::runtime_error(fmt::format("integer overflow: int({}) does not fit in 64 bits", python_float_repr(d)));
  return Value(static_cast<int64_t>(d));
}

// Attribute lookup for selectattr/map/sort/join(attribute=...): "a.b" walks dicts.
Value attr_path(const Value& item, const std::string& path) {
  Value cur = item;
  size_t pos = 0;
  while (true) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (cur.is_undefined()) return cur;
    cur = get_item(cur, Value(part));
    if (dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

Value select_impl(const Value& v, CallArgs& a, bool by_attr, bool keep) {
  size_t first = 0;
  std::string attr;
  if (by_attr) {
    if (a.args.empty()) throw std::runtime_error("selectattr/rejectattr needs an attribute name");
    attr = a.args[0].to_str();
    first = 1;
  }
  std::string test;
  CallArgs targs;
  if (a.args.size() > first) {
    test = a.args[first].to_str();
    targs.args.assign(a.args.begin() + static_cast<std::ptrdiff_t>(first) + 1, a.args.end());
  }
  ValueList out;
  for (const auto& item : iterate(v)) {
    Value x = by_attr ? attr_path(item, attr) : item;
    bool ok = test.empty() ? x.truthy() : call_test(test, x, targs);
    if (ok == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

const std::unordered_map<std::string, FilterFn>& filters() {
  static const std::unordered_map<std::string, FilterFn> f = [] {
    std::unordered_map<std::string, FilterFn> m;
    m["safe"] = [](const Value& v, CallArgs&) { return v; };
    m["string"] = [](const Value& v, CallArgs&) { return Value(v.to_str()); };
    m["trim"] = [](const Value& v, CallArgs& a) {
      Value chars = a.get(0, "chars", Value::none());
      return Value(py_strip(v.to_str(), chars.is_none() ? std::nullopt : std::optional<std::string>(chars.to_str()),
                            true, true));
    };
    m["upper"] = [](const Value& v, CallArgs&) { return Value(ascii_upper(v.to_str())); };
    m["lower"] = [](const Value& v, CallArgs&) { return Value(ascii_lower(v.to_str())); };
    m["capitalize"] = [](const Value& v, CallArgs&) { return Value(py_capitalize(v.to_str())); };
    m["title"] = [](const Value& v, CallArgs&) { return Value(py_title(v.to_str())); };
    m["length"] = [](const Value& v, CallArgs&) { return Value(static_cast<int64_t>(v.length())); };
    m["count"] = m["length"];
    m["default"] = [](const Value& v, CallArgs& a) {
      bool boolean = a.get(1, "boolean", Value(false)).truthy();
      if (v.is_undefined() || (boolean && !v.truthy())) return a.get(0, "default_value", Value(""));
      return v;
    };
    m["d"] = m["default"];
    m["first"] = [](const Value& v, CallArgs&) {
      ValueList items = iterate(v);
      return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
    };
    m["last"] = [](const Value& v, CallArgs&) {
      ValueList items = iterate(v);
      return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
    };
    m["join"] = [](const Value& v, CallArgs& a) {
      std::string sep = a.get(0, "d", Value("")).to_str();
      Value attr = a.get(1, "attribute", Value::none());
      std::string out;
      bool first = true;
      for (const auto& x : iterate(v)) {
        out += (first ? "" : sep) + (attr.is_none() ? x : attr_path(x, attr.to_str())).to_str();
        first = false;
      }
      return Value(out);
    };
    m["replace"] = [](const Value& v, CallArgs& a) {
      Value cnt = a.get(2, "count", Value::none());
      return Value(py_replace(v.to_str(), a.get(0, "old").to_str(), a.get(1, "new").to_str(),
                              cnt.is_none() ? -1 : to_int(cnt)));
    };
    m["int"] = [](const Value& v, CallArgs& a) {
      Value def = a.get(0, "default", Value(static_cast<int64_t>(0)));
      if (v.kind() == K::Int || v.kind() == K::Bool) return Value(to_int(v));
      if (v.kind() == K::Float) return float_to_int(v.as_double(), def);
      if (v.is_string()) {
        std::string s = py_strip(v.str(), std::nullopt, true, true);
        try {
          size_t used = 0;
          int64_t i = std::stoll(s, &used);
          if (used == s.size()) return Value(i);
        } catch (const std::exception&) {  // not an integer, or one beyond 64 bits: try float
        }
        // int(float(s)); strtod's hex floats are not Python's, so those stay the default.
        char* end = nullptr;
        double d = std::strtod(s.c_str(), &end);
        if (!s.empty() && end == s.c_str() + s.size() && s.find_first_of("xXpP") == std::string::npos)
          return float_to_int(d, def);
      }
      return def;
    };
    m["float"] = [](const Value& v, CallArgs& a) {
      if (v.is_number() || v.kind() == K::Bool) return Value(v.kind() == K::Bool ? (v.as_bool() ? 1.0 : 0.0) : v.as_double());
      if (v.is_string()) {
        try {
          return Value(std::stod(v.str()));
        } catch (const std::exception&) {
        }
      }
      return a.get(0, "default", Value(0.0));
    };
    m["abs"] = [](const Value& v, CallArgs&) {
      if (v.kind() == K::Int) {
        if (v.as_int() == INT64_MIN) throw std::runtime_error("integer overflow: abs(-9223372036854775808)");
        return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
      }
      return Value(std::fabs(v.as_double()));
    };
    m["list"] = [](const Value& v, CallArgs&) { return Value::list(iterate(v)); };
    m["items"] = [](const Value& v, CallArgs&) {
      ValueList out;
      if (v.is_undefined()) return Value::list();
      if (!v.is_dict()) throw std::runtime_error("Can only get item pairs from a mapping.");
      for (const auto& [k, x] : v.entries()) out.push_back(Value::tuple({Value(k), x}));
      return Value::list(std::move(out));
    };
    m["dictsort"] = [](const Value& v, CallArgs& a) {
      Value items = filters().at("items")(v, a);
      ValueList out = items.items();
      std::stable_sort(out.begin(), out.end(),
                       [](const Value& x, const Value& y) { return values_compare(x.items()[0], y.items()[0]) < 0; });
      return Value::list(std::move(out));
    };
    m["reverse"] = [](const Value& v, CallArgs&) {
      if (v.is_string()) {
        auto cps = split_code_points(v.str());
        std::string out;
        for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
        return Value(out);
      }
      ValueList items = iterate(v);
      std::reverse(items.begin(), items.end());
      return Value::list(std::move(items));
    };
    m["sort"] = [](const Value& v, CallArgs& a) {
      bool rev = a.get(0, "reverse", Value(false)).truthy();
      Value attr = a.get(2, "attribute", Value::none());
      ValueList items = iterate(v);
      auto key = [&](const Value& x) { return attr.is_none() ? x : attr_path(x, attr.to_str()); };
      std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        int c = values_compare(key(x), key(y));
        return rev ? c > 0 : c < 0;
      });
      return Value::list(std::move(items));
    };
    m["unique"] = [](const Value& v, CallArgs&) {
      ValueList out;
      for (const auto& x : iterate(v)) {
        bool seen = false;
        for (const auto& y : out) seen = seen || values_equal(x, y);
        if (!seen) out.push_back(x);
      }
      return Value::list(std::move(out));
    };
    m["sum"] = [](const Value& v, CallArgs& a) {
      Value acc = a.get(1, "start", Value(static_cast<int64_t>(0)));
      Value attr = a.get(0, "attribute", Value::none());
      for (const auto& x : iterate(v)) acc = binary_op("+", acc, attr.is_none() ? x : attr_path(x, attr.to_str()));
      return acc;
    };
    m["min"] = [](const Value& v, CallArgs&) {
      ValueList items = iterate(v);
      if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
      return *std::min_element(items.begin(), items.end(),
                               [](const Value& x, const Value& y) { return values_compare(x, y) < 0; });
    };
    m["max"] = [](const Value& v, CallArgs&) {
      ValueList items = iterate(v);
      if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
      return *std::max_element(items.begin(), items.end(),
                               [](const Value& x, const Value& y) { return values_compare(x, y) < 0; });
    };
    m["round"] = [](const Value& v, CallArgs& a) {
      int64_t prec = to_int(a.get(0, "precision", Value(static_cast<int64_t>(0))));
      double p = std::pow(10.0, static_cast<double>(prec));
      return Value(std::nearbyint(v.as_double() * p) / p);  // round-half-even like Python
    };
    m["tojson"] = [](const Value& v, CallArgs& a) {
      // transformers: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
      JsonDumpOptions o;
      Value indent = a.get(1, "indent", Value::none());
      if (!indent.is_none()) {
        int64_t n = to_int(indent);
        if (n > kMaxJsonIndent) throw std::runtime_error(fmt::format("tojson indent {} is larger than {}", n, kMaxJsonIndent));
        o.indent = static_cast<int>(std::max<int64_t>(n, -1));
      }
      o.ensure_ascii = a.get(0, "ensure_ascii", Value(false)).truthy();
      o.sort_keys = a.get(3, "sort_keys", Value(false)).truthy();
      Value seps = a.get(2, "separators", Value::none());
      if (seps.is_list() && seps.items().size() == 2) {
        o.item_sep = seps.items()[0].to_str();
        o.key_sep = seps.items()[1].to_str();
      }
      if (v.is_undefined()) throw std::runtime_error("Object of type Undefined is not JSON serializable");
      return Value(json_dumps(v, o));
    };
    m["select"] = [](const Value& v, CallArgs& a) { return select_impl(v, a, false, true); };
    m["reject"] = [](const Value& v, CallArgs& a) { return select_impl(v, a, false, false); };
    m["selectattr"] = [](const Value& v, CallArgs& a) { return select_impl(v, a, true, true); };
    m["rejectattr"] = [](const Value& v, CallArgs& a) { return select_impl(v, a, true, false); };
    m["map"] = [](const Value& v, CallArgs& a) {
      ValueList out;
      Value attr = a.get(99, "attribute", Value::none());
      if (!attr.is_none()) {
        Value def = a.get(99, "default", Value::undefined());
        for (const auto& x : iterate(v)) {
          Value r = attr_path(x, attr.to_str());
          out.push_back(r.is_undefined() && !def.is_undefined() ? def : r);
        }
        return Value::list(std::move(out));
      }
      if (a.args.empty()) throw std::runtime_error("map requires a filter name or attribute=");
      std::string fname = a.args[0].to_str();
      CallArgs fargs;
      fargs.args.assign(a.args.begin() + 1, a.args.end());
      for (const auto& x : iterate(v)) out.push_back(call_filter(fname, x, fargs));
      return Value::list(std::move(out));
    };
    return m;
  }();
  return f;
}

const std::unordered_map<std::string, TestFn>& tests() {
  static const std::unordered_map<std::string, TestFn> t = [] {
    std::unordered_map<std::string, TestFn> m;
    auto arg = [](CallArgs& a) {
      if (a.args.empty()) throw std::runtime_error("test needs an argument");
      return a.args[0];
    };
    m["defined"] = [](const Value& v, CallArgs&) { return !v.is_undefined(); };
    m["undefined"] = [](const Value& v, CallArgs&) { return v.is_undefined(); };
    m["none"] = [](const Value& v, CallArgs&) { return v.is_none(); };
    m["boolean"] = [](const Value& v, CallArgs&) { return v.kind() == K::Bool; };
    m["true"] = [](const Value& v, CallArgs&) { return v.kind() == K::Bool && v.as_bool(); };
    m["false"] = [](const Value& v, CallArgs&) { return v.kind() == K::Bool && !v.as_bool(); };
    m["integer"] = [](const Value& v, CallArgs&) { return v.kind() == K::Int; };
    m["float"] = [](const Value& v, CallArgs&) { return v.kind() == K::Float; };
    m["number"] = [](const Value& v, CallArgs&) { return v.is_number() || v.kind() == K::Bool; };
    m["string"] = [](const Value& v, CallArgs&) { return v.is_string(); };
    m["mapping"] = [](const Value& v, CallArgs&) { return v.is_dict(); };
    // jinja2 asks Python: an Undefined is iterable and a sequence (it has __iter__/__len__).
    m["iterable"] = [](const Value& v, CallArgs&) { return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined(); };
    m["sequence"] = m["iterable"];
    m["callable"] = [](const Value& v, CallArgs&) { return v.kind() == K::Function; };
    m["lower"] = [](const Value& v, CallArgs&) { return v.is_string() && ascii_lower(v.str()) == v.str(); };
    m["upper"] = [](const Value& v, CallArgs&) { return v.is_string() && ascii_upper(v.str()) == v.str(); };
    m["odd"] = [](const Value& v, CallArgs&) { return to_int(v) % 2 != 0; };
    m["even"] = [](const Value& v, CallArgs&) { return to_int(v) % 2 == 0; };
    m["divisibleby"] = [arg](const Value& v, CallArgs& a) {
      const int64_t n = to_int(v), d = to_int(arg(a));
      // Python raises on a zero divisor; INT64_MIN % -1 overflows in C++ (every n is divisible by ±1)
      if (d == 0) throw std::runtime_error("integer division or modulo by zero");
      return d == -1 || n % d == 0;
    };
    m["sameas"] = [arg](const Value& v, CallArgs& a) {
      Value o = arg(a);
      if (v.identity() || o.identity()) return v.identity() == o.identity();
      return v.kind() == o.kind() && values_equal(v, o);  // None, True, False are singletons
    };
    m["eq"] = [arg](const Value& v, CallArgs& a) { return values_equal(v, arg(a)); };
    m["equalto"] = m["=="] = m["eq"];
    m["ne"] = [arg](const Value& v, CallArgs& a) { return !values_equal(v, arg(a)); };
    m["!="] = m["ne"];
    m["lt"] = [arg](const Value& v, CallArgs& a) { return values_compare(v, arg(a)) < 0; };
    m["le"] = [arg](const Value& v, CallArgs& a) { return values_compare(v, arg(a)) <= 0; };
    m["gt"] = [arg](const Value& v, CallArgs& a) { return values_compare(v, arg(a)) > 0; };
    m["ge"] = [arg](const Value& v, CallArgs& a) { return values_compare(v, arg(a)) >= 0; };
    m["lessthan"] = m["<"] = m["lt"];
    m["<="] = m["le"];
    m["greaterthan"] = m[">"] = m["gt"];
    m[">="] = m["ge"];
    m["in"] = [arg](const Value& v, CallArgs& a) { return binary_op("in", v, arg(a)).truthy(); };
    return m;
  }();
  return t;
}

}  // namespace

bool has_filter(const std::string& name) { return filters().count(name) > 0; }
bool has_test(const std::string& name) { return tests().count(name) > 0; }

Value call_filter(const std::string& name, const Value& v, CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) throw std::runtime_error("no filter named '" + name + "'");
  return it->second(v, args);
}

bool call_test(const std::string& name, const Value& v, CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) throw std::runtime_error("no test named '" + name + "'");
  return it->second(v, args);
}

}  // namespace lorafit::jinja
