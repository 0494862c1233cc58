#include "formats/json_util.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <type_traits>
#include <utility>
#include <vector>

#include "util/error.h"
#include "util/one_line.h"

namespace lorafit {

namespace {

// One open object while parsing: the keys seen so far and the one whose value is being read.
struct OpenObject {
  std::set<std::string> keys;  // only when duplicates are refused
  size_t count = 0;
  std::string current;
};

std::string key_path(const std::vector<OpenObject>& stack) {
  std::string p;
  for (const auto& o : stack) {
    if (o.current.empty()) continue;
    if (!p.empty()) p += '.';
    p += o.current;
  }
  return one_line(p);  // a key may hold a raw newline: the message stays one line
}

// The literal starting at or just before byte `pos` (the parser stops inside it).
std::string_view token_near(std::string_view text, size_t pos) {
  size_t i = pos < text.size() ? pos : text.size();
  if (i > 0) --i;
  while (i > 0 && (std::isalpha(static_cast<unsigned char>(text[i - 1])) || text[i - 1] == '-')) --i;
  return text.substr(i, 9);
}

// 1-based line and column of byte `pos` (for messages).
std::pair<size_t, size_t> line_col(std::string_view text, size_t pos) {
  pos = std::min(pos, text.size());
  size_t line = 1, col = 1;
  for (size_t i = 0; i < pos; ++i) {
    if (text[i] == '\n') ++line, col = 1;
    else ++col;
  }
  return {line, col};
}

// nlohmann's what() without its "[json.exception.parse_error.101] parse error at line 1,
// column 2: " prefix (we print our own position): "syntax error while parsing value - ...".
std::string parse_error_detail(const char* what) {
  std::string_view w(what);
  if (w.starts_with("[json.exception"))
    if (size_t p = w.find("] "); p != std::string_view::npos) w.remove_prefix(p + 2);
  if (w.starts_with("parse error"))
    if (size_t p = w.find(": "); p != std::string_view::npos) w.remove_prefix(p + 2);
  return std::string(w);
}

template <class Json>
Json parse_impl(std::string_view text, const std::string& label, const char* what_key,
                std::vector<std::string>* top_keys, bool reject_duplicates, size_t first_line) {
  std::vector<OpenObject> stack;
  const std::string prefix = label.empty() ? std::string() : label + ": ";  // "" for a JSONL record
  auto cb = [&](int depth, nlohmann::json::parse_event_t ev, Json& parsed) -> bool {
    using E = nlohmann::json::parse_event_t;
    if ((ev == E::object_start || ev == E::array_start) && depth >= kMaxJsonDepth) {
      std::string field = key_path(stack);
      throw Error("{}JSON nested deeper than {} levels{} (lorafit's limit, as serde_json's); flatten the data",
                  prefix, kMaxJsonDepth, field.empty() ? std::string() : fmt::format(" at field `{}`", field));
    }
    if (ev == E::object_start) {
      stack.emplace_back();
    } else if (ev == E::object_end) {
      if (!stack.empty()) stack.pop_back();
    } else if (ev == E::key) {
      LF_CHECK(!stack.empty() && parsed.is_string());
      std::string k = parsed.template get<std::string>();
      ++stack.back().count;
      if (reject_duplicates && !stack.back().keys.insert(k).second) {
        if (stack.size() == 1)
          throw Error("{}duplicate {} \"{}\" (JSON readers would silently keep only the last one); "
                      "remove the duplicate",
                      prefix, what_key, one_line(k));
        stack.back().current = k;
        throw Error("{}duplicate key `{}`; remove the duplicate", prefix, key_path(stack));
      }
      // ordered_json finds keys by linear search: a crafted object with millions of keys
      // would take hours (sorted json is O(log n) and has no such limit).
      if (std::is_same_v<Json, ordered_json> && stack.back().count > kMaxOrderedKeys)
        throw Error("{}an object with more than {} keys{}; lorafit reads at most that many here", prefix,
                    kMaxOrderedKeys, stack.size() > 1 ? fmt::format(" at field `{}`", key_path(stack)) : std::string());
      if (top_keys && stack.size() == 1) top_keys->push_back(k);
      stack.back().current = std::move(k);
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), cb);
  } catch (const nlohmann::json::parse_error& e) {
    std::string_view tok = token_near(text, e.byte);
    const char* bad = nullptr;
    if (tok.starts_with("NaN")) bad = "NaN";
    else if (tok.starts_with("-Infinity")) bad = "-Infinity";
    else if (tok.starts_with("Infinity")) bad = "Infinity";
    std::string field = key_path(stack);
    if (bad) {
      if (field.empty())
        throw Error("{}bare {} at byte {} is not valid JSON (Python's json writes non-finite floats "
                    "this way); replace it with a finite number",
                    prefix, bad, e.byte);
      throw Error("{}field `{}` is {}, which is not valid JSON (Python's json writes non-finite "
                  "floats this way); replace it with a finite number",
                  prefix, field, bad);
    }
    auto [line, col] = line_col(text, e.byte ? e.byte - 1 : 0);
    throw Error("{}not valid JSON at line {}, column {}{}: {}", prefix, line + first_line - 1, col,
                field.empty() ? std::string() : fmt::format(" (reading field `{}`)", field),
                parse_error_detail(e.what()));
  } catch (const nlohmann::json::exception& e) {  // out_of_range.406: a number like 1e999
    std::string field = key_path(stack);
    std::string_view w(e.what());
    size_t q1 = w.find('\''), q2 = q1 == std::string_view::npos ? q1 : w.find('\'', q1 + 1);
    std::string number = q2 == std::string_view::npos ? std::string("a number") : std::string(w.substr(q1 + 1, q2 - q1 - 1));
    throw Error("{}{}{} is too large for a 64-bit float; use a smaller number", prefix, number,
                field.empty() ? std::string() : fmt::format(" in field `{}`", field));
  }
}

const char* type_name(nlohmann::json::value_t t) {
  switch (t) {
    case nlohmann::json::value_t::object: return "object";
    case nlohmann::json::value_t::array: return "array";
    case nlohmann::json::value_t::string: return "string";
    case nlohmann::json::value_t::boolean: return "boolean";
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "integer";
    case nlohmann::json::value_t::number_float: return "number";
    default: return "value";
  }
}

}  // namespace

ordered_json parse_json_strict(std::string_view text, const std::string& label, const char* what_key) {
  return parse_impl<ordered_json>(text, label, what_key, nullptr, true, 1);
}

nlohmann::json parse_json_strict_sorted(std::string_view text, const std::string& label, const char* what_key,
                                        std::vector<std::string>* top_keys) {
  return parse_impl<nlohmann::json>(text, label, what_key, top_keys, true, 1);
}

nlohmann::json parse_json(std::string_view text, const std::string& label) {
  return parse_impl<nlohmann::json>(text, label, "key", nullptr, false, 1);
}

ordered_json parse_json_ordered(std::string_view text, const std::string& label, size_t first_line) {
  return parse_impl<ordered_json>(text, label, "key", nullptr, false, first_line);
}

std::string json_error_text(const std::exception& e) { return parse_error_detail(e.what()); }

const char* json_type_name(const ordered_json& j) { return type_name(j.type()); }
const char* json_type_name(const nlohmann::json& j) { return type_name(j.type()); }

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

}  // namespace lorafit
