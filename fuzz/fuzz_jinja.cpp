// libFuzzer target: the Jinja chat-template engine (parse + render). The input is the
// template source; the context is what transformers' apply_chat_template passes (messages
// with every role, tools, add_generation_prompt, the special tokens, a namespace-friendly
// mix of values). Must end with output or lorafit::Error "<name>:<line>: ...", within the
// limits of jinja_limits.h (no hang, no unbounded allocation, no stack overflow).
#include <cstdint>
#include <string>

#include "fuzz_common.h"
#include "tokenizer/jinja.h"

using namespace lorafit;
using namespace lorafit::jinja;

namespace {

const Value& context() {
  static const Value ctx = Value::from_json(nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are a lawyer."},
      {"role": "user", "content": "What is 2+2? 法律"},
      {"role": "assistant", "content": "4", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]},
      {"role": "tool", "content": "{\"ok\": true}"},
      {"role": "user", "content": ["part", {"type": "text", "text": "t"}]}
    ],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>", "n": 3, "x": 2.5, "nothing": null
  })"));
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string src(reinterpret_cast<const char*>(data), size);
  fuzz::refuse_or_accept(fuzz::as_text(data, size), [&] { (void)Template(src, "fuzz.jinja").render(context()); });
  return 0;
}
