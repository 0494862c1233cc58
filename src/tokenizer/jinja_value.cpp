// GCC 12 at -O3 reports a false -Wrestrict inside std::string for "literal" + string
// (GCC bug 105329); the code is fine, so the warning is off for this file.
#pragma GCC diagnostic ignored "-Wrestrict"

#include "tokenizer/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "tokenizer/jinja_limits.h"
#include "util/error.h"

namespace lorafit::jinja {

namespace {

// Depth of the recursive walks below (str, ==, <, tojson, to_json, from_json). Values can
// nest without bound (a loop wrapping a list in a list, or a namespace holding itself), so
// each walk stops at kMaxValueDepth instead of overflowing the stack.
thread_local int t_walk_depth = 0;
struct WalkGuard {
  WalkGuard() {
    if (++t_walk_depth > kMaxValueDepth) {
      --t_walk_depth;
      throw std::runtime_error(fmt::format("value nested deeper than {} lists/dicts (or containing itself)",
                                           kMaxValueDepth));
    }
  }
  ~WalkGuard() { --t_walk_depth; }
  WalkGuard(const WalkGuard&) = delete;
  WalkGuard& operator=(const WalkGuard&) = delete;
};

void check_string_size(size_t n) {
  if (n > kMaxStringBytes)
    throw std::runtime_error(fmt::format("string of more than {} MiB (the template engine's limit)",
                                         kMaxStringBytes >> 20));
}

// Containers whose last reference is being dropped. While one ~Value drains this list, the
// destructors of nested values only append to it, so freeing a chain nested a million deep
// takes constant stack.
struct Pending {
  std::shared_ptr<ValueList> list;
  std::shared_ptr<ValueDict> dict;
  std::shared_ptr<NativeFn> fn;
};
thread_local std::vector<Pending>* t_pending = nullptr;

}  // namespace

void Value::release() noexcept {
  if (t_pending) {
    t_pending->push_back({std::move(list_), std::move(dict_), std::move(fn_)});
    return;
  }
  std::vector<Pending> pending;
  t_pending = &pending;
  pending.push_back({std::move(list_), std::move(dict_), std::move(fn_)});
  while (!pending.empty()) {
    Pending p = std::move(pending.back());
    pending.pop_back();
  }  // p is destroyed here: its children's ~Value append to `pending`
  t_pending = nullptr;
}

const std::string& Value::empty_string() {
  static const std::string empty;
  return empty;
}

Value Value::undefined(std::string hint) {
  Value v;
  if (!hint.empty()) v.s_ = std::make_shared<std::string>(std::move(hint));
  return v;
}
Value Value::none() {
  Value v;
  v.kind_ = Kind::None;
  return v;
}
Value::Value(bool b) : kind_(Kind::Bool), b_(b) {}
Value::Value(int64_t i) : kind_(Kind::Int), i_(i) {}
Value::Value(double d) : kind_(Kind::Float), d_(d) {}
Value::Value(std::string s) : kind_(Kind::String) {
  check_string_size(s.size());
  s_ = std::make_shared<std::string>(std::move(s));
}
Value Value::list(ValueList items) {
  if (items.size() > kMaxListItems)
    throw std::runtime_error(fmt::format("list of more than {} items (the template engine's limit)", kMaxListItems));
  Value v;
  v.kind_ = Kind::List;
  v.list_ = std::make_shared<ValueList>(std::move(items));
  return v;
}
Value Value::tuple(ValueList items) {
  Value v = list(std::move(items));
  v.tuple_ = true;
  return v;
}
Value Value::dict(ValueDict items) {
  Value v;
  v.kind_ = Kind::Dict;
  v.dict_ = std::make_shared<ValueDict>(std::move(items));
  return v;
}
Value Value::function(std::string name, NativeFn fn) {
  Value v;
  v.kind_ = Kind::Function;
  v.s_ = std::make_shared<std::string>(std::move(name));
  v.fn_ = std::make_shared<NativeFn>(std::move(fn));
  return v;
}

template <class Json>
static Value value_from_json(const Json& j) {
  WalkGuard guard;
  switch (j.type()) {
    case Json::value_t::null: return Value::none();
    case Json::value_t::boolean: return Value(j.template get<bool>());
    case Json::value_t::number_integer: return Value(j.template get<int64_t>());
    case Json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX))
        throw std::runtime_error(fmt::format("integer {} is out of range (templates use 64-bit integers)", u));
      return Value(static_cast<int64_t>(u));
    }
    case Json::value_t::number_float: return Value(j.template get<double>());
    case Json::value_t::string: return Value(j.template get<std::string>());
    case Json::value_t::array: {
      ValueList items;
      for (const auto& e : j) items.push_back(value_from_json(e));
      return Value::list(std::move(items));
    }
    case Json::value_t::object: {
      ValueDict items;
      for (auto it = j.begin(); it != j.end(); ++it) items.emplace_back(it.key(), value_from_json(it.value()));
      return Value::dict(std::move(items));
    }
    default: return Value::undefined();
  }
}

