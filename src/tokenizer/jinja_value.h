// Values of the Jinja interpreter, with Python semantics (what jinja2 does under
// transformers): truthiness, str(), repr(), ==, and json.dumps for the `tojson` filter.
// Lists and dicts are shared by reference (shared_ptr) like Python objects, so the chat
// layer can recognise a message dict when a template loops over a slice of `messages`.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lorafit::jinja {

class Value;
using ValueList = std::vector<Value>;
// Insertion-ordered like a Python dict; small, so lookups are linear.
using ValueDict = std::vector<std::pair<std::string, Value>>;

struct CallArgs;
using NativeFn = std::function<Value(CallArgs&)>;

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Function };

  Value() = default;  // Undefined
  Value(const Value&) = default;
  Value(Value&&) noexcept = default;
  Value& operator=(const Value&) = default;
  Value& operator=(Value&&) noexcept = default;
  ~Value() {
    if (list_ || dict_ || fn_) release();
  }
  static Value undefined(std::string hint = {});
  static Value none();
  Value(bool b);
  Value(int64_t i);
  Value(int i) : Value(static_cast<int64_t>(i)) {}
  Value(double d);
  Value(std::string s);
  Value(const char* s) : Value(std::string(s)) {}
  static Value list(ValueList items = {});
  static Value tuple(ValueList items);  // a list that prints as (a, b), as dict items do
  static Value dict(ValueDict items = {});
  static Value function(std::string name, NativeFn fn);
  // JSON objects keep their key order with ordered_json (as Python dicts do); plain json
  // sorts keys, which changes what `tojson` prints.
  static Value from_json(const nlohmann::json& j);
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float; }
  bool is_list() const { return kind_ == Kind::List; }
  bool is_dict() const { return kind_ == Kind::Dict; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return i_; }
  double as_double() const { return kind_ == Kind::Int ? static_cast<double>(i_) : d_; }
  const std::string& str() const { return *s_; }
  ValueList& items() const { return *list_; }
  ValueDict& entries() const { return *dict_; }
  const NativeFn& fn() const { return *fn_; }
  const std::string& fn_name() const { return *s_; }  // always set for functions
  // Identity of a list or dict (the shared object), for message attribution.
  const void* identity() const;
  // Undefined: what was looked up, for error messages ("'dict object' has no attribute 'x'").
  const std::string& undefined_hint() const { return s_ ? *s_ : empty_string(); }

  // Dict access: nullptr when absent.
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value v) const;  // dicts are shared: mutates in place

  bool truthy() const;
  std::string to_str() const;   // Python str(); Undefined prints as ""
  std::string repr() const;     // Python repr()
  std::string type_name() const;  // jinja2-style, e.g. "dict object", "str object"
  size_t length() const;        // len(); throws for numbers
  nlohmann::json to_json() const;

 private:
  Kind kind_ = Kind::Undefined;
  bool b_ = false;
  bool tuple_ = false;
  int64_t i_ = 0;
  double d_ = 0;
  static const std::string& empty_string();
  void release() noexcept;  // drops list_/dict_/fn_ without recursing (deep nesting)
  std::shared_ptr<std::string> s_;  // string, function name or undefined hint; null otherwise
  std::shared_ptr<ValueList> list_;
  std::shared_ptr<ValueDict> dict_;
  std::shared_ptr<NativeFn> fn_;
};

bool values_equal(const Value& a, const Value& b);
// <0, 0, >0 like Python ordering; throws std::runtime_error for unorderable types.
int values_compare(const Value& a, const Value& b);
std::string python_float_repr(double d);

struct JsonDumpOptions {
  int indent = -1;  // -1: None (one line, ", " and ": " separators)
  bool ensure_ascii = false;
  bool sort_keys = false;
  std::string item_sep, key_sep;  // empty: Python's defaults for the indent mode
};
// json.dumps(v, ...) exactly as Python writes it.
std::string json_dumps(const Value& v, const JsonDumpOptions& opts);

// Positional and keyword arguments of a call; the interpreter throws on bad arity.
struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
  // The i-th positional argument or the keyword `name`, or `fallback`.
  Value get(size_t i, const char* name, Value fallback = Value()) const;
};

}  // namespace lorafit::jinja
