// Built-in filters, tests, methods, operators and globals of the Jinja interpreter.
// They throw std::runtime_error with jinja2/Python-like messages; the interpreter adds the
// template name and line.
#pragma once
#include <string>

#include "tokenizer/jinja_value.h"

namespace lorafit::jinja {

// Throws "'<hint>' is undefined"-style errors when `v` is undefined.
[[noreturn]] void raise_undefined(const Value& v);

Value binary_op(const std::string& op, const Value& a, const Value& b);
Value get_attr(const Value& obj, const std::string& name);  // jinja2 getattr: attribute, then item
Value get_item(const Value& obj, const Value& key);         // jinja2 getitem: item, then attribute
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
bool has_method(const Value& obj, const std::string& name);
Value call_method(const Value& obj, const std::string& name, CallArgs& args);

Value call_filter(const std::string& name, const Value& v, CallArgs& args);
bool call_test(const std::string& name, const Value& v, CallArgs& args);
bool has_filter(const std::string& name);
bool has_test(const std::string& name);

// range, dict, namespace, raise_exception, strftime_now. `is_namespace` tells namespace
// objects apart (only they accept `set ns.attr = ...`).
void add_globals(ValueDict& globals);
bool is_namespace(const Value& v);

// Python iteration: list items, dict keys, string code points; undefined iterates nothing.
ValueList iterate(const Value& v);

}  // namespace lorafit::jinja
