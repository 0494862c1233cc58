// One-line messages: control characters (newline, carriage return, escape ...) of quoted
// input written as <U+000A>, as nlohmann writes them, so that an error quoting hostile input
// (a JSON key, a template token, a YAML scalar with a raw newline) stays one line.
#pragma once
#include <fmt/format.h>

#include <string>
#include <string_view>

namespace lorafit {

inline std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      out += fmt::format("<U+{:04X}>", c);
    else
      out += ch;
  }
  return out;
}

}  // namespace lorafit
