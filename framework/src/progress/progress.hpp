#pragma once
// The progress layer: live progress events and their display. It uses nothing of the framework
// but the public API's errors, so every layer above may report to it.
//
// Live progress of a sweep: the events the engine reports, and SweepProgress, which shows them as
// bars on a terminal, periodic lines in a log, or one JSON line per event for a parent process.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/sink.h>

namespace difflab {

/// One thing a run did. Which fields mean something depends on `kind` (see the factories).
struct ProgressEvent {
  enum class Kind { start, step, eval, eval_done, end };
  Kind kind = Kind::step;
  std::int64_t index = 0;        // the run's grid index
  std::string label;             // start: its axes, "schedule.plugin=cosine seed=1"
  std::int64_t total_steps = 0;  // start: optimizer steps of the whole training
  std::int64_t epochs = 0;       // start: epochs of the whole training
  std::int64_t epoch = 0;        // step, eval, eval_done: the epoch reached or evaluated
  std::int64_t step = 0;         // start: the step it resumes from; step: the step reached
  double loss = 0;               // step: running mean of the current epoch's training loss
  std::string status;            // end: done | failed | skipped
  std::string reason;            // end: why it failed or was skipped

  static ProgressEvent started(std::int64_t index, std::string label, std::int64_t total_steps,
                               std::int64_t epochs, std::int64_t resumed_step = 0);
  static ProgressEvent stepped(std::int64_t index, std::int64_t epoch, std::int64_t step,
                               double loss);
  static ProgressEvent evaluating(std::int64_t index, std::int64_t epoch);
  static ProgressEvent evaluated(std::int64_t index, std::int64_t epoch);
  static ProgressEvent finished(std::int64_t index, std::string status, std::string reason = "");
};

/// Where the engine reports to (EngineOptions::progress; null reports nothing). Called from the
/// thread that runs the sweep; an implementation must not throw.
class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  /// The sweep `name` is about to run `runs` grid points (those skipped as done included).
  virtual void sweep_started(const std::string& name, std::int64_t runs) = 0;
  virtual void report(const ProgressEvent& event) = 0;
};

/// `@difflab-progress {"event":"step","index":3,"epoch":4,"step":412,"loss":0.0412}`.
std::string to_progress_line(const ProgressEvent& event);
/// The event of a line written by to_progress_line; nothing for any other line.
std::optional<ProgressEvent> parse_progress_line(const std::string& line);

/// "0:42", "3:10", "1:02:03"; "-:--" for an unknown (negative or not finite) duration.
std::string format_duration(double seconds);
/// "312", "41.5", "2.31": three significant digits or the integer part.
std::string format_rate(double per_second);

enum class ProgressMode { bars, lines, json, none };

/// auto | bars | lines | json | none; auto is bars when `terminal`, else lines. InputError
/// otherwise.
ProgressMode parse_progress_mode(const std::string& text, bool terminal);

struct ProgressOptions {
  ProgressMode mode = ProgressMode::lines;
  double every = 30;    // lines: seconds between the periodic lines of running runs
  double redraw = 0.1;  // bars: least seconds between two redraws
  int width = 80;       // bars: columns, a longer line is cut to fit; 0 asks stderr's terminal
  std::function<double()> clock;  // seconds; std::chrono::steady_clock when empty
  // lines: where each line goes (the CLI passes spdlog::info); written to the stream when empty
  std::function<void(const std::string&)> print_line;
};

/// The state of every run of one sweep, rendered as `options.mode` says onto `out`.
///   bars:  one line per running run, redrawn in place with ANSI codes, and a sweep line:
///          run 3 [seed=1] epoch 4/20 |████████░░░░░░░░░░░░| 41% loss 0.0412 312 steps/s ETA 0:42
///          sweep gmm: 5/12 done, 2 running, 1 failed, ETA 3:10
///   lines: a line when a run starts or ends, and every `every` seconds one per running run and
///          the sweep line.
///   json:  each event as one to_progress_line line (a parent reads them with apply_line).
class SweepProgress final : public ProgressSink {
 public:
  SweepProgress(ProgressOptions options, std::ostream& out);
  ~SweepProgress() override;  // erases the bars
  SweepProgress(const SweepProgress&) = delete;
  SweepProgress& operator=(const SweepProgress&) = delete;

  void sweep_started(const std::string& name, std::int64_t runs) override;
  void report(const ProgressEvent& event) override;
  /// Applies a line a child process printed in json mode; false (and nothing done) for any
  /// other line, so a parent can pass every line of a child's output through.
  bool apply_line(const std::string& line);
  /// Periodic work without an event: the lines' period, a redraw of the ETAs.
  void tick();
  /// Calls tick() every `period` seconds from a thread of its own until finish(), so that the
  /// display goes on during a long evaluation, which reports nothing.
  void start_ticker(double period);
  /// Stops the ticker and erases the bars for good; later events print nothing in bars mode.
  void finish();

  /// Writes `text` (whole lines) above the bars: a log line that does not tear them.
  void print_above(const std::string& text);
  /// A spdlog sink that writes through print_above, with the level in colour; it outlives this
  /// object safely (afterwards it writes to stderr).
  spdlog::sink_ptr log_sink();

  /// The texts shown, for tests and for a parent's own display.
  std::string run_line(std::int64_t index) const;
  std::string sweep_line() const;

 private:
  struct RunState {
    std::int64_t index = 0;
    std::string label;
    std::int64_t total_steps = 0, epochs = 0, epoch = 0, step = 0, first_step = 0;
    double loss = 0;
    bool has_loss = false, evaluating = false;
    double started_at = 0;
    double mark_time = 0;  // the start of the current stretch of training
    std::int64_t mark_step = 0;
    double train_seconds = 0;  // training time measured between step events
    std::int64_t train_steps = 0;
  };
  class LogSink;

  double now() const;
  void apply(const ProgressEvent& event, double t);
  static std::string run_head(const RunState& run);  // "run 3 [seed=1]"
  std::string run_text(const RunState& run, double t) const;
  std::string sweep_text(double t) const;
  double run_eta(const RunState& run, double t) const;  // < 0: unknown
  std::size_t usable_columns() const;                   // of the terminal, less the last
  std::string bar_text(const RunState& run, double t, std::size_t cols) const;  // fits in cols
  void redraw(double t, bool force);
  void erase();
  void periodic(double t, std::vector<std::string>& lines);
  void emit(const std::vector<std::string>& lines);

  ProgressOptions options_;
  std::ostream& out_;
  mutable std::mutex mutex_;
  std::string sweep_;
  std::int64_t total_ = 0;
  std::map<std::int64_t, RunState> running_;
  int done_ = 0, failed_ = 0, skipped_ = 0;
  std::vector<double> durations_;  // of the runs done here, for the sweep's ETA
  int drawn_ = 0;                  // bar lines on the screen now
  double last_draw_ = -1e300, last_lines_ = 0;
  bool finished_ = false;
  std::shared_ptr<LogSink> log_sink_;
  std::thread ticker_;
  std::condition_variable stop_ticker_;
  bool ticking_ = false;
};

}  // namespace difflab
