#include "formats/json_util.h"

#include <cctype>
#include <set>
#include <utility>
#include <vector>

#include "util/error.h"

namespace lorafit {

namespace {

// One open object while parsing: the keys seen so far and the one whose value is being read.
struct OpenObject {
  std::set<std::string> keys;
  std::string current;
};

std::string key_path(const std::vector<OpenObject>& stack) {
  std::string p;
  for (const auto& o : stack) {
    if (o.current.empty()) continue;
    if (!p.empty()) p += '.';
    p += o.current;
  }
  return p;
}

// The literal starting at or just before byte `pos` (the parser stops inside it).
std::string_view token_near(std::string_view text, size_t pos) {
  size_t i = pos < text.size() ? pos : text.size();
  if (i > 0) --i;
  while (i > 0 && (std::isalpha(static_cast<unsigned char>(text[i - 1])) || text[i - 1] == '-')) --i;
  return text.substr(i, 9);
}

template <class Json>
Json parse_strict(std::string_view text, const std::string& label, const char* what_key,
                  std::vector<std::string>* top_keys) {
  std::vector<OpenObject> stack;
  auto cb = [&](int /*depth*/, nlohmann::json::parse_event_t ev, Json& parsed) -> bool {
    using E = nlohmann::json::parse_event_t;
    if (ev == E::object_start) {
      stack.emplace_back();
    } else if (ev == E::object_end) {
      if (!stack.empty()) stack.pop_back();
    } else if (ev == E::key) {
      LF_CHECK(!stack.empty() && parsed.is_string());
      std::string k = parsed.template get<std::string>();
      if (!stack.back().keys.insert(k).second) {
        if (stack.size() == 1)
          throw Error("{}: duplicate {} \"{}\" (JSON readers would silently keep only the last one); "
                      "remove the duplicate",
                      label, what_key, k);
        stack.back().current = k;
        throw Error("{}: duplicate key `{}`; remove the duplicate", label, key_path(stack));
      }
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
        throw Error("{}: bare {} at byte {} is not valid JSON (Python's json writes non-finite floats "
                    "this way); replace it with a finite number",
                    label, bad, e.byte);
      throw Error("{}: field `{}` is {}, which is not valid JSON (Python's json writes non-finite "
                  "floats this way); replace it with a finite number",
                  label, field, bad);
    }
    throw Error("{}: not valid JSON{}: {}", label,
                field.empty() ? std::string() : fmt::format(" (reading field `{}`)", field), e.what());
  } catch (const nlohmann::json::exception& e) {  // e.g. out_of_range: a number like 1e999
    std::string field = key_path(stack);
    throw Error("{}: not valid JSON{}: {}", label,
                field.empty() ? std::string() : fmt::format(" (reading field `{}`)", field), e.what());
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
  return parse_strict<ordered_json>(text, label, what_key, nullptr);
}

nlohmann::json parse_json_strict_sorted(std::string_view text, const std::string& label, const char* what_key,
                                        std::vector<std::string>* top_keys) {
  return parse_strict<nlohmann::json>(text, label, what_key, top_keys);
}

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
