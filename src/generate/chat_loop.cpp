#include "generate/chat_loop.h"

#include <istream>
#include <ostream>

#include "util/error.h"

namespace lorafit {

void ChatModel::use_adapter(const std::string& name) {
  throw Error("unknown adapter \"{}\": no adapters were loaded (give --adapter DIR)", name);
}

namespace {

const char* const kHelp =
    "commands: /reset (new conversation), /system TEXT (set the system prompt and start over), /adapters, "
    "/adapter NAME (\"base\" for none), /quit; Ctrl-C stops an answer";

}  // namespace

void run_chat_loop(ChatModel& model, std::istream& in, std::ostream& out, const ChatLoopOptions& opts) {
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
    if (opts.prompts) out << "> " << std::flush;
    if (!std::getline(in, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line[0] == '/') {
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
    history.push_back({{"role", "user"}, {"content", line}});
    try {
      const std::string answer = model.reply(conversation(), [&](std::string_view s) { out << s << std::flush; });
      out << "\n" << std::flush;
      history.push_back({{"role", "assistant"}, {"content", answer}});
    } catch (const Error& e) {
      history.erase(history.end() - 1);  // the turn did not happen
      out << "[error: " << e.what() << "]\n" << std::flush;
    }
  }
}

}  // namespace lorafit
