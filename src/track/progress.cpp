#include "track/progress.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "util/sysinfo.h"

namespace lorafit::track {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  auto s = static_cast<long long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{:02}:{:02}", s / 60, s % 60);
}

Progress::Progress(std::string label, int64_t total, std::FILE* out, Mode mode, double plain_every_s)
    : label_(std::move(label)), total_(total), out_(out), mode_(mode), plain_every_s_(plain_every_s) {
  if (mode_ == Mode::automatic) mode_ = sys::is_terminal(out_) ? Mode::tty : Mode::plain;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

std::string Progress::render_line(bool tty) const {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string stats;
  if (stats_.loss >= 0) stats += fmt::format("  loss {:.4f}", stats_.loss);
  if (stats_.learning_rate >= 0) stats += fmt::format("  lr {:.2e}", stats_.learning_rate);
  if (stats_.tokens_per_s >= 0) stats += fmt::format("  {:.0f} tok/s", stats_.tokens_per_s);
  std::string eta = "--:--";
  const int64_t done = step_ - first_step_;  // this session's steps
  if (total_ > 0 && done > 0) eta = format_duration(elapsed / static_cast<double>(done) * static_cast<double>(total_ - step_));
  double frac = total_ > 0 ? std::clamp(static_cast<double>(step_) / static_cast<double>(total_), 0.0, 1.0) : 0.0;
  if (!tty) {
    std::string pos = total_ > 0 ? fmt::format("{}/{} ({:.0f}%)", step_, total_, 100 * frac) : fmt::format("{}", step_);
    return fmt::format("{} step {}{}  elapsed {}  ETA {}", label_, pos, stats, format_duration(elapsed), eta);
  }
  // Bar width: what is left of the terminal after the text, between 10 and 40 cells.
  std::string head = total_ > 0 ? fmt::format("{} {:3.0f}% ", label_, 100 * frac) : label_ + " ";
  std::string tail = total_ > 0 ? fmt::format(" {}/{}{}  ETA {}", step_, total_, stats, eta)
                                : fmt::format(" {}{}  {}", step_, stats, format_duration(elapsed));
  int cols = sys::terminal_columns(out_);
  int width = std::clamp(cols - 3 - static_cast<int>(head.size() + tail.size()), 10, 40);
  if (total_ <= 0) return head + tail.substr(1);
  static const char* kEighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
  int cells8 = static_cast<int>(frac * width * 8);
  std::string bar = "|";
  for (int i = 0; i < cells8 / 8; ++i) bar += "█";
  int drawn = cells8 / 8;
  if (drawn < width) {
    bar += kEighths[cells8 % 8];
    bar += std::string(static_cast<size_t>(width - drawn - ((cells8 % 8) ? 1 : 0)), ' ');
  }
  bar += "|";
  return head + bar + tail;
}

void Progress::draw(bool force) {
  if (mode_ == Mode::quiet || finished_) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (mode_ == Mode::tty) {
    if (!force && since < 0.1) return;
    std::string line = render_line(true);
    std::fprintf(out_, "\r%s\x1b[K", line.c_str());  // \x1b[K clears what a longer line left
  } else {
    if (!force && since < plain_every_s_) return;
    std::fprintf(out_, "%s\n", render_line(false).c_str());
    printed_step_ = step_;
  }
  std::fflush(out_);
  last_draw_ = now;
}

void Progress::update(int64_t step, const ProgressStats& stats) {
  step_ = step;
  stats_ = stats;
  if (mode_ == Mode::plain && line_since_update_) {  // a log line since the last update shows this step
    line_since_update_ = false;
    printed_step_ = step;
    last_draw_ = std::chrono::steady_clock::now();
    return;
  }
  // The first step and the last always print in plain mode: logs show start and end.
  draw(step == first_step_ + 1 || (total_ > 0 && step >= total_));
}

void Progress::message(std::string_view line) {
  if (mode_ == Mode::quiet) return;
  if (mode_ == Mode::tty) std::fprintf(out_, "\r\x1b[K");
  std::fprintf(out_, "%.*s\n", static_cast<int>(line.size()), line.data());
  std::fflush(out_);
  if (mode_ == Mode::tty && !finished_) draw(true);
  if (mode_ == Mode::plain) line_since_update_ = true;
}

void Progress::finish() {
  if (finished_ || mode_ == Mode::quiet) {
    finished_ = true;
    return;
  }
  if (mode_ == Mode::tty) {
    std::fprintf(out_, "\r%s\x1b[K\n", render_line(true).c_str());
  } else if (printed_step_ != step_) {
    std::fprintf(out_, "%s\n", render_line(false).c_str());
  }
  std::fflush(out_);
  finished_ = true;
}

}  // namespace lorafit::track
