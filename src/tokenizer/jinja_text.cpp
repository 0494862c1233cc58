// GCC 12 at -O3 reports a false -Wrestrict inside std::string for "literal" + string
// (GCC bug 105329); the code is fine, so the warning is off for this file.
#pragma GCC diagnostic ignored "-Wrestrict"

#include "tokenizer/jinja_text.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <stdexcept>

#include "tokenizer/jinja_limits.h"

namespace lorafit::jinja {

// Results built piece by piece stop as soon as they pass the engine's string limit, before
// a replacement or format argument multiplies them past memory.
static void check_growing(const std::string& out) {
  if (out.size() > kMaxStringBytes)
    throw std::runtime_error("string of more than " + std::to_string(kMaxStringBytes >> 20) +
                             " MiB (the template engine's limit)");
}


static size_t cp_len(unsigned char c) { return c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1; }

std::vector<std::string> split_code_points(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t n = std::min(cp_len(static_cast<unsigned char>(s[i])), s.size() - i);
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

// Python's str.isspace() code points.
static bool is_py_space(const std::string& cp) {
  if (cp.size() == 1) {
    unsigned char c = static_cast<unsigned char>(cp[0]);
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  }
  static const char* wide[] = {"\u0085", "\u00a0", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003",
                               "\u2004", "\u2005", "\u2006", "\u2007", "\u2008", "\u2009", "\u200a",
                               "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"};
  for (const char* w : wide)
    if (cp == w) return true;
  return false;
}

std::vector<std::string> py_split(const std::string& s, const std::optional<std::string>& sep, int64_t maxsplit,
                                  bool from_right) {
  std::vector<std::string> out;
  if (sep) {
    if (sep->empty()) throw std::runtime_error("empty separator");
    if (!from_right) {
      size_t pos = 0;
      for (int64_t n = 0; maxsplit < 0 || n < maxsplit; ++n) {
        size_t f = s.find(*sep, pos);
        if (f == std::string::npos) break;
        out.push_back(s.substr(pos, f - pos));
        pos = f + sep->size();
      }
      out.push_back(s.substr(pos));
    } else {
      size_t end = s.size();
      for (int64_t n = 0; maxsplit < 0 || n < maxsplit; ++n) {
        if (end < sep->size()) break;
        size_t f = s.rfind(*sep, end - sep->size());
        if (f == std::string::npos) break;
        out.insert(out.begin(), s.substr(f + sep->size(), end - f - sep->size()));
        end = f;
      }
      out.insert(out.begin(), s.substr(0, end));
    }
    return out;
  }
  // Whitespace split: runs of whitespace separate, no empty parts. (maxsplit from the left.)
  auto cps = split_code_points(s);
  std::string cur;
  bool in_word = false;
  int64_t splits = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (is_py_space(cps[i]) && !(maxsplit >= 0 && splits >= maxsplit && in_word)) {
      if (in_word) {
        out.push_back(cur);
        cur.clear();
        in_word = false;
        ++splits;
      }
    } else {
      if (!in_word && maxsplit >= 0 && splits >= maxsplit) {
        // the rest of the string, with trailing whitespace stripped
        std::string rest;
        for (size_t k = i; k < cps.size(); ++k) rest += cps[k];
        out.push_back(py_strip(rest, std::nullopt, false, true));
        return out;
      }
      cur += cps[i];
      in_word = true;
    }
  }
  if (in_word) out.push_back(cur);
  return out;
}

std::string py_strip(const std::string& s, const std::optional<std::string>& chars, bool left, bool right) {
  auto cps = split_code_points(s);
  std::vector<std::string> set;
  if (chars) set = split_code_points(*chars);
  auto strip_me = [&](const std::string& cp) {
    return chars ? std::find(set.begin(), set.end(), cp) != set.end() : is_py_space(cp);
  };
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && strip_me(cps[b])) ++b;
  if (right)
    while (e > b && strip_me(cps[e - 1])) --e;
  std::string out;
  for (size_t i = b; i < e; ++i) out += cps[i];
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count) {
  if (old.empty()) {  // Python inserts `repl` between code points (and at both ends)
    auto cps = split_code_points(s);
    std::string out;
    int64_t n = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || n < count) {
        out += repl;
        check_growing(out);
        ++n;
      }
      if (i < cps.size()) out += cps[i];
    }
    return out;
  }
  std::string out;
  size_t pos = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    size_t f = s.find(old, pos);
    if (f == std::string::npos) break;
    out += s.substr(pos, f - pos) + repl;
    check_growing(out);
    pos = f + old.size();
    ++n;
  }
  return out + s.substr(pos);
}

std::string ascii_upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string ascii_lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string py_title(const std::string& s) {
  std::string out = s;
  bool prev_cased = false;
  for (auto& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      c = static_cast<char>(prev_cased ? std::tolower(u) : std::toupper(u));
      prev_cased = true;
    } else {
      prev_cased = false;
    }
  }
  return out;
}

std::string py_capitalize(const std::string& s) {
  std::string out = ascii_lower(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string py_format(const std::string& fmt, const CallArgs& a) {
  std::string out;
  size_t auto_idx = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      size_t close = fmt.find('}', i);
      if (close == std::string::npos) throw std::runtime_error("Single '{' encountered in format string");
      std::string field = fmt.substr(i + 1, close - i - 1);
      if (field.find(':') != std::string::npos || field.find('!') != std::string::npos)
        throw std::runtime_error("format specs are not supported in str.format: {" + field + "}");
      Value v;
      if (field.empty()) {
        if (auto_idx >= a.args.size()) throw std::runtime_error("Replacement index out of range for format");
        v = a.args[auto_idx++];
      } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
        size_t k = 0;
        auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), k);
        if (ec != std::errc() || end != field.data() + field.size() || k >= a.args.size()) throw std::runtime_error("Replacement index out of range for format");
        v = a.args[k];
      } else {
        bool found = false;
        for (const auto& [k, x] : a.kwargs)
          if (k == field) {
            v = x;
            found = true;
          }
        if (!found) throw std::runtime_error("KeyError: '" + field + "'");
      }
      out += v.to_str();
      check_growing(out);
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace lorafit::jinja
