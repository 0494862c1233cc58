#include "serve/openai_request.h"

#include <cmath>
#include <limits>

#include "formats/json_util.h"
#include "util/error.h"
#include "util/one_line.h"

namespace lorafit::serve {

using ordered_json = nlohmann::ordered_json;

namespace {

const char* type_of(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429:
    case 503: return "server_overloaded";
    default: return status >= 500 ? "internal_server_error" : "invalid_request_error";
  }
}

ApiError bad(const std::string& param, const std::string& message) {
  return ApiError(400, message, param, "invalid_value");
}

// The value of `name`, or null when absent or JSON null (OpenAI treats both as "not given").
const ordered_json* field(const ordered_json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number(const ordered_json& v, const char* name, double lo, double hi) {
  if (!v.is_number()) throw bad(name, fmt::format("{} must be a number, not {}", name, json_type_name(v)));
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    throw bad(name, fmt::format("{} is {}; it must be between {} and {}", name, v.dump(), lo, hi));
  return x;
}

int64_t integer(const ordered_json& v, const char* name, int64_t lo, int64_t hi) {
  if (!v.is_number_integer())
    throw bad(name, fmt::format("{} must be an integer, not {}", name, v.is_number() ? v.dump() : json_type_name(v)));
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
    throw bad(name, fmt::format("{} is {}; it must be between {} and {}", name, v.dump(), lo, hi));
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) throw bad(name, fmt::format("{} is {}; it must be between {} and {}", name, x, lo, hi));
  return x;
}

bool boolean(const ordered_json& v, const char* name) {
  if (!v.is_boolean()) throw bad(name, fmt::format("{} must be true or false, not {}", name, json_type_name(v)));
  return v.get<bool>();
}

std::vector<int32_t> token_ids(const ordered_json& v, const char* name, size_t max_count) {
  if (!v.is_array()) throw bad(name, fmt::format("{} must be a list of token ids", name));
  if (v.size() > max_count) throw bad(name, fmt::format("{} has {} entries; at most {} are accepted", name, v.size(), max_count));
  std::vector<int32_t> ids;
  for (const auto& x : v) ids.push_back(static_cast<int32_t>(integer(x, name, 0, std::numeric_limits<int32_t>::max())));
  return ids;
}

// "stop": a string or a list of strings.
std::vector<std::string> stop_strings(const ordered_json& v) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    if (v.size() > kMaxStop)
      throw bad("stop", fmt::format("stop has {} strings; at most {} are accepted", v.size(), kMaxStop));
    for (const auto& s : v) {
      if (!s.is_string()) throw bad("stop", "stop must be a string or a list of strings");
      out.push_back(s.get<std::string>());
    }
  } else {
    throw bad("stop", fmt::format("stop must be a string or a list of strings, not {}", json_type_name(v)));
  }
  for (const auto& s : out) {
    if (s.empty()) throw bad("stop", "stop strings must not be empty");
    if (s.size() > kMaxStopBytes)
      throw bad("stop", fmt::format("a stop string has {} bytes; at most {} are accepted", s.size(), kMaxStopBytes));
  }
  return out;
}

// Chat message content: a string, or OpenAI's list of {"type": "text", "text": ...} parts.
std::string content_text(const ordered_json& c, size_t i) {
  if (c.is_string()) return c.get<std::string>();
  const std::string where = fmt::format("messages[{}].content", i);
  if (!c.is_array()) throw bad(where, where + " must be a string or a list of text parts");
  std::string text;
  for (const auto& part : c) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
      throw bad(where, where + ": only {\"type\": \"text\", \"text\": ...} parts are served (no images or audio)");
    text += part["text"].get<std::string>();
  }
  return text;
}

