// lorafit chat: an interactive multi-turn chat through the model's own chat template.
//   lorafit chat --model DIR [--adapter DIR ...] [--system TEXT]
//   lorafit chat --adapter DIR          (the adapter folder records its base model)
// Answers stream in whole characters as they are decoded; Ctrl-C stops an answer, not the
// program; /reset, /system TEXT, /adapters, /adapter NAME, /help, /quit (generate/chat_loop.h).
#include <unistd.h>

#include <iostream>
#include <memory>

#include "cli/command.h"
#include "cli/gen_flags.h"

namespace lorafit::cli {

namespace {

struct ChatOptions {
  GenFlags f;
  int64_t max_context = 8192;
};

void run_chat(const ChatOptions& o) {
  const std::unique_ptr<Inference> loaded = load_inference(o.f);
  Inference& inf = *loaded;
  const GenerateSettings s = resolve_settings(inf, o.f);
  if (o.max_context < 2) throw Error("--max_context {}: must be at least 2", o.max_context);
  const int64_t capacity = std::min<int64_t>(context_length(inf.model().config()), o.max_context);
  InferenceChat model(inf, s, capacity);
  const bool tty = isatty(STDIN_FILENO) != 0;
  if (tty) std::cout << "[lorafit chat: /help for commands, /quit to leave]\n";
  ChatLoopOptions lo;
  lo.system = o.f.system;
  lo.prompts = tty;
  run_chat_loop(model, std::cin, std::cout, lo);
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
