// How SweepProgress shows its state: the bars redrawn in place on a terminal (ANSI cursor
// moves), the periodic lines of a log, and the durations and rates in them. The state itself
// and the events that change it are in progress.cpp.
#include <algorithm>
#include <cmath>

#include <spdlog/fmt/fmt.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "progress/progress.hpp"

namespace difflab {
namespace {

constexpr int kBarCells = 20;

// Terminal columns a UTF-8 string takes: its code points (the bar's blocks are one column each).
std::size_t columns(const std::string& text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

// The first `cols` columns of `text`.
std::string cut(const std::string& text, std::size_t cols) {
  std::string out;
  std::size_t n = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80 && ++n > cols) break;
    out += c;
  }
  return out;
}

std::string cursor_up(int lines) {
  return lines > 0 ? fmt::format("\x1b[{}A", lines) : "";
}

// Clears `lines` lines from the cursor's down and puts the cursor back. Line by line: a clear to
// the end of the screen (ESC [J) from its top makes tmux scroll the screen into its history.
std::string clear_lines(int lines) {
  std::string s;
  for (int i = 0; i < lines; ++i) s += i + 1 < lines ? "\x1b[2K\x1b[1B" : "\x1b[2K";
  return s + cursor_up(lines - 1);
}

std::string bar(std::int64_t done, std::int64_t total) {
  const std::int64_t filled =
      total > 0 ? std::clamp<std::int64_t>(done * kBarCells / total, 0, kBarCells) : 0;
  std::string out;
  for (std::int64_t i = 0; i < kBarCells; ++i) out += i < filled ? "\u2588" : "\u2591";
  return out;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "-:--";
  const auto total = static_cast<long long>(std::llround(seconds));
  const long long h = total / 3600, m = total % 3600 / 60, s = total % 60;
  return h > 0 ? fmt::format("{}:{:02d}:{:02d}", h, m, s) : fmt::format("{}:{:02d}", m, s);
}

std::string format_rate(double per_second) {
  if (per_second >= 100) return fmt::format("{:.0f}", per_second);
  if (per_second >= 10) return fmt::format("{:.1f}", per_second);
  return fmt::format("{:.2f}", per_second);
}

void SweepProgress::print_above(const std::string& text) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool newline = !text.empty() && text.back() == '\n';
  if (options_.mode != ProgressMode::bars || finished_) {
    out_ << text << (newline ? "" : "\n") << std::flush;
    return;
  }
  // One write: up over the bars, clear them, the text, the bars again.
  std::string s = cursor_up(drawn_) + clear_lines(drawn_);
  s += text + (newline ? "" : "\n");
  out_ << s;
  drawn_ = 0;
  redraw(now(), true);
}

std::string SweepProgress::run_line(std::int64_t index) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = running_.find(index);
  return it == running_.end() ? std::string() : run_text(it->second, now());
}

std::string SweepProgress::sweep_line() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return sweep_text(now());
}


std::string SweepProgress::run_head(const RunState& run) {
  return fmt::format("run {}", run.index) + (run.label.empty() ? "" : " [" + run.label + "]");
}

std::string SweepProgress::run_text(const RunState& run, double t) const {
  std::string s = run_head(run) + fmt::format(" epoch {}/{}", run.epoch, run.epochs);
  const auto percent = run.total_steps > 0 ? run.step * 100 / run.total_steps : 0;
  if (options_.mode == ProgressMode::bars) {
    s += fmt::format(" |{}| {}%", bar(run.step, run.total_steps), percent);
  } else {  // a log line: numbers, no block characters
    s += fmt::format(" step {}/{} ({}%)", run.step, run.total_steps, percent);
  }
  if (run.has_loss) s += fmt::format(" loss {:.4g}", run.loss);
  if (run.evaluating) {
    s += " evaluating";
  } else if (run.train_seconds > 0 && run.train_steps > 0) {
    s += " " + format_rate(static_cast<double>(run.train_steps) / run.train_seconds) + " steps/s";
  } else if (!run.has_loss) {
    s += " starting";
  }
  if (run.step < run.total_steps) s += " ETA " + format_duration(run_eta(run, t));
  return s;
}

