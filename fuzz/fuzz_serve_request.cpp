// libFuzzer target: the request parser of `lorafit serve` (serve/openai_request.h), the body of
// POST /v1/chat/completions and /v1/completions. Every input must parse or be refused with an
// ApiError (a 4xx with a one-line message); any other exception, a crash or a sanitizer report
// is a bug. The first byte picks the route (odd: chat).
#include <cstdint>
#include <cstdio>
#include <string_view>

#include "serve/openai_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool chat = (data[0] & 1) != 0;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    lorafit::serve::parse_completion_request(body, chat);
  } catch (const lorafit::serve::ApiError& e) {
    if (e.status < 400 || e.status >= 500 || std::string_view(e.what()).find('\n') != std::string_view::npos) {
      std::fprintf(stderr, "fuzz: bad refusal (status %d): %s\n", e.status, e.what());
      __builtin_trap();
    }
  }
  return 0;
}
