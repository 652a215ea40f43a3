// SweepProgress's state: the runs under way and the events that change it, from this process or
// a child's progress lines; its ticker, its log sink and the choice of mode. How the state is
// shown: progress_render.cpp; the events and their line form: progress_event.cpp.
#include "progress/progress.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include <spdlog/fmt/fmt.h>
#include <spdlog/sinks/base_sink.h>

#include "difflab/errors.hpp"

namespace difflab {

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


spdlog::sink_ptr SweepProgress::log_sink() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!log_sink_) log_sink_ = std::make_shared<LogSink>(this);
  return log_sink_;
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

}  // namespace difflab
