// lorafit chat: an interactive multi-turn chat through the model's own chat template.
//   lorafit chat --model DIR [--adapter DIR ...] [--system TEXT]
//   lorafit chat --adapter DIR          (the adapter folder records its base model)
// On a terminal: line editing and history (libedit, cli/line_editor.h), a banner naming the
// model and adapter, tokens/s after each answer. Multi-line messages: """ ... """ or a
// trailing \. Answers stream in whole characters as they are decoded; Ctrl-C stops an
// answer, not the program; /reset, /system TEXT, /adapters, /adapter NAME, /help, /quit
// (generate/chat_loop.h).
#include <unistd.h>

#include <iostream>
#include <memory>

#include "cli/command.h"
#include "cli/gen_flags.h"
#include "cli/line_editor.h"

namespace lorafit::cli {

namespace {

struct ChatOptions {
  GenFlags f;
  int64_t max_context = 8192;
};

std::string banner(const Inference& inf, const InferenceChat& chat, int64_t capacity) {
  const std::string adapter = chat.current_adapter();
  std::string a = adapter == "base" ? "none" : adapter, others;
  for (const auto& n : inf.adapter_names())
    if (n != adapter) others += (others.empty() ? "" : ", ") + n;
  if (!others.empty()) a += " (also loaded: " + others + "; /adapter NAME switches)";
  return fmt::format(
      "lorafit chat · model {} · adapter {} · context {} tokens\n"
      "/help for commands, /quit or Ctrl-D to leave; \"\"\" starts and ends a multi-line message; "
      "↑/↓ history, Ctrl-R search\n",
      inf.model_dir().string(), a, capacity);
}

void run_chat(const ChatOptions& o) {
  const std::unique_ptr<Inference> loaded = load_inference(o.f);
  Inference& inf = *loaded;
  const GenerateSettings s = resolve_settings(inf, o.f);
  if (o.max_context < 2) throw Error("--max_context {}: must be at least 2", o.max_context);
  const int64_t capacity = std::min<int64_t>(context_length(inf.model().config()), o.max_context);
  InferenceChat model(inf, s, capacity);
  const bool tty = isatty(STDIN_FILENO) != 0 && isatty(STDOUT_FILENO) != 0;
  ChatLoopOptions lo;
  lo.system = o.f.system;
  lo.prompts = isatty(STDIN_FILENO) != 0;
  lo.stats = tty;
  if (tty) {
    std::cout << banner(inf, model, capacity) << std::flush;
    EditLineInput lines(chat_history_path());
    run_chat_loop(model, lines, std::cout, lo);
  } else {
    run_chat_loop(model, std::cin, std::cout, lo);
  }
}

void setup(CLI::App& sub) {
  auto o = std::make_shared<ChatOptions>();
  add_gen_flags(sub, o->f);
  sub.add_option("--max_context", o->max_context, "KV-cache positions of the conversation (at most the model's)")
      ->capture_default_str();
  sub.callback([o] { run_chat(*o); });
}

const bool registered = register_command("chat", "chat with a model (and its adapters) in the terminal", setup);

}  // namespace

}  // namespace lorafit::cli
