#include "cli/line_editor.h"

#include <cstdio>
#include <cstdlib>

// clang-format off
#include <editline/readline.h>
// clang-format on

namespace lorafit::cli {

namespace fs = std::filesystem;

namespace {
constexpr int kHistoryEntries = 1000;
}

EditLineInput::EditLineInput(fs::path history_file) : history_(std::move(history_file)) {
  rl_initialize();
  using_history();
  stifle_history(kHistoryEntries);
  if (!history_.empty()) read_history(history_.c_str());
}

bool EditLineInput::read_line(const std::string& prompt, std::string& line) {
  char* s = readline(prompt.c_str());
  if (!s) {  // Ctrl-D on an empty line
    std::fputs("\n", stdout);
    return false;
  }
  line = s;
  std::free(s);
  return true;
}

void EditLineInput::remember(const std::string& entry) {
  add_history(entry.c_str());
  if (history_.empty()) return;
  std::error_code ec;
  fs::create_directories(history_.parent_path(), ec);
  write_history(history_.c_str());  // best effort: a read-only home only loses the history
}

fs::path chat_history_path() {
  if (const char* p = std::getenv("LORAFIT_HISTORY"); p && *p) return p;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return fs::path(x) / "lorafit" / "chat_history";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".local" / "state" / "lorafit" / "chat_history";
  return {};
}

}  // namespace lorafit::cli
