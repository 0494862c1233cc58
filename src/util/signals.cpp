#include "util/signals.h"

#include <signal.h>

#include <atomic>

namespace lorafit {

namespace {

std::atomic<bool> g_interrupted{false};  // lock-free: safe to store from a signal handler
struct sigaction g_previous;

extern "C" void on_sigint(int) { g_interrupted.store(true); }

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

}  // namespace lorafit
