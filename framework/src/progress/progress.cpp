#include "progress/progress.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/sinks/base_sink.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "difflab/errors.hpp"

namespace difflab {
namespace {

constexpr const char* kLinePrefix = "@difflab-progress ";
constexpr int kBarCells = 20;

const char* event_name(ProgressEvent::Kind kind) {
  switch (kind) {
    case ProgressEvent::Kind::start: return "start";
    case ProgressEvent::Kind::step: return "step";
    case ProgressEvent::Kind::eval: return "eval";
    case ProgressEvent::Kind::eval_done: return "eval_done";
    case ProgressEvent::Kind::end: return "end";
  }
  return "";
}

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

ProgressEvent ProgressEvent::started(std::int64_t index, std::string label,
                                     std::int64_t total_steps, std::int64_t epochs,
                                     std::int64_t resumed_step) {
  ProgressEvent e;
  e.kind = Kind::start;
  e.index = index;
  e.label = std::move(label);
  e.total_steps = total_steps;
  e.epochs = epochs;
  e.step = resumed_step;
  return e;
}

ProgressEvent ProgressEvent::stepped(std::int64_t index, std::int64_t epoch, std::int64_t step,
                                     double loss) {
  ProgressEvent e;
  e.kind = Kind::step;
  e.index = index;
  e.epoch = epoch;
  e.step = step;
  e.loss = loss;
  return e;
}

ProgressEvent ProgressEvent::evaluating(std::int64_t index, std::int64_t epoch) {
  ProgressEvent e;
  e.kind = Kind::eval;
  e.index = index;
  e.epoch = epoch;
  return e;
}

ProgressEvent ProgressEvent::evaluated(std::int64_t index, std::int64_t epoch) {
  auto e = evaluating(index, epoch);
  e.kind = Kind::eval_done;
  return e;
}

ProgressEvent ProgressEvent::finished(std::int64_t index, std::string status, std::string reason) {
  ProgressEvent e;
  e.kind = Kind::end;
  e.index = index;
  e.status = std::move(status);
  e.reason = std::move(reason);
  return e;
}

std::string to_progress_line(const ProgressEvent& event) {
  nlohmann::ordered_json j;
  j["event"] = event_name(event.kind);
  j["index"] = event.index;
  switch (event.kind) {
    case ProgressEvent::Kind::start:
      j["label"] = event.label;
      j["steps"] = event.total_steps;
      j["epochs"] = event.epochs;
      if (event.step > 0) j["step"] = event.step;
      break;
    case ProgressEvent::Kind::step:
      j["epoch"] = event.epoch;
      j["step"] = event.step;
      j["loss"] = event.loss;  // NaN and infinities become null
      break;
    case ProgressEvent::Kind::eval:
    case ProgressEvent::Kind::eval_done: j["epoch"] = event.epoch; break;
    case ProgressEvent::Kind::end:
      j["status"] = event.status;
      if (!event.reason.empty()) j["reason"] = event.reason;
      break;
  }
  // Invalid UTF-8 in a reason (a plugin's message) is replaced rather than thrown about.
  return kLinePrefix + j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::optional<ProgressEvent> parse_progress_line(const std::string& line) {
  const std::string prefix = kLinePrefix;
  if (line.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  const auto j = nlohmann::json::parse(line.begin() + static_cast<std::ptrdiff_t>(prefix.size()),
                                       line.end(), nullptr, false);
  if (!j.is_object() || !j.contains("event") || !j["event"].is_string() || !j.contains("index") ||
      !j["index"].is_number_integer()) {
    return std::nullopt;
  }
  try {
    ProgressEvent e;
    const auto name = j["event"].get<std::string>();
    if (name == "start") {
      e.kind = ProgressEvent::Kind::start;
    } else if (name == "step") {
      e.kind = ProgressEvent::Kind::step;
    } else if (name == "eval") {
      e.kind = ProgressEvent::Kind::eval;
    } else if (name == "eval_done") {
      e.kind = ProgressEvent::Kind::eval_done;
    } else if (name == "end") {
      e.kind = ProgressEvent::Kind::end;
    } else {
      return std::nullopt;
    }
    e.index = j["index"].get<std::int64_t>();
    e.label = j.value("label", "");
    e.total_steps = j.value("steps", std::int64_t{0});
    e.epochs = j.value("epochs", std::int64_t{0});
    e.epoch = j.value("epoch", std::int64_t{0});
    e.step = j.value("step", std::int64_t{0});
    const auto loss = j.find("loss");
    e.loss = loss == j.end() ? 0.0 : loss->is_number() ? loss->get<double>() : std::nan("");
    e.status = j.value("status", "");
    e.reason = j.value("reason", "");
    if (e.kind == ProgressEvent::Kind::end && e.status != "done" && e.status != "failed" &&
        e.status != "skipped") {
      return std::nullopt;
    }
    return e;
  } catch (const nlohmann::json::exception&) {  // a field of the wrong type
    return std::nullopt;
  }
}

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

ProgressMode parse_progress_mode(const std::string& text, bool terminal) {
  if (text == "auto") return terminal ? ProgressMode::bars : ProgressMode::lines;
  if (text == "bars") return ProgressMode::bars;
  if (text == "lines") return ProgressMode::lines;
  if (text == "json") return ProgressMode::json;
  if (text == "none") return ProgressMode::none;
  throw InputError("--progress " + text + ": expected auto, bars, lines, json or none");
}

// Log records of spdlog, written above the bars. spdlog's own mutex is taken before the
// progress's, never the other way round: SweepProgress never logs while it holds its lock.
class SweepProgress::LogSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit LogSink(SweepProgress* target) : target_(target) {}

  void detach() {
    std::lock_guard<std::mutex> lock(mutex_);
    target_ = nullptr;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::string text(formatted.data(), formatted.size());
    if (msg.color_range_end > msg.color_range_start && msg.color_range_end <= text.size()) {
      text = text.substr(0, msg.color_range_start) + colour(msg.level) +
             text.substr(msg.color_range_start, msg.color_range_end - msg.color_range_start) +
             "\x1b[m" + text.substr(msg.color_range_end);
    }
    if (target_) {
      target_->print_above(text);
    } else {
      std::fwrite(text.data(), 1, text.size(), stderr);
    }
  }
  void flush_() override { std::fflush(stderr); }

 private:
  static const char* colour(spdlog::level::level_enum level) {
    switch (level) {
      case spdlog::level::trace: return "\x1b[37m";
      case spdlog::level::debug: return "\x1b[36m";
      case spdlog::level::info: return "\x1b[32m";
      case spdlog::level::warn: return "\x1b[33m\x1b[1m";
      case spdlog::level::err: return "\x1b[31m\x1b[1m";
      case spdlog::level::critical: return "\x1b[1m\x1b[41m";
      default: return "";
    }
  }

  SweepProgress* target_;
};

SweepProgress::SweepProgress(ProgressOptions options, std::ostream& out)
    : options_(std::move(options)), out_(out) {
  last_lines_ = now();
}

SweepProgress::~SweepProgress() {
  finish();
  if (log_sink_) log_sink_->detach();
}

double SweepProgress::now() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void SweepProgress::sweep_started(const std::string& name, std::int64_t runs) {
  std::lock_guard<std::mutex> lock(mutex_);
  sweep_ = name;
  total_ = runs;
  const double t = now();
  last_lines_ = t;
  redraw(t, true);
}

void SweepProgress::report(const ProgressEvent& event) {
  std::vector<std::string> lines;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const double t = now();
    if (options_.mode == ProgressMode::json) {
      out_ << to_progress_line(event) << std::endl;  // flushed: a parent reads it as it comes
      return;
    }
    const auto it = running_.find(event.index);
    const bool known = it != running_.end();
    // What to say of a run that is about to end, before apply() forgets it.
    const auto head = known ? run_head(it->second) : std::string();
    const double elapsed = known ? t - it->second.started_at : 0;
    apply(event, t);
    if (options_.mode == ProgressMode::bars) {
      redraw(t, event.kind != ProgressEvent::Kind::step);
    } else if (options_.mode == ProgressMode::lines) {
      if (event.kind == ProgressEvent::Kind::start) {
        const auto& run = running_.at(event.index);
        lines.push_back(fmt::format(
            "{} started: {} steps in {} epochs{}", run_head(run), run.total_steps, run.epochs,
            run.first_step > 0 ? fmt::format(", from step {}", run.first_step) : ""));
      } else if (event.kind == ProgressEvent::Kind::end && known) {
        lines.push_back(event.status == "done"
                            ? fmt::format("{} done in {}", head, format_duration(elapsed))
                            : fmt::format("{} {}: {}", head, event.status, event.reason));
        lines.push_back(sweep_text(t));
      }
      periodic(t, lines);
    }
  }
  emit(lines);
}

bool SweepProgress::apply_line(const std::string& line) {
  std::string trimmed = line;
  while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == '\r')) trimmed.pop_back();
  const auto event = parse_progress_line(trimmed);
  if (!event) return false;
  report(*event);
  return true;
}

