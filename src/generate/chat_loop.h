// The interactive chat loop of `lorafit chat`, apart from any model so a test can drive it
// with a fake: reads lines, keeps the conversation, runs commands, streams the answers.
//
// Lines: text → a user turn, answered; "/reset" clears the conversation (the system prompt
// stays); "/system TEXT" sets the system prompt and starts over ("/system" alone removes it);
// "/adapters" lists the adapters, "/adapter NAME" switches ("base": none); "/help";
// "/quit" or "/exit" (or end of input) ends. An answer stopped by Ctrl-C is kept as it is.
// Multi-line messages (paste a whole case): a line that starts with """ opens a message that
// the next line ending with """ closes (as `ollama run`); a line ending with \ continues on
// the next line (as llama-cli).
#pragma once
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace lorafit {

// How the last answer went, for the line printed after it.
struct ReplyInfo {
  int64_t tokens = 0;         // generated tokens
  double seconds = 0;         // time from the prompt to the last token
  std::string stop;           // "eos", "max_new_tokens", "context_full", "interrupted" ("" unknown)
  int64_t context_used = 0;   // positions of the conversation after the answer
  int64_t context_size = 0;   // positions the KV cache holds (--max_context)
  int64_t max_new_tokens = 0;
};

class ChatModel {
 public:
  virtual ~ChatModel() = default;
  // Answers `messages` (a JSON array of {role, content} ending with a user turn), passing the
  // text to `emit` in whole characters as it is decoded; returns the whole answer.
  virtual std::string reply(const nlohmann::ordered_json& messages, const std::function<void(std::string_view)>& emit) = 0;
  virtual ReplyInfo last_reply() const { return {}; }
  virtual std::vector<std::string> adapter_names() const { return {}; }
  virtual std::string current_adapter() const { return "base"; }
  virtual void use_adapter(const std::string& name);  // throws Error for an unknown name
};

// Where lines come from: a stream (pipes, tests) or a line editor (cli: libedit).
class LineInput {
 public:
  virtual ~LineInput() = default;
  // One line without its newline, after showing `prompt` (when the input shows prompts);
  // false at end of input.
  virtual bool read_line(const std::string& prompt, std::string& line) = 0;
  virtual void remember(const std::string& entry) {}  // history of a line editor
};

class StreamLineInput final : public LineInput {
 public:
  // `prompts_to`: where to print prompts (null: none, as for a pipe).
  StreamLineInput(std::istream& in, std::ostream* prompts_to) : in_(in), out_(prompts_to) {}
  bool read_line(const std::string& prompt, std::string& line) override;

 private:
  std::istream& in_;
  std::ostream* out_;
};

struct ChatLoopOptions {
  std::optional<std::string> system;
  bool prompts = true;  // print "> " before each line (off when stdin is not a terminal)
  bool stats = false;   // "[N tokens, X tokens/s]" after each answer (on for a terminal)
};

// Runs until /quit or end of input. Errors of one turn (Error) are printed and the loop goes on.
void run_chat_loop(ChatModel& model, LineInput& in, std::ostream& out, const ChatLoopOptions& opts);
void run_chat_loop(ChatModel& model, std::istream& in, std::ostream& out, const ChatLoopOptions& opts);

// The message that starts with `first` (a """ block or \ continuations), reading the rest
// from `in`; nullopt when the input ends inside an unfinished """ block.
std::optional<std::string> read_message(LineInput& in, const std::string& first);

}  // namespace lorafit
