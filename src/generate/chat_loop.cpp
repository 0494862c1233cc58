#include "generate/chat_loop.h"

#include <istream>
#include <ostream>

#include <fmt/format.h>

#include "util/error.h"

namespace lorafit {

void ChatModel::use_adapter(const std::string& name) {
  throw Error("unknown adapter \"{}\": no adapters were loaded (give --adapter DIR)", name);
}

bool StreamLineInput::read_line(const std::string& prompt, std::string& line) {
  if (out_) *out_ << prompt << std::flush;
  if (!std::getline(in_, line)) return false;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

namespace {

const char* const kHelp =
    "commands: /reset (new conversation), /system TEXT (set the system prompt and start over), /adapters, "
    "/adapter NAME (\"base\" for none), /quit; \"\"\" starts and ends a multi-line message, \\ at the end of a "
    "line continues it; Ctrl-C stops an answer";

constexpr std::string_view kFence = "\"\"\"";
constexpr const char* kMore = "... ";

bool ends_with(const std::string& s, std::string_view t) { return s.size() >= t.size() && s.ends_with(t); }

// The line after an answer: its speed, and why it stopped when that cut it short.
void report_reply(const ReplyInfo& r, std::ostream& out, bool stats) {
  if (r.stop == "context_full")
    out << fmt::format("[the context is full ({} of {} positions): the answer was cut; /reset starts a new "
                       "conversation]\n",
                       r.context_used, r.context_size);
  else if (stats && r.stop == "max_new_tokens")
    out << fmt::format("[the answer was cut at max_new_tokens ({}); raise --max_new_tokens for longer answers]\n",
                       r.max_new_tokens);
  if (stats && r.tokens > 0 && r.seconds > 0)
    out << fmt::format("[{} tokens, {:.1f} tokens/s]\n", r.tokens, static_cast<double>(r.tokens) / r.seconds);
}

}  // namespace

std::optional<std::string> read_message(LineInput& in, const std::string& first) {
  std::string msg, line;
  if (first.starts_with(kFence)) {
    std::string rest = first.substr(kFence.size());
    if (rest.size() >= kFence.size() && ends_with(rest, kFence))  // """one line"""
      return rest.substr(0, rest.size() - kFence.size());
    msg = rest;
    bool first_line = true;
    while (in.read_line(kMore, line)) {
      const bool last = ends_with(line, kFence);
      if (last) line.resize(line.size() - kFence.size());
      if (!(first_line && msg.empty())) msg += "\n";
      msg += line;
      first_line = false;
      if (last) return msg;
    }
    return std::nullopt;
  }
  msg = first;
  while (ends_with(msg, "\\")) {
    msg.back() = '\n';
    if (!in.read_line(kMore, line)) break;
    msg += line;
  }
  return msg;
}

void run_chat_loop(ChatModel& model, LineInput& in, std::ostream& out, const ChatLoopOptions& opts) {
  std::optional<std::string> system = opts.system;
  nlohmann::ordered_json history = nlohmann::ordered_json::array();  // user/assistant turns
  auto conversation = [&] {
    nlohmann::ordered_json m = nlohmann::ordered_json::array();
    if (system) m.push_back({{"role", "system"}, {"content", *system}});
    for (const auto& t : history) m.push_back(t);
    return m;
  };
  std::string line;
  for (;;) {
    if (!in.read_line(opts.prompts ? "> " : "", line)) break;
    if (line.empty()) continue;
    if (line[0] == '/') {
      in.remember(line);
      const size_t sp = line.find(' ');
      const std::string cmd = line.substr(0, sp), arg = sp == std::string::npos ? "" : line.substr(sp + 1);
      if (cmd == "/quit" || cmd == "/exit") break;
      if (cmd == "/reset") {
        history = nlohmann::ordered_json::array();
        out << "[new conversation]\n";
      } else if (cmd == "/system") {
        system = arg.empty() ? std::nullopt : std::optional<std::string>(arg);
        history = nlohmann::ordered_json::array();
        out << (system ? "[system prompt set; new conversation]\n" : "[system prompt removed; new conversation]\n");
      } else if (cmd == "/adapters") {
        out << "[adapters: base";
        for (const auto& n : model.adapter_names()) out << ", " << n;
        out << "; current: " << model.current_adapter() << "]\n";
      } else if (cmd == "/adapter") {
        try {
          model.use_adapter(arg);
          out << "[adapter: " << model.current_adapter() << "]\n";
        } catch (const Error& e) {
          out << "[error: " << e.what() << "]\n";
        }
      } else if (cmd == "/help") {
        out << "[" << kHelp << "]\n";
      } else {
        out << "[unknown command " << cmd << "; " << kHelp << "]\n";
      }
      out << std::flush;
      continue;
    }
    const std::optional<std::string> msg = read_message(in, line);
    if (!msg) {
      out << "[the input ended inside a \"\"\" message; it was not sent]\n" << std::flush;
      break;
    }
    in.remember(line.starts_with(kFence) ? std::string(kFence) + *msg + std::string(kFence) : *msg);
    history.push_back({{"role", "user"}, {"content", *msg}});
    try {
      const std::string answer = model.reply(conversation(), [&](std::string_view s) { out << s << std::flush; });
      out << "\n";
      report_reply(model.last_reply(), out, opts.stats);
      out << std::flush;
      history.push_back({{"role", "assistant"}, {"content", answer}});
    } catch (const Error& e) {
      history.erase(history.end() - 1);  // the turn did not happen
      out << "[error: " << e.what() << "]\n" << std::flush;
    }
  }
}

void run_chat_loop(ChatModel& model, std::istream& in, std::ostream& out, const ChatLoopOptions& opts) {
  StreamLineInput lines(in, opts.prompts ? &out : nullptr);
  run_chat_loop(model, lines, out, opts);
}

}  // namespace lorafit
