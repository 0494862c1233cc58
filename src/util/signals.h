// Ctrl-C as a request, not an ending: while an InterruptScope lives, SIGINT only sets a flag
// that long loops check (chat stops the current answer and keeps the conversation). POSIX
// lives in signals.cpp only (DESIGN.md §4: a Windows build changes this folder).
#pragma once

namespace lorafit {

class InterruptScope {
 public:
  InterruptScope();   // installs the handler (restarting interrupted reads) and clears the flag
  ~InterruptScope();  // restores the previous handler
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
};

bool interrupt_requested();  // a SIGINT arrived since the last clear
void clear_interrupt();

}  // namespace lorafit
