// The one parser of numbers and booleans written as text (flags, YAML values, file names,
// query parameters): the whole text must be the value, else an Error naming `where` and what
// was expected. The try_ forms return nullopt instead of throwing.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace lorafit {

std::optional<int64_t> try_parse_int(std::string_view text);
std::optional<double> try_parse_double(std::string_view text);  // finite values only
// true/false, 1/0, yes/no, on/off in any case (YAML 1.1 and HF's string-to-bool).
std::optional<bool> try_parse_bool(std::string_view text);

int64_t parse_int(std::string_view text, std::string_view where);
// parse_int within [lo, hi]; the error names the range.
int64_t parse_int_in(std::string_view text, std::string_view where, int64_t lo, int64_t hi);
double parse_double(std::string_view text, std::string_view where);
bool parse_bool(std::string_view text, std::string_view where);

// "1,410,469,347" → token ids (spaces around items allowed); each item an int32.
std::vector<int32_t> parse_token_ids(std::string_view text, std::string_view where);

}  // namespace lorafit
