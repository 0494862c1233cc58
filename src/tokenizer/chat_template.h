// Chat templates: render a conversation exactly as transformers 4.46
// `apply_chat_template(..., tokenize=False)` does, and report which bytes (and then which
// tokens) each message produced, so the trainer can compute the loss on assistant turns only.
//
// How spans are found (exact for the Qwen2.5, Qwen3, Llama 3/3.1 and Mistral templates):
// 1. Attribution: while the template's `for` loop iterates message dict i (also through
//    `messages[1:]` or selectattr, which keep the same dicts), everything it writes belongs
//    to message i. Text written outside such a loop (default system prompt, a system
//    message the template hoists out of the loop, the generation prompt) belongs to none.
// 2. Assistant header: the generation prompt G = render(messages[:i], gen=true) minus
//    render(messages[:i], gen=false). If message i's text starts with G, G is the header
//    (prompt, not trained): `<|im_start|>assistant\n`, Llama's `<|start_header_id|>assistant
//    <|end_header_id|>\n\n`, Qwen3 with enable_thinking=false also the empty think block.
//    Otherwise the header is the longest common prefix of the message text and G (Qwen3's
//    earlier turns, which have no think block). Mistral has no G: all of it is trained.
// 3. Trained part: from the end of the header to the end of the last end-of-turn marker
//    (eos_token, e.g. `<|im_end|>`, `<|eot_id|>`, `</s>`) inside the message's text; what
//    follows it (ChatML's "\n", Mistral's " ") is prompt. No marker: to the message's end.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/jinja.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"
#include "util/error.h"

namespace lorafit {

// What encode_chat does when encoding span by span differs from encoding the whole text
// (a boundary between prompt and reply falls inside a token, e.g. a reply that starts with
// "\n" right after ChatML's "assistant\n", which BPE merges into one "\n\n" token).
enum class ChatBoundaryPolicy {
  kError,       // throw Error naming the template, message and token (default)
  kPerSegment,  // keep the per-span ids: prompt and reply tokenized separately, as the
                // common "tokenize prompt, tokenize response, concatenate" SFT scripts do
  kWholeText,   // keep the whole-text ids (what apply_chat_template(tokenize=True) gives);
                // a token is trainable when any of its bytes is
};

struct ChatOptions {
  bool add_generation_prompt = false;
  nlohmann::ordered_json tools;  // null: none (passed to the template as None)
  // More template variables, e.g. {"enable_thinking": false}; they override defaults.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  // End-of-turn markers for the trained span; empty: the config's eos_token.
  std::vector<std::string> end_of_turn;
  ChatBoundaryPolicy boundary = ChatBoundaryPolicy::kError;  // used by encode_chat only
};

// A byte range of the rendered text.
struct ChatSegment {
  size_t begin = 0, end = 0;
  int message = -1;        // index into messages, -1: template text of no message
  bool trainable = false;  // part of an assistant reply (content + end-of-turn marker)
};

struct ChatRendering {
  std::string text;
  std::vector<ChatSegment> segments;  // cover text exactly, in order
};

struct ChatEncoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> message;    // per token: message index or -1
  std::vector<uint8_t> trainable;  // per token: 1 = compute the loss on it
};

class ChatTemplate {
 public:
  // `name` appears in error messages (e.g. "Qwen2.5 tokenizer_config.json chat_template").
  // `special_tokens` is an object like TokenizerConfig::special_tokens_map().
  ChatTemplate(const std::string& source, std::string name, nlohmann::ordered_json special_tokens);
  // The template transformers would use for this config (tool_use when `with_tools`).
  static ChatTemplate from_config(const TokenizerConfig& config, bool with_tools = false);

  // messages: a JSON array of {role, content, ...} objects. Throws Error for an empty list,
  // non-object messages, and whatever the template raises (with the template name/line).
  std::string render(const nlohmann::ordered_json& messages, const ChatOptions& opts = {}) const;
  ChatRendering render_with_spans(const nlohmann::ordered_json& messages, const ChatOptions& opts = {}) const;

  const std::string& name() const { return name_; }
  const nlohmann::ordered_json& special_tokens() const { return special_; }

 private:
  jinja::RenderResult render_impl(const nlohmann::ordered_json& messages, const ChatOptions& opts, bool track) const;
  std::string name_;
  jinja::Template tmpl_;
  nlohmann::ordered_json special_;
};

// Renders, then tokenizes run by run (a run: consecutive segments that are all trainable or
// all not; parse_special=true; no BOS added: the template writes any BOS itself, as
// apply_chat_template does with add_special_tokens=False). When the concatenated ids differ
// from encoding the whole text, opts.boundary decides (by default: throw Error).
// With kWholeText, a tokenizer whose normalizer or decoder rewrites the text beyond NFC leaves
// no way to place the tokens on the messages: ChatPlacementError (the caller names its setting).
struct ChatPlacementError : Error {
  using Error::Error;
};
ChatEncoding encode_chat(const Tokenizer& tok, const ChatTemplate& tmpl, const nlohmann::ordered_json& messages,
                         const ChatOptions& opts = {});

}  // namespace lorafit
