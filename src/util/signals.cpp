#include "util/signals.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "util/error.h"

namespace lorafit {

namespace {

std::atomic<bool> g_interrupted{false};  // lock-free: safe to store from a signal handler
struct sigaction g_previous;

extern "C" void on_sigint(int) { g_interrupted.store(true); }

// StopScope's state, reached from the handler: only lock-free atomics and write(2).
std::atomic<int> g_stop_signal{0};
std::atomic<int> g_stop_count{0};
std::atomic<int> g_stop_pipe{-1};
struct sigaction g_stop_prev_int, g_stop_prev_term;

// write(2) is async-signal-safe; a full pipe (a flood of signals) drops the byte, harmlessly.
void write_byte(int fd, unsigned char b) {
  if (write(fd, &b, 1) < 0) return;
}

extern "C" void on_stop_signal(int sig) {
  int expected = 0;
  g_stop_signal.compare_exchange_strong(expected, sig);
  g_stop_count.fetch_add(1);
  const int fd = g_stop_pipe.load();
  const unsigned char b = static_cast<unsigned char>(sig);
  if (fd >= 0) write_byte(fd, b);  // non-blocking: never stalls the handler
}

}  // namespace

InterruptScope::InterruptScope() {
  g_interrupted.store(false);
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a read waiting for the next chat line goes on waiting
  sigaction(SIGINT, &sa, &g_previous);
}

InterruptScope::~InterruptScope() { sigaction(SIGINT, &g_previous, nullptr); }

bool interrupt_requested() { return g_interrupted.load(); }
void clear_interrupt() { g_interrupted.store(false); }

StopScope::StopScope(Callback on_first, Callback on_force)
    : on_first_(std::move(on_first)), on_force_(std::move(on_force)) {
  LF_CHECK(g_stop_pipe.load() < 0, "StopScope: one at a time");
  LF_CHECK(pipe2(pipe_, O_CLOEXEC) == 0, "StopScope: pipe2 failed");
  fcntl(pipe_[1], F_SETFL, O_NONBLOCK);
  g_stop_signal.store(0);
  g_stop_count.store(0);
  g_stop_pipe.store(pipe_[1]);
  watcher_ = std::thread([this] { watch(); });
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // file reads and writes in progress carry on
  sigaction(SIGINT, &sa, &g_stop_prev_int);
  sigaction(SIGTERM, &sa, &g_stop_prev_term);
}

StopScope::~StopScope() {
  sigaction(SIGINT, &g_stop_prev_int, nullptr);
  sigaction(SIGTERM, &g_stop_prev_term, nullptr);
  g_stop_pipe.store(-1);
  write_byte(pipe_[1], 0);  // byte 0: the watcher returns
  watcher_.join();
  close(pipe_[0]);
  close(pipe_[1]);
}

void StopScope::watch() {
  int seen = 0;
  for (;;) {
    unsigned char b = 0;
    const ssize_t n = read(pipe_[0], &b, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || b == 0) return;
    ++seen;
    if (seen == 1) {
      if (on_first_) on_first_(b);
    } else {
      if (on_force_) on_force_(b);
      std::fflush(nullptr);
      _exit(128 + b);
    }
  }
}

bool StopScope::stop_requested() const { return g_stop_count.load() > 0; }
int StopScope::stop_signal() const { return g_stop_signal.load(); }

const char* StopScope::signal_name(int sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "a signal";
  }
}

}  // namespace lorafit
