// The request side of the OpenAI-compatible API (`lorafit serve`, docs/serve.md): the JSON
// body of POST /v1/chat/completions and /v1/completions, parsed and checked field by field
// before anything reaches the model. Bad input is an ApiError (HTTP status + OpenAI's error
// object) naming the field; the parser never throws anything else (fuzz/fuzz_serve_request.cpp).
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace lorafit::serve {

// One refusal: `status` is the HTTP status; type/param/code fill OpenAI's error object.
struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string param = "", std::string code = "");
  int status;
  std::string type, param, code;
};
// {"error": {"message", "type", "param", "code"}} (param/code null when empty).
std::string error_body(const ApiError& e);

// Limits on what one request may ask for (hostile input stays bounded).
inline constexpr size_t kMaxStop = 64;          // stop strings (OpenAI allows 4; vLLM has no limit)
inline constexpr size_t kMaxStopBytes = 1024;   // one stop string
inline constexpr size_t kMaxStopIds = 1024;     // stop_token_ids
inline constexpr size_t kMaxMessages = 4096;    // chat messages
inline constexpr int kMaxTopLogprobs = 20;      // vLLM's default max_logprobs

struct CompletionRequest {
  bool chat = false;
  std::string model;
  nlohmann::ordered_json messages;  // chat: [{role, content}], content a string
  std::string prompt;               // completions: text ...
  std::vector<int32_t> prompt_ids;  // ... or token ids
  std::optional<int64_t> max_tokens;
  std::optional<double> temperature, top_p, min_p, repetition_penalty;
  std::optional<int64_t> top_k;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  bool stream = false, include_usage = false;
  // -1: no logprobs; k ≥ 0: each token's logprob and the k most likely (chat: logprobs true +
  // top_logprobs k; completions: logprobs k).
  int logprobs = -1;
};

// Parses and checks a body (chat: /v1/chat/completions). Throws ApiError 400 naming the field
// for malformed JSON, a wrong type, a value out of range, an unknown field, or a feature
// lorafit does not serve (n > 1, tools, ...).
CompletionRequest parse_completion_request(std::string_view body, bool chat);

}  // namespace lorafit::serve