Value Value::from_json(const nlohmann::json& j) { return value_from_json(j); }
Value Value::from_json(const nlohmann::ordered_json& j) { return value_from_json(j); }

const void* Value::identity() const {
  if (kind_ == Kind::List) return list_.get();
  if (kind_ == Kind::Dict) return dict_.get();
  return nullptr;
}

const Value* Value::find(std::string_view key) const {
  if (kind_ != Kind::Dict) return nullptr;
  for (const auto& [k, v] : *dict_)
    if (k == key) return &v;
  return nullptr;
}

void Value::set(const std::string& key, Value v) const {
  for (auto& [k, old] : *dict_)
    if (k == key) {
      old = std::move(v);
      return;
    }
  dict_->emplace_back(key, std::move(v));
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return b_;
    case Kind::Int: return i_ != 0;
    case Kind::Float: return d_ != 0.0;
    case Kind::String: return !s_->empty();
    case Kind::List: return !list_->empty();
    case Kind::Dict: return !dict_->empty();
    case Kind::Function: return true;
  }
  return false;
}

std::string python_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // Shortest round-trip digits, then Python's layout: scientific when exp < -4 or >= 16.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  size_t epos = sci.find('e');
  int exp = std::stoi(sci.substr(epos + 1));
  std::string mant = sci.substr(0, epos);
  bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out;
  if (exp < -4 || exp >= 16) {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  } else if (exp < 0) {
    out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  } else {
    size_t int_len = static_cast<size_t>(exp) + 1;
    if (digits.size() <= int_len) {
      out = digits + std::string(int_len - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, int_len) + "." + digits.substr(int_len);
    }
  }
  return neg ? "-" + out : out;
}

static std::string python_str_repr(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char q = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == static_cast<unsigned char>(q)) out += std::string("\\") + q;
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else out += static_cast<char>(c);
  }
  out += q;
  return out;
}

std::string Value::to_str() const {
  switch (kind_) {
    case Kind::Undefined: return "";
    case Kind::String: return *s_;
    default: return repr();
  }
}

std::string Value::repr() const {
  switch (kind_) {
    case Kind::Undefined: return "";
    case Kind::None: return "None";
    case Kind::Bool: return b_ ? "True" : "False";
    case Kind::Int: return std::to_string(i_);
    case Kind::Float: return python_float_repr(d_);
    case Kind::String: return python_str_repr(*s_);
    case Kind::List: {
      WalkGuard guard;
      std::string out = tuple_ ? "(" : "[";
      for (size_t i = 0; i < list_->size(); ++i) {
        out += (i ? ", " : "") + (*list_)[i].repr();
        check_string_size(out.size());
      }
      if (tuple_ && list_->size() == 1) out += ",";
      return out + (tuple_ ? ")" : "]");
    }
    case Kind::Dict: {
      WalkGuard guard;
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : *dict_) {
        out += (first ? "" : ", ") + python_str_repr(k) + ": " + v.repr();
        check_string_size(out.size());
        first = false;
      }
      return out + "}";
    }
    case Kind::Function: return "<function " + *s_ + ">";
  }
  return "";
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType object";
    case Kind::Bool: return "bool object";
    case Kind::Int: return "int object";
    case Kind::Float: return "float object";
    case Kind::String: return "str object";
    case Kind::List: return "list object";
    case Kind::Dict: return "dict object";
    case Kind::Function: return "function object";
  }
  return "";
}

size_t Value::length() const {
  switch (kind_) {
    case Kind::Undefined: return 0;
    case Kind::String: {
      size_t n = 0;  // code points, as Python counts
      for (unsigned char c : *s_) n += (c & 0xC0) != 0x80;
      return n;
    }
    case Kind::List: return list_->size();
    case Kind::Dict: return dict_->size();
    default: throw std::runtime_error("object of type '" + type_name() + "' has no len()");
  }
}

nlohmann::json Value::to_json() const {
  WalkGuard guard;
  switch (kind_) {
    case Kind::None: return nullptr;
    case Kind::Bool: return b_;
    case Kind::Int: return i_;
    case Kind::Float: return d_;
    case Kind::String: return *s_;
    case Kind::List: {
      auto a = nlohmann::json::array();
      for (const auto& v : *list_) a.push_back(v.to_json());
      return a;
    }
    case Kind::Dict: {
      auto o = nlohmann::json::object();
      for (const auto& [k, v] : *dict_) o[k] = v.to_json();
      return o;
    }
    default: throw std::runtime_error("Object of type " + type_name() + " is not JSON serializable");
  }
}