std::string SweepProgress::sweep_text(double t) const {
  const auto running = static_cast<std::int64_t>(running_.size());
  const std::int64_t finished = done_ + skipped_;
  const std::int64_t pending = std::max<std::int64_t>(0, total_ - finished - failed_ - running);
  // A whole run's duration: the mean of those done here, else extrapolated from running ones.
  double per_run = -1;
  if (!durations_.empty()) {
    per_run = 0;
    for (double d : durations_) per_run += d;
    per_run /= static_cast<double>(durations_.size());
  } else {
    double sum = 0;
    int n = 0;
    for (const auto& [index, run] : running_) {
      const auto done = run.step - run.first_step;
      if (done > 0 && t > run.started_at) {
        sum +=
            (t - run.started_at) * static_cast<double>(run.total_steps) / static_cast<double>(done);
        ++n;
      }
    }
    if (n > 0) per_run = sum / n;
  }
  double remaining = 0;
  bool known = true;
  for (const auto& [index, run] : running_) {
    const double eta = run_eta(run, t);
    if (eta >= 0) {
      remaining += eta;
    } else if (per_run >= 0) {
      remaining += per_run;
    } else {
      known = false;
    }
  }
  if (pending > 0) {
    if (per_run >= 0) {
      remaining += static_cast<double>(pending) * per_run;
    } else {
      known = false;
    }
  }
  // The runs share out the remaining work across as many as run at once now.
  const double eta =
      known ? remaining / static_cast<double>(std::max<std::int64_t>(1, running)) : -1;
  std::string s = fmt::format("sweep {}: {}/{} done", sweep_, finished, total_);
  if (skipped_ > 0) s += fmt::format(" ({} skipped)", skipped_);
  s += fmt::format(", {} running, {} failed, ETA {}", running, failed_, format_duration(eta));
  return s;
}

std::size_t SweepProgress::usable_columns() const {
  int width = options_.width;
  if (width <= 0) {  // asked at each drawing: the window may have been resized
    winsize size{};
    width = ::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0 ? size.ws_col : 80;
  }
  // One less: a line that fills the last column wraps on some terminals.
  return static_cast<std::size_t>(std::max(width - 1, 1));
}

std::string SweepProgress::bar_text(const RunState& run, double t, std::size_t cols) const {
  const auto line = run_text(run, t);
  if (columns(line) <= cols) return line;
  // Shorten the label first: the numbers at the end matter more.
  const auto rest = line.substr(run_head(run).size());
  const auto bare = fmt::format("run {} []", run.index);
  const auto need = columns(rest) + bare.size() + 1;  // 1: the ellipsis
  if (!run.label.empty() && cols >= need + 4) {
    return fmt::format("run {} [{}\u2026]", run.index, cut(run.label, cols - need)) + rest;
  }
  return cut(line, cols);
}

void SweepProgress::redraw(double t, bool force) {
  if (options_.mode != ProgressMode::bars || finished_) return;
  if (!force && t - last_draw_ < options_.redraw) return;
  if (drawn_ == 0 && running_.empty() && sweep_.empty()) return;  // nothing to show yet
  const auto cols = usable_columns();
  std::string s = cursor_up(drawn_);
  int lines = 0;
  for (const auto& [index, run] : running_) {
    s += "\x1b[2K" + bar_text(run, t, cols) + "\n";
    ++lines;
  }
  if (!sweep_.empty()) {
    s += "\x1b[2K" + cut(sweep_text(t), cols) + "\n";
    ++lines;
  }
  s += clear_lines(drawn_ - lines);  // those left over from a longer drawing
  out_ << s << std::flush;
  drawn_ = lines;
  last_draw_ = t;
}

void SweepProgress::erase() {
  if (drawn_ > 0) out_ << cursor_up(drawn_) + clear_lines(drawn_) << std::flush;
  drawn_ = 0;
}

void SweepProgress::periodic(double t, std::vector<std::string>& lines) {
  if (options_.mode != ProgressMode::lines || t - last_lines_ < options_.every) return;
  last_lines_ = t;
  if (running_.empty()) return;
  for (const auto& [index, run] : running_) lines.push_back(run_text(run, t));
  lines.push_back(sweep_text(t));
}

void SweepProgress::emit(const std::vector<std::string>& lines) {
  for (const auto& line : lines) {
    if (options_.print_line) {
      options_.print_line(line);
    } else {
      out_ << line << "\n";
    }
  }
  if (!lines.empty() && !options_.print_line) out_ << std::flush;
}

}  // namespace difflab
