// Strict JSON reading for the model-folder formats (safetensors headers, index.json,
// config.json). nlohmann::json silently keeps the last of two equal keys and reports
// Python's bare NaN/Infinity only as a position; these helpers turn both into errors that
// name the file and the key.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace lorafit {

using ordered_json = nlohmann::ordered_json;  // keeps keys in file order

// Parses `text`; throws Error "LABEL: ..." for invalid JSON (with the key being read and
// the byte position), NaN/Infinity tokens (naming the field), and duplicate keys in any
// object (naming the key and `what_key` — e.g. "tensor name" — when the duplicate is in
// the top-level object).
ordered_json parse_json_strict(std::string_view text, const std::string& label,
                               const char* what_key = "key");

// The same into a nlohmann::json (keys sorted, O(log n) insertion: ordered_json inserts in
// O(n), too slow for a 100 MB safetensors header); `top_keys`, when given, receives the
// top-level object's keys in file order.
nlohmann::json parse_json_strict_sorted(std::string_view text, const std::string& label, const char* what_key,
                                        std::vector<std::string>* top_keys);

// "object", "array", "string", "integer", "number", "boolean", "null" (for messages).
const char* json_type_name(const ordered_json& j);
const char* json_type_name(const nlohmann::json& j);

// Appends `s` as a JSON string literal the way serde_json (Rust) writes it: escapes `"`,
// `\`, and control characters (\b \f \n \r \t, else \u00xx lowercase); everything else,
// UTF-8 included, is copied as is.
void append_json_string(std::string& out, std::string_view s);

}  // namespace lorafit