void SweepProgress::tick() {
  std::vector<std::string> lines;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const double t = now();
    if (options_.mode == ProgressMode::bars) redraw(t, false);
    if (options_.mode == ProgressMode::lines) periodic(t, lines);
  }
  emit(lines);
}

void SweepProgress::start_ticker(double period) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (ticking_ || finished_) return;
  ticking_ = true;
  ticker_ = std::thread([this, period] {
    const auto wait = std::chrono::duration<double>(period);
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        if (stop_ticker_.wait_for(lock, wait, [this] { return !ticking_; })) return;
      }
      tick();
    }
  });
}

void SweepProgress::finish() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ticking_ = false;
  }
  stop_ticker_.notify_all();
  if (ticker_.joinable()) ticker_.join();  // not under the lock: tick() takes it
  std::lock_guard<std::mutex> lock(mutex_);
  erase();
  finished_ = true;
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

spdlog::sink_ptr SweepProgress::log_sink() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!log_sink_) log_sink_ = std::make_shared<LogSink>(this);
  return log_sink_;
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

void SweepProgress::apply(const ProgressEvent& event, double t) {
  using Kind = ProgressEvent::Kind;
  if (event.kind == Kind::start) {
    RunState run;
    run.index = event.index;
    run.label = event.label;
    run.total_steps = event.total_steps;
    run.epochs = event.epochs;
    run.step = run.first_step = run.mark_step = event.step;
    run.epoch = event.total_steps > 0 ? event.step * event.epochs / event.total_steps : 0;
    run.started_at = run.mark_time = t;
    running_[event.index] = run;
    return;
  }
  if (event.kind == Kind::end) {
    const auto it = running_.find(event.index);
    if (event.status == "done") {
      ++done_;
      if (it != running_.end()) durations_.push_back(t - it->second.started_at);
    } else if (event.status == "skipped") {
      ++skipped_;
    } else {
      ++failed_;
    }
    if (it != running_.end()) running_.erase(it);
    return;
  }
  const auto it = running_.find(event.index);
  if (it == running_.end()) return;  // a run that never said it started (a parent joined late)
  auto& run = it->second;
  switch (event.kind) {
    case Kind::step:
      if (!run.evaluating) {  // the time since the last mark was training
        run.train_seconds += t - run.mark_time;
        run.train_steps += event.step - run.mark_step;
      }
      run.evaluating = false;
      run.mark_time = t;
      run.mark_step = run.step = event.step;
      run.epoch = event.epoch;
      run.loss = event.loss;
      run.has_loss = true;
      break;
    case Kind::eval:
      run.evaluating = true;
      run.epoch = event.epoch;
      break;
    case Kind::eval_done:
      run.evaluating = false;
      run.mark_time = t;  // training goes on from here
      run.mark_step = run.step;
      break;
    default: break;
  }
}

double SweepProgress::run_eta(const RunState& run, double t) const {
  const auto done = run.step - run.first_step;
  const double elapsed = t - run.started_at;
  if (run.step >= run.total_steps) return 0;
  if (done <= 0 || elapsed <= 0) return -1;
  // Wall time per step, evaluations so far included: the next ones are likely alike.
  return static_cast<double>(run.total_steps - run.step) * elapsed / static_cast<double>(done);
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
