#include "util/parse.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

#include "util/error.h"

namespace lorafit {

namespace {

std::string lower(std::string_view s) {
  std::string l(s);
  for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return l;
}

// from_chars takes no leading '+'; people (and YAML) write "+5" and "+1e-4".
std::string_view strip_plus(std::string_view s) {
  return s.size() > 1 && s[0] == '+' && s[1] != '-' && s[1] != '+' ? s.substr(1) : s;
}

}  // namespace

std::optional<int64_t> try_parse_int(std::string_view text) {
  const std::string_view s = strip_plus(text);
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> try_parse_double(std::string_view text) {
  const std::string_view s = strip_plus(text);
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<bool> try_parse_bool(std::string_view text) {
  const std::string l = lower(text);
  if (l == "true" || l == "1" || l == "yes" || l == "on") return true;
  if (l == "false" || l == "0" || l == "no" || l == "off") return false;
  return std::nullopt;
}

int64_t parse_int(std::string_view text, std::string_view where) {
  if (auto v = try_parse_int(text)) return *v;
  throw Error("{}: \"{}\" is not an integer", where, text);
}

int64_t parse_int_in(std::string_view text, std::string_view where, int64_t lo, int64_t hi) {
  const int64_t v = parse_int(text, where);
  if (v < lo || v > hi) throw Error("{}: {} is out of range; use {}..{}", where, v, lo, hi);
  return v;
}

double parse_double(std::string_view text, std::string_view where) {
  if (auto v = try_parse_double(text)) return *v;
  throw Error("{}: \"{}\" is not a number", where, text);
}

bool parse_bool(std::string_view text, std::string_view where) {
  if (auto v = try_parse_bool(text)) return *v;
  throw Error("{}: \"{}\" is not a boolean; write true or false", where, text);
}

std::vector<int32_t> parse_token_ids(std::string_view text, std::string_view where) {
  std::vector<int32_t> ids;
  size_t start = 0;
  for (int item = 1;; ++item) {
    const size_t end = text.find(',', start);
    std::string_view tok = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    while (!tok.empty() && tok.front() == ' ') tok.remove_prefix(1);
    while (!tok.empty() && tok.back() == ' ') tok.remove_suffix(1);
    const std::optional<int64_t> v = try_parse_int(tok);
    if (!v || *v < INT32_MIN || *v > INT32_MAX)
      throw Error("{}: item {} (\"{}\") is not an integer token id; expected comma-separated ids such as "
                  "1,410,469,347",
                  where, item, tok);
    ids.push_back(static_cast<int32_t>(*v));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return ids;
}

}  // namespace lorafit
