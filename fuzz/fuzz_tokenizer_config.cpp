// libFuzzer target: tokenizer_config.json (TokenizerConfig::parse) and the chat template it
// carries, rendered over a fixed conversation the way training and chat render records.
#include <cstdint>
#include <string>

#include "formats/json_util.h"
#include "fuzz_common.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer_config.h"

using namespace lorafit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::refuse_or_accept(fuzz::as_text(data, size), [&] {
    const TokenizerConfig c = TokenizerConfig::parse(parse_json(text, "tokenizer_config.json"), "tokenizer_config.json");
    if (c.chat_templates.empty()) return;
    const ChatTemplate t = ChatTemplate::from_config(c);
    const auto messages = nlohmann::ordered_json::parse(
        R"([{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])");
    (void)t.render(messages);
  });
  return 0;
}
