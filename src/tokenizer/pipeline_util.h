// Helpers shared by pipeline.cpp and decoder.cpp: JSON field access with errors that name
// the field, and the {"String"|"Regex"} pattern of Split/Replace. Internal to the module.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "tokenizer/split.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

namespace lorafit::tok {

using json = nlohmann::json;

inline const json& field(const json& j, const char* key, const std::string& path) {
  if (!j.is_object() || !j.contains(key))
    throw Error("tokenizer.json: {}.{} is missing; expected the field as Hugging Face tokenizers writes it", path, key);
  return j.at(key);
}
inline std::string str_field(const json& j, const char* key, const std::string& path) {
  const json& v = field(j, key, path);
  if (!v.is_string()) throw Error("tokenizer.json: {}.{} must be a string, got {}", path, key, v.type_name());
  return v.get<std::string>();
}
// An optional field of type T (bool, string or an unsigned count), checked: a wrong type is a
// message naming the field, and a number is never converted out of its range (a float such as
// 1e300 into size_t is undefined behaviour; -1 would wrap).
template <class T>
T get_or(const json& j, const char* key, T dflt, const std::string& path = "") {
  if (!j.contains(key) || j.at(key).is_null()) return dflt;
  const json& v = j.at(key);
  const std::string where = path.empty() ? std::string(key) : path + "." + key;
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) throw Error("tokenizer.json: {} must be true or false, got {}", where, v.dump());
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) throw Error("tokenizer.json: {} must be a string, got {}", where, v.type_name());
  } else {
    static_assert(std::is_unsigned_v<T>, "get_or: bool, std::string or an unsigned count");
    if (!v.is_number_unsigned() || v.get<uint64_t>() > std::numeric_limits<T>::max())
      throw Error("tokenizer.json: {} must be a count from 0 to {}, got {}", where, std::numeric_limits<T>::max(),
                  v.dump());
  }
  return v.get<T>();
}
inline std::string type_of(const json& j, const std::string& path) {
  if (!j.is_object()) throw Error("tokenizer.json: {} must be an object, got {}", path, j.type_name());
  return str_field(j, "type", path);
}

// A Split/Replace "pattern": {"String": s} (literal) or {"Regex": r}.
struct Pattern {
  std::string literal;
  std::unique_ptr<Regex> regex;  // set for Regex patterns
  std::string regex_src;

  static Pattern parse(const json& j, const std::string& path) {
    Pattern p;
    if (j.is_object() && j.contains("String") && j.at("String").is_string()) {
      p.literal = j.at("String").get<std::string>();
    } else if (j.is_object() && j.contains("Regex") && j.at("Regex").is_string()) {
      p.regex_src = j.at("Regex").get<std::string>();
      p.regex = std::make_unique<Regex>(p.regex_src, path + ".Regex");
    } else {
      throw Error("tokenizer.json: {} must be {{\"String\": ...}} or {{\"Regex\": ...}}", path);
    }
    return p;
  }
  void find(std::string_view text, std::vector<Span>& out) const {
    if (regex) return regex->find_all(text, out);
    if (literal.empty()) return;
    for (size_t pos = text.find(literal); pos != std::string_view::npos; pos = text.find(literal, pos + literal.size()))
      out.emplace_back(pos, pos + literal.size());
  }
};

inline std::string replace_all(std::string_view s, const Pattern& p, std::string_view content) {
  std::vector<Span> m;
  p.find(s, m);
  if (m.empty()) return std::string(s);
  std::string out;
  size_t prev = 0;
  for (auto [b, e] : m) {
    out.append(s.substr(prev, b - prev));
    out.append(content);
    prev = e;
  }
  out.append(s.substr(prev));
  return out;
}

inline char32_t single_char(const std::string& s, const std::string& path) {
  if (s.empty() || !is_valid_utf8(s)) throw Error("tokenizer.json: {} must be one character", path);
  size_t i = 0;
  const char32_t c = next_cp(s, i);
  if (i != s.size()) throw Error("tokenizer.json: {} must be one character, got \"{}\"", path, s);
  return c;
}


}  // namespace lorafit::tok
