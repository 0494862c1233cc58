// Terminal progress for long work (docs/DESIGN.md §8). On a TTY: one line redrawn in place
//   train  37% |██████▊           | 115/312  loss 1.234  lr 9.1e-05  812 tok/s  ETA 04:12
// Not a TTY (CI logs, nohup, a pipe): a plain line every `plain_every_s` seconds and at the
// end, so logs stay readable:
//   train step 115/312 (37%) loss 1.234 lr 9.1e-05 812 tok/s elapsed 02:30 ETA 04:12
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace lorafit::track {

struct ProgressStats {
  double loss = -1;           // < 0: not shown
  double learning_rate = -1;  // < 0: not shown
  double tokens_per_s = -1;   // < 0: not shown
};

class Progress {
 public:
  enum class Mode { automatic, tty, plain, quiet };
  // `total` steps (0 = unknown: no percentage or ETA). `label` prefixes every line.
  Progress(std::string label, int64_t total, std::FILE* out = stderr, Mode mode = Mode::automatic,
           double plain_every_s = 10.0);
  ~Progress();  // finish() if not done
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // A resumed run starts at `step` done: the ETA counts only the steps done since.
  void set_resumed_from(int64_t step) { step_ = first_step_ = printed_step_ = step; }
  // Step `step` (1-based count of completed steps) done. Cheap: redraws at most ~10×/s.
  void update(int64_t step, const ProgressStats& stats = {});
  // Prints a full line (e.g. an eval result) without tearing the bar; the bar is redrawn. In
  // plain mode a line counts as progress shown: the next update() prints nothing and the next
  // plain line waits plain_every_s.
  void message(std::string_view line);
  // Final line (always printed, in both modes) and newline on a TTY.
  void finish();

  bool is_tty() const { return mode_ == Mode::tty; }
  // For tests: the text the next redraw would print (no escape codes).
  std::string render_line(bool tty) const;

 private:
  void draw(bool force);
  std::string label_;
  int64_t total_ = 0, step_ = 0, first_step_ = 0, printed_step_ = -1;
  ProgressStats stats_;
  std::FILE* out_;
  Mode mode_;
  double plain_every_s_;
  bool finished_ = false;
  bool line_since_update_ = false;  // plain mode: message() printed since the last update()
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);  // "04:12", "1:02:03"

}  // namespace lorafit::track