bool values_equal(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_number() && b.is_number()) return a.as_double() == b.as_double();
  if ((a.kind() == K::Bool) != (b.kind() == K::Bool)) {
    // Python: True == 1
    auto num = [](const Value& v) { return v.kind() == K::Bool ? (v.as_bool() ? 1.0 : 0.0) : v.as_double(); };
    if ((a.kind() == K::Bool || a.is_number()) && (b.kind() == K::Bool || b.is_number())) return num(a) == num(b);
    return false;
  }
  if (a.kind() != b.kind()) return false;
  WalkGuard guard;
  switch (a.kind()) {
    case K::Undefined:
    case K::None: return true;
    case K::Bool: return a.as_bool() == b.as_bool();
    case K::String: return a.str() == b.str();
    case K::List: {
      if (a.items().size() != b.items().size()) return false;
      for (size_t i = 0; i < a.items().size(); ++i)
        if (!values_equal(a.items()[i], b.items()[i])) return false;
      return true;
    }
    case K::Dict: {
      if (a.entries().size() != b.entries().size()) return false;
      for (const auto& [k, v] : a.entries()) {
        const Value* o = b.find(k);
        if (!o || !values_equal(v, *o)) return false;
      }
      return true;
    }
    case K::Function: return a.identity() == b.identity() && a.fn_name() == b.fn_name();
    default: return false;
  }
}

int values_compare(const Value& a, const Value& b) {
  auto numeric = [](const Value& v) { return v.is_number() || v.kind() == Value::Kind::Bool; };
  auto num = [](const Value& v) { return v.kind() == Value::Kind::Bool ? (v.as_bool() ? 1.0 : 0.0) : v.as_double(); };
  if (numeric(a) && numeric(b)) {
    double x = num(a), y = num(b);
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) return a.str().compare(b.str()) < 0 ? -1 : (a.str() == b.str() ? 0 : 1);
  if (a.is_list() && b.is_list()) {
    WalkGuard guard;
    size_t n = std::min(a.items().size(), b.items().size());
    for (size_t i = 0; i < n; ++i)
      if (int c = values_compare(a.items()[i], b.items()[i])) return c;
    return a.items().size() < b.items().size() ? -1 : (a.items().size() > b.items().size() ? 1 : 0);
  }
  throw std::runtime_error("'<' not supported between instances of '" + a.type_name() + "' and '" +
                           b.type_name() + "'");
}

static void json_escape(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    char b[16];
    if (c < 0x20) {
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else if (c >= 0x80 && ensure_ascii) {
      // Decode one UTF-8 code point and write \uXXXX (surrogate pairs above the BMP).
      int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
      uint32_t cp = c & (0x3F >> (len - 1));
      for (int k = 1; k < len && i + 1 < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[++i]) & 0x3F);
      if (cp >= 0x10000) {
        cp -= 0x10000;
        std::snprintf(b, sizeof b, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
      } else {
        std::snprintf(b, sizeof b, "\\u%04x", cp);
      }
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

static void json_dump_rec(std::string& out, const Value& v, const JsonDumpOptions& o, int depth) {
  using K = Value::Kind;
  WalkGuard guard;
  check_string_size(out.size());
  const std::string item_sep = !o.item_sep.empty() ? o.item_sep : (o.indent >= 0 ? "," : ", ");
  const std::string key_sep = !o.key_sep.empty() ? o.key_sep : ": ";
  auto newline = [&](int d) {
    if (o.indent >= 0) out += "\n" + std::string(static_cast<size_t>(o.indent * d), ' ');
  };
  switch (v.kind()) {
    case K::None: out += "null"; return;
    case K::Bool: out += v.as_bool() ? "true" : "false"; return;
    case K::Int: out += std::to_string(v.as_int()); return;
    case K::Float: {
      double d = v.as_double();
      out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : python_float_repr(d);
      return;
    }
    case K::String: json_escape(out, v.str(), o.ensure_ascii); return;
    case K::List: {
      if (v.items().empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i) out += item_sep;
        newline(depth + 1);
        json_dump_rec(out, v.items()[i], o, depth + 1);
      }
      newline(depth);
      out += ']';
      return;
    }
    case K::Dict: {
      if (v.entries().empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> entries;
      for (const auto& e : v.entries()) entries.push_back(&e);
      if (o.sort_keys)
        std::stable_sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
      out += '{';
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i) out += item_sep;
        newline(depth + 1);
        json_escape(out, entries[i]->first, o.ensure_ascii);
        out += key_sep;
        json_dump_rec(out, entries[i]->second, o, depth + 1);
      }
      newline(depth);
      out += '}';
      return;
    }
    default: throw std::runtime_error("Object of type " + v.type_name() + " is not JSON serializable");
  }
}

std::string json_dumps(const Value& v, const JsonDumpOptions& opts) {
  if (opts.indent > kMaxJsonIndent)
    throw std::runtime_error(fmt::format("tojson indent {} is larger than {}", opts.indent, kMaxJsonIndent));
  std::string out;
  json_dump_rec(out, v, opts, 0);
  return out;
}

Value CallArgs::get(size_t i, const char* name, Value fallback) const {
  for (const auto& [k, v] : kwargs)
    if (k == name) return v;
  if (i < args.size()) return args[i];
  return fallback;
}

}  // namespace lorafit::jinja
