// Python str operations on UTF-8 text, as the Jinja interpreter needs them.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace lorafit::jinja {

std::vector<std::string> split_code_points(const std::string& s);  // each element one code point
// str.split / str.rsplit: sep nullopt splits on runs of whitespace and drops empty parts.
std::vector<std::string> py_split(const std::string& s, const std::optional<std::string>& sep, int64_t maxsplit,
                                  bool from_right);
// str.strip family: chars nullopt strips Unicode whitespace (as Python does).
std::string py_strip(const std::string& s, const std::optional<std::string>& chars, bool left, bool right);
std::string py_replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count);
std::string ascii_upper(std::string s);  // non-ASCII letters are left as they are
std::string ascii_lower(std::string s);
std::string py_title(const std::string& s);
std::string py_capitalize(const std::string& s);
std::string py_format(const std::string& fmt, const CallArgs& a);  // "{}", "{0}", "{name}" only

}  // namespace lorafit::jinja
