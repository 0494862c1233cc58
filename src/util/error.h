// Errors. Bad user input throws lorafit::Error with a message that names the file, line or
// tensor, what was expected and what to do; only main() turns it into an exit code.
// Broken invariants (our bugs) fail LF_CHECK, which stays on in release builds.
#pragma once
#include <fmt/format.h>

#include <concepts>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace lorafit {

struct Error : std::runtime_error {
  // A message from a format string. A literal is always formatted, arguments or not, so
  // "{{input, output}}" prints as {input, output} everywhere.
  template <class... Args>
  explicit Error(fmt::format_string<Args...> f, Args&&... args)
      : std::runtime_error(fmt::format(f, std::forward<Args>(args)...)) {}
  // A message formatted elsewhere (a std::string is never formatted again).
  template <class S>
    requires std::same_as<std::remove_cvref_t<S>, std::string>
  explicit Error(S&& message) : std::runtime_error(std::forward<S>(message)) {}
};

[[noreturn]] void check_failed(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace lorafit

#define LF_CHECK(cond, ...)                                                                   \
  do {                                                                                        \
    if (!(cond)) ::lorafit::check_failed(#cond, __FILE__, __LINE__, fmt::format("" __VA_ARGS__)); \
  } while (0)
