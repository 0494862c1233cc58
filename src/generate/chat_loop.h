// The interactive chat loop of `lorafit chat`, apart from any model so a test can drive it
// with a fake: reads lines, keeps the conversation, runs commands, streams the answers.
//
// Lines: text → a user turn, answered; "/reset" clears the conversation (the system prompt
// stays); "/system TEXT" sets the system prompt and starts over ("/system" alone removes it);
// "/adapters" lists the adapters, "/adapter NAME" switches ("base": none); "/help";
// "/quit" or "/exit" (or end of input) ends. An answer stopped by Ctrl-C is kept as it is.
#pragma once
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace lorafit {

class ChatModel {
 public:
  virtual ~ChatModel() = default;
  // Answers `messages` (a JSON array of {role, content} ending with a user turn), passing the
  // text to `emit` in whole characters as it is decoded; returns the whole answer.
  virtual std::string reply(const nlohmann::ordered_json& messages, const std::function<void(std::string_view)>& emit) = 0;
  virtual std::vector<std::string> adapter_names() const { return {}; }
  virtual std::string current_adapter() const { return "base"; }
  virtual void use_adapter(const std::string& name);  // throws Error for an unknown name
};

struct ChatLoopOptions {
  std::optional<std::string> system;
  bool prompts = true;  // print "> " before each line (off when stdin is not a terminal)
};

// Runs until /quit or end of input. Errors of one turn (Error) are printed and the loop goes on.
void run_chat_loop(ChatModel& model, std::istream& in, std::ostream& out, const ChatLoopOptions& opts);

}  // namespace lorafit