ordered_json chat_messages(const ordered_json& v) {
  if (!v.is_array() || v.empty()) throw bad("messages", "messages must be a non-empty list of {role, content} objects");
  if (v.size() > kMaxMessages)
    throw bad("messages", fmt::format("messages has {} entries; at most {} are accepted", v.size(), kMaxMessages));
  ordered_json out = ordered_json::array();
  for (size_t i = 0; i < v.size(); ++i) {
    const auto& m = v[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw bad(where, where + " must be an object with a string \"role\"");
    std::string role = m["role"];
    if (role == "developer") role = "system";  // OpenAI's newer name for the system turn
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      throw bad(where + ".role", fmt::format("{}.role \"{}\" is not one of system, user, assistant, tool", where, role));
    const ordered_json* c = field(m, "content");
    out.push_back({{"role", role}, {"content", c ? content_text(*c, i) : std::string()}});
  }
  return out;
}

// "prompt": a string, a list of token ids, or a list holding one of those (lorafit serves one
// prompt per request).
void completion_prompt(const ordered_json& v, CompletionRequest& r) {
  const ordered_json* p = &v;
  if (v.is_array() && v.size() == 1 && (v[0].is_string() || v[0].is_array())) p = &v[0];
  if (p->is_string()) {
    r.prompt = p->get<std::string>();
    if (r.prompt.empty()) throw bad("prompt", "prompt is empty");
  } else if (p->is_array() && !p->empty() && (*p)[0].is_number()) {
    r.prompt_ids = token_ids(*p, "prompt", std::numeric_limits<int32_t>::max());
  } else {
    throw bad("prompt", "prompt must be a non-empty string or a list of token ids (one prompt per request)");
  }
}

// Fields OpenAI defines that lorafit accepts only at their neutral value.
void require_default(const ordered_json& body, const char* name, const ordered_json& neutral, const std::string& why) {
  const ordered_json* v = field(body, name);
  if (v && *v != neutral) throw bad(name, fmt::format("{} {} is not supported: {}", name, v->dump(), why));
}

}  // namespace

ApiError::ApiError(int s, std::string message, std::string p, std::string c)
    : std::runtime_error(one_line(message)), status(s), type(type_of(s)), param(std::move(p)), code(std::move(c)) {}

