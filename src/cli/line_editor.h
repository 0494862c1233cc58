// Line editing and history for `lorafit chat` on a terminal, through libedit's readline
// interface (Debian's libedit-dev). libedit rather than GNU readline: it is BSD-licensed, so
// the lorafit binary keeps its own licence, and it gives what a chat needs: emacs/vi keys,
// ↑/↓ through earlier messages, Ctrl-R search, history kept across sessions.
#pragma once
#include <filesystem>
#include <string>

#include "generate/chat_loop.h"

namespace lorafit::cli {

class EditLineInput final : public LineInput {
 public:
  // Loads the history file (absent: a new one); it is rewritten after each message.
  explicit EditLineInput(std::filesystem::path history_file);
  bool read_line(const std::string& prompt, std::string& line) override;
  void remember(const std::string& entry) override;

 private:
  std::filesystem::path history_;
};

// $LORAFIT_HISTORY, else $XDG_STATE_HOME/lorafit/chat_history, else
// ~/.local/state/lorafit/chat_history; empty when there is no home to keep it in.
std::filesystem::path chat_history_path();

}  // namespace lorafit::cli
