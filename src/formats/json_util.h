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

// Deepest nesting of objects/arrays any JSON input may have: serde_json's (it refuses the
// 128th level), so every tokenizer.json the Rust tokenizers library reads passes. Parsing is
// iterative (nlohmann's SAX loop) and stops here, so code walking a parsed value recursively
// is safe.
inline constexpr int kMaxJsonDepth = 127;
// Most keys one object may have in an ordered_json parse (its insertion is O(n)).
inline constexpr size_t kMaxOrderedKeys = 10000;

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

// Untrusted JSON with the limits and messages above but Python json's rule for a repeated
// key (the last wins), for files other tools read leniently: tokenizer.json,
// tokenizer_config.json, adapter_config.json, datasets, messages files. Messages name the
// file (`label`), line, column and field.
nlohmann::json parse_json(std::string_view text, const std::string& label);
// `first_line`: the line of the file `text` starts on (one JSONL record), for messages.
ordered_json parse_json_ordered(std::string_view text, const std::string& label, size_t first_line = 1);

// A nlohmann::json::exception's text without its "[json.exception.type_error.302] " tag, for
// the last-resort messages where lorafit does not yet check a field's type itself.
std::string json_error_text(const std::exception& e);

// "object", "array", "string", "integer", "number", "boolean", "null" (for messages).
const char* json_type_name(const ordered_json& j);
const char* json_type_name(const nlohmann::json& j);

// Appends `s` as a JSON string literal the way serde_json (Rust) writes it: escapes `"`,
// `\`, and control characters (\b \f \n \r \t, else \u00xx lowercase); everything else,
// UTF-8 included, is copied as is.
void append_json_string(std::string& out, std::string_view s);

}  // namespace lorafit