std::string error_body(const ApiError& e) {
  nlohmann::json err = {{"message", e.what()},
                        {"type", e.type},
                        {"param", e.param.empty() ? nlohmann::json() : nlohmann::json(e.param)},
                        {"code", e.code.empty() ? nlohmann::json() : nlohmann::json(e.code)}};
  return nlohmann::json{{"error", err}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

CompletionRequest parse_completion_request(std::string_view text, bool chat) {
  ordered_json body;
  try {
    body = parse_json_ordered(text, "the request body");
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "", "invalid_json");
  }
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object", "", "invalid_json");
  static const std::vector<std::string> common = {
      "model", "max_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "seed", "stop",
      "stop_token_ids", "ignore_eos", "stream", "stream_options", "n", "frequency_penalty", "presence_penalty",
      "logit_bias", "logprobs", "user", "metadata", "store", "service_tier"};
  static const std::vector<std::string> chat_only = {"messages", "max_completion_tokens", "top_logprobs", "tools",
                                                     "tool_choice", "parallel_tool_calls", "response_format"};
  static const std::vector<std::string> completion_only = {"prompt", "best_of", "echo", "suffix"};
  for (const auto& item : body.items()) {
    const std::string& k = item.key();  // not a structured binding: the lambda uses it (clang 14)
    auto known = [&](const std::vector<std::string>& names) {
      return std::find(names.begin(), names.end(), k) != names.end();
    };
    if (!known(common) && !known(chat ? chat_only : completion_only))
      throw bad(k, fmt::format("Unrecognized request argument supplied: {}", k.size() > 80 ? k.substr(0, 80) + "..." : k));
  }
  CompletionRequest r;
  r.chat = chat;
  const ordered_json* model = field(body, "model");
  if (!model || !model->is_string()) throw bad("model", "model must be given as a string (GET /v1/models lists them)");
  r.model = model->get<std::string>();
  if (chat) {
    const ordered_json* m = field(body, "messages");
    if (!m) throw bad("messages", "messages is required");
    r.messages = chat_messages(*m);
  } else {
    const ordered_json* p = field(body, "prompt");
    if (!p) throw bad("prompt", "prompt is required");
    completion_prompt(*p, r);
  }
  const int64_t kMaxInt = std::numeric_limits<int32_t>::max();
  for (const char* name : {"max_tokens", "max_completion_tokens"})
    if (const ordered_json* v = field(body, name)) r.max_tokens = integer(*v, name, 1, kMaxInt);
  if (const ordered_json* v = field(body, "temperature")) r.temperature = number(*v, "temperature", 0, 100);
  if (const ordered_json* v = field(body, "top_p")) r.top_p = number(*v, "top_p", 0, 1);
  if (r.top_p && *r.top_p == 0) throw bad("top_p", "top_p must be in (0, 1]");
  if (const ordered_json* v = field(body, "top_k")) r.top_k = integer(*v, "top_k", -1, kMaxInt);
  if (const ordered_json* v = field(body, "min_p")) r.min_p = number(*v, "min_p", 0, 1);
  if (const ordered_json* v = field(body, "repetition_penalty"))
    r.repetition_penalty = number(*v, "repetition_penalty", 1e-6, 100);
  if (const ordered_json* v = field(body, "seed")) {
    if (!v->is_number_integer()) throw bad("seed", "seed must be an integer");
    r.seed = v->is_number_unsigned() ? v->get<uint64_t>() : static_cast<uint64_t>(v->get<int64_t>());
  }
  if (const ordered_json* v = field(body, "stop")) r.stop = stop_strings(*v);
  if (const ordered_json* v = field(body, "stop_token_ids")) r.stop_token_ids = token_ids(*v, "stop_token_ids", kMaxStopIds);
  if (const ordered_json* v = field(body, "ignore_eos")) r.ignore_eos = boolean(*v, "ignore_eos");
  if (const ordered_json* v = field(body, "stream")) r.stream = boolean(*v, "stream");
  if (const ordered_json* v = field(body, "stream_options")) {
    if (!v->is_object()) throw bad("stream_options", "stream_options must be an object");
    for (const auto& [k, x] : v->items()) {
      if (k != "include_usage" && k != "continuous_usage_stats")
        throw bad("stream_options." + k, "Unrecognized request argument supplied: stream_options." + k);
      if (k == "include_usage" && !x.is_null()) r.include_usage = boolean(x, "stream_options.include_usage");
    }
    if (!r.stream) throw bad("stream_options", "stream_options is only allowed when stream is true");
  }
  if (const ordered_json* v = field(body, "n"); v && integer(*v, "n", 1, kMaxInt) != 1)
    throw bad("n", "n must be 1: lorafit serves one choice per request");
  require_default(body, "best_of", 1, "lorafit serves one choice per request");
  require_default(body, "frequency_penalty", 0, "use repetition_penalty");
  require_default(body, "presence_penalty", 0, "use repetition_penalty");
  require_default(body, "echo", false, "the prompt is not echoed");
  require_default(body, "suffix", "", "lorafit does not fill in the middle");
  if (chat) {  // logprobs: bool, top_logprobs: 0..20 (vLLM refuses top_logprobs without logprobs)
    const ordered_json* lp = field(body, "logprobs");
    const ordered_json* top = field(body, "top_logprobs");
    const bool want = lp && boolean(*lp, "logprobs");
    const int k = top ? static_cast<int>(integer(*top, "top_logprobs", 0, kMaxTopLogprobs)) : 0;
    if (k > 0 && !want) throw bad("top_logprobs", "when using top_logprobs, logprobs must be set to true");
    if (want) r.logprobs = k;
  } else if (const ordered_json* lp = field(body, "logprobs")) {
    r.logprobs = static_cast<int>(integer(*lp, "logprobs", 0, kMaxTopLogprobs));
  }
  require_default(body, "tools", ordered_json::array(), "tool calls are not served");
  require_default(body, "tool_choice", "none", "tool calls are not served");
  if (const ordered_json* v = field(body, "logit_bias"); v && !(v->is_object() && v->empty()))
    throw bad("logit_bias", "logit_bias is not supported");
  if (const ordered_json* v = field(body, "response_format");
      v && !(v->is_object() && v->value("type", "") == "text"))
    throw bad("response_format", "only {\"type\": \"text\"} is served (no JSON mode)");
  return r;
}

}  // namespace lorafit::serve
