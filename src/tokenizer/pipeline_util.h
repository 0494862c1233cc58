// Helpers shared by pipeline.cpp and decoder.cpp: JSON field access with errors that name
// the field, and the {"String"|"Regex"} pattern of Split/Replace. Internal to the module.
#pragma once
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <string_view>
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
template <class T>
T get_or(const json& j, const char* key, T dflt) {
  if (!j.contains(key) || j.at(key).is_null()) return dflt;
  return j.at(key).get<T>();
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
