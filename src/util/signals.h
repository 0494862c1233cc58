// Signals as requests, not endings. POSIX lives in signals.cpp only (docs/DESIGN.md §4: a
// Windows build changes this folder).
//  - InterruptScope (chat): while it lives, SIGINT only sets a flag that long loops check (chat
//    stops the current answer and keeps the conversation).
//  - StopScope (training): SIGINT and SIGTERM ask the run to stop at its next safe point. The
//    first signal sets stop_requested() and calls on_first on a watcher thread; a second one
//    calls on_force there (last words, e.g. a status file) and ends the process at once with
//    exit status 128 + signal. The callbacks run on an ordinary thread, not in the handler,
//    so they may lock, allocate and write files.
#pragma once
#include <functional>
#include <thread>

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

class StopScope {
 public:
  using Callback = std::function<void(int signal)>;
  // Installs the SIGINT/SIGTERM handlers and starts the watcher thread. One scope at a time.
  StopScope(Callback on_first, Callback on_force);
  ~StopScope();  // restores the previous handlers and joins the watcher
  StopScope(const StopScope&) = delete;
  StopScope& operator=(const StopScope&) = delete;

  bool stop_requested() const;
  int stop_signal() const;  // the first signal's number, 0 before any
  static const char* signal_name(int signal);  // "SIGINT", "SIGTERM"

 private:
  void watch();
  Callback on_first_, on_force_;
  int pipe_[2] = {-1, -1};  // the handler writes one byte per signal; the watcher reads them
  std::thread watcher_;
};

}  // namespace lorafit
