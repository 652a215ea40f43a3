#include <cmath>
#include <sstream>

#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

#include "difflab/errors.hpp"
#include "progress/progress.hpp"
#include "support.hpp"

using namespace difflab;

namespace {

// A clock the test moves by hand.
struct FakeClock {
  double now = 0;
  std::function<double()> function() {
    return [this] { return now; };
  }
};

ProgressOptions options_for(ProgressMode mode, FakeClock& clock, int width = 200) {
  ProgressOptions o;
  o.mode = mode;
  o.clock = clock.function();
  o.width = width;
  return o;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size()))
    ++n;
  return n;
}

std::string bar_of(int full) {
  std::string s;
  for (int i = 0; i < 20; ++i) s += i < full ? "\u2588" : "\u2591";
  return s;
}

const std::string kTiny =
    std::string(DIFFLAB_SOURCE_DIR) + "/tests/fixtures/tiny_schedule_sweep.yaml";
// The tiny study made tinier: two runs of 4 epochs (16 steps), 64 samples, DDIM only.
const std::string kTinier =
    " --set sweep.schedule.plugin=[linear,cosine_beta] --set train.epochs=4 "
    "--set evaluation.num_samples=64 --set 'evaluation.samplers=[{plugin: ddim, steps: 10}]' "
    "--threads 1";

}  // namespace

TEST_CASE("durations and rates are formatted for a glance", "[progress]") {
  CHECK(format_duration(0) == "0:00");
  CHECK(format_duration(42.4) == "0:42");
  CHECK(format_duration(190) == "3:10");
  CHECK(format_duration(3723) == "1:02:03");
  CHECK(format_duration(-1) == "-:--");
  CHECK(format_duration(std::nan("")) == "-:--");
  CHECK(format_rate(312.4) == "312");
  CHECK(format_rate(41.53) == "41.5");
  CHECK(format_rate(2.314) == "2.31");
  CHECK(parse_progress_mode("auto", true) == ProgressMode::bars);
  CHECK(parse_progress_mode("auto", false) == ProgressMode::lines);
  CHECK(parse_progress_mode("json", true) == ProgressMode::json);
  CHECK(parse_progress_mode("none", true) == ProgressMode::none);
  CHECK_THROWS_AS(parse_progress_mode("fancy", true), InputError);
}

TEST_CASE("a run's bar shows its epoch, fill, percent, loss, training steps/s and ETA",
          "[progress]") {
  FakeClock clock;
  std::ostringstream out;
  SweepProgress progress(options_for(ProgressMode::bars, clock), out);
  progress.sweep_started("gmm", 12);
  progress.report(ProgressEvent::started(3, "schedule=cosine seed=1", 2000, 20));
  CHECK(progress.run_line(3) ==
        "run 3 [schedule=cosine seed=1] epoch 0/20 |" + bar_of(0) + "| 0% starting ETA -:--");
  clock.now = 4;  // 800 steps in 4 s: 200 steps/s, 1200 to go
  progress.report(ProgressEvent::stepped(3, 8, 800, 0.0412));
  CHECK(progress.run_line(3) == "run 3 [schedule=cosine seed=1] epoch 8/20 |" + bar_of(8) +
                                    "| 40% loss 0.0412 200 steps/s ETA 0:06");
  progress.report(ProgressEvent::evaluating(3, 8));
  clock.now = 6;
  CHECK(progress.run_line(3) == "run 3 [schedule=cosine seed=1] epoch 8/20 |" + bar_of(8) +
                                    "| 40% loss 0.0412 evaluating ETA 0:09");
  progress.report(ProgressEvent::evaluated(3, 8));
  clock.now = 7;  // 200 more steps in the 1 s after the evaluation: the rate leaves it out,
  progress.report(ProgressEvent::stepped(3, 10, 1000, 0.03));
  // while the ETA counts it: 1000 steps took 7 s of wall time.
  CHECK(progress.run_line(3) == "run 3 [schedule=cosine seed=1] epoch 10/20 |" + bar_of(10) +
                                    "| 50% loss 0.03 200 steps/s ETA 0:07");
  // Too wide for the terminal: the label gives way to the numbers, then the line is cut.
  for (const int width : {90, 40}) {
    FakeClock own;
    std::ostringstream narrow_out;
    SweepProgress narrow(options_for(ProgressMode::bars, own, width), narrow_out);
    narrow.report(ProgressEvent::started(3, "schedule=cosine seed=1", 2000, 20));
    own.now = 5;
    narrow.report(ProgressEvent::stepped(3, 10, 1000, 0.03));
    std::istringstream drawn(narrow_out.str());
    std::string first, second;
    std::getline(drawn, first);
    std::getline(drawn, second);
    CHECK(second == (width == 90 ? "\x1b[1A\x1b[2Krun 3 [schedule=c\u2026] epoch 10/20 |" +
                                       bar_of(10) + "| 50% loss 0.03 200 steps/s ETA 0:05"
                                 : "\x1b[1A\x1b[2Krun 3 [schedule=cosine seed=1] epoch 10"));
  }
  // A resumed run counts its rate and ETA from where it resumed.
  progress.report(ProgressEvent::started(4, "", 1000, 10, 500));
  clock.now = 12;
  progress.report(ProgressEvent::stepped(4, 8, 750, 0.5));
  CHECK(progress.run_line(4) ==
        "run 4 epoch 8/10 |" + bar_of(15) + "| 75% loss 0.5 50.0 steps/s ETA 0:05");
}

TEST_CASE("the sweep line counts runs and estimates the sweep's ETA", "[progress]") {
  FakeClock clock;
  std::ostringstream out;
  SweepProgress progress(options_for(ProgressMode::bars, clock), out);
  progress.sweep_started("gmm", 4);
  CHECK(progress.sweep_line() == "sweep gmm: 0/4 done, 0 running, 0 failed, ETA -:--");
  progress.report(ProgressEvent::started(0, "a", 100, 10));
  CHECK(progress.sweep_line() == "sweep gmm: 0/4 done, 1 running, 0 failed, ETA -:--");
  clock.now = 5;  // a quarter in 5 s: a run takes 20 s; 15 s for this one, 60 s for the 3 others
  progress.report(ProgressEvent::stepped(0, 3, 25, 1.0));
  CHECK(progress.sweep_line() == "sweep gmm: 0/4 done, 1 running, 0 failed, ETA 1:15");
  clock.now = 10;
  progress.report(ProgressEvent::stepped(0, 10, 100, 1.0));
  progress.report(ProgressEvent::finished(0, "done"));  // took 10 s
  progress.report(ProgressEvent::started(1, "b", 100, 10));
  clock.now = 15;  // half of run 1 in 5 s: 5 s to go, then 2 runs of 10 s
  progress.report(ProgressEvent::stepped(1, 5, 50, 1.0));
  CHECK(progress.sweep_line() == "sweep gmm: 1/4 done, 1 running, 0 failed, ETA 0:25");
  // Two at once (a parent of child processes): their work is shared out over two.
  progress.report(ProgressEvent::started(2, "c", 100, 10));
  clock.now = 20;  // run 1: 10 s in, 0 left; run 2: 5 s for a fifth, 20 s left; run 3: 10 s
  progress.report(ProgressEvent::stepped(1, 10, 100, 1.0));
  progress.report(ProgressEvent::stepped(2, 2, 20, 1.0));
  CHECK(progress.sweep_line() == "sweep gmm: 1/4 done, 2 running, 0 failed, ETA 0:15");
  progress.report(ProgressEvent::finished(1, "failed", "the loss became NaN"));
  progress.report(ProgressEvent::finished(3, "skipped", "done before"));
  CHECK(progress.sweep_line() == "sweep gmm: 2/4 done (1 skipped), 1 running, 1 failed, ETA 0:20");
  CHECK(progress.run_line(1).empty());
}

TEST_CASE("bars are redrawn in place at most every 0.1 s and log lines print above them",
          "[progress]") {
  FakeClock clock;
  std::ostringstream out;
  SweepProgress progress(options_for(ProgressMode::bars, clock, 40), out);
  progress.sweep_started("gmm", 2);
  CHECK(out.str() == "\x1b[2Ksweep gmm: 0/2 done, 0 running, 0 faile\n");  // cut to 39 columns
  out.str("");
  progress.report(ProgressEvent::started(0, "schedule.plugin=cosine_beta", 100, 10));
  // Up over the one line drawn, then two lines: the run's and the sweep's.
  CHECK(out.str().rfind("\x1b[1A\x1b[2Krun 0 [schedule.plugin=cosine_beta] epo\n\x1b[2Ksweep", 0) ==
        0);
  CHECK(count(out.str(), "\n") == 2);
  out.str("");
  clock.now = 0.05;  // too soon after the last drawing
  progress.report(ProgressEvent::stepped(0, 1, 10, 0.5));
  CHECK(out.str().empty());
  clock.now = 0.11;
  progress.tick();
  CHECK(out.str().rfind("\x1b[2A\x1b[2K", 0) == 0);
  CHECK(count(out.str(), "\n") == 2);
  out.str("");
  progress.print_above("12:00:00 info something happened\n");
  // Up over the two lines, clear each (clear, one down, clear, back up), the log line, the bars.
  CHECK(out.str().rfind("\x1b[2A\x1b[2K\x1b[1B\x1b[2K\x1b[1A12:00:00 info something happened\n"
                        "\x1b[2Krun 0",
                        0) == 0);
  out.str("");
  progress.report(ProgressEvent::finished(0, "done"));
  CHECK(count(out.str(), "\n") == 1);  // the run's bar is gone, the sweep line stays
  CHECK(out.str().substr(out.str().size() - 5) == "\n\x1b[2K");  // and the old second one cleared
  out.str("");
  progress.finish();
  CHECK(out.str() == "\x1b[1A\x1b[2K");
  progress.report(ProgressEvent::started(1, "", 100, 10));
  progress.print_above("after");
  CHECK(out.str() == "\x1b[1A\x1b[2Kafter\n");  // nothing drawn after finish()
}

TEST_CASE("spdlog records go through the bars' log sink, also after the bars are gone",
          "[progress]") {
  FakeClock clock;
  std::ostringstream out;
  auto progress = std::make_unique<SweepProgress>(options_for(ProgressMode::bars, clock), out);
  auto sink = progress->log_sink();
  sink->set_pattern("%^%l%$ %v");
  spdlog::logger logger("progress-test", sink);
  progress->sweep_started("gmm", 1);
  out.str("");
  logger.warn("disk {} full", "/tmp");
  CHECK(out.str().rfind(
            "\x1b[1A\x1b[2K\x1b[33m\x1b[1mwarning\x1b[m disk /tmp full\n\x1b[2Ksweep gmm", 0) == 0);
  progress.reset();
  logger.info("to stderr now");  // detached: no dangling pointer
}

TEST_CASE("lines mode prints a line per start and end and periodic lines of running runs",
          "[progress]") {
  FakeClock clock;
  std::ostringstream out;
  auto options = options_for(ProgressMode::lines, clock);
  std::vector<std::string> lines;
  options.print_line = [&](const std::string& line) { lines.push_back(line); };
  SweepProgress progress(options, out);
  progress.sweep_started("gmm", 2);
  progress.report(ProgressEvent::started(0, "seed=1", 2000, 20));
  REQUIRE(lines == std::vector<std::string>{"run 0 [seed=1] started: 2000 steps in 20 epochs"});
  clock.now = 10;
  progress.report(ProgressEvent::stepped(0, 2, 200, 0.25));
  clock.now = 29;
  progress.report(ProgressEvent::stepped(0, 6, 580, 0.125));
  CHECK(lines.size() == 1);  // not yet 30 s
  clock.now = 30;
  progress.tick();
  REQUIRE(lines.size() == 3);
  CHECK(lines[1] ==
        "run 0 [seed=1] epoch 6/20 step 580/2000 (29%) loss 0.125 20.0 steps/s ETA 1:13");
  CHECK(lines[2] == "sweep gmm: 0/2 done, 1 running, 0 failed, ETA 2:57");
  clock.now = 40;
  progress.report(ProgressEvent::finished(0, "failed", "the training loss became NaN"));
  REQUIRE(lines.size() == 5);
  CHECK(lines[3] == "run 0 [seed=1] failed: the training loss became NaN");
  CHECK(lines[4] == "sweep gmm: 0/2 done, 0 running, 1 failed, ETA -:--");
  progress.report(ProgressEvent::started(1, "seed=2", 100, 1, 0));
  clock.now = 100;
  progress.report(ProgressEvent::finished(1, "done"));
  CHECK(lines[6] == "run 1 [seed=2] done in 1:00");
  CHECK(lines[7] == "sweep gmm: 1/2 done, 0 running, 1 failed, ETA 0:00");
  CHECK(out.str().empty());  // everything went to print_line
}

TEST_CASE("json lines round-trip every event, and other lines are refused", "[progress]") {
  const std::vector<ProgressEvent> events{
      ProgressEvent::started(3, "schedule.plugin=cosine seed=1", 2000, 20, 400),
      ProgressEvent::stepped(3, 4, 412, 0.0412),
      ProgressEvent::evaluating(3, 4),
      ProgressEvent::evaluated(3, 4),
      ProgressEvent::finished(3, "failed", "sampler 'ddim' failed: \"x\"\nsecond line"),
      ProgressEvent::finished(4, "done"),
      ProgressEvent::finished(5, "skipped", "done before"),
  };
  CHECK(to_progress_line(events[1]) ==
        R"(@difflab-progress {"event":"step","index":3,"epoch":4,"step":412,"loss":0.0412})");
  CHECK(
      to_progress_line(events[0]) ==
      R"(@difflab-progress {"event":"start","index":3,"label":"schedule.plugin=cosine seed=1","steps":2000,"epochs":20,"step":400})");
  CHECK(to_progress_line(events[2]) == R"(@difflab-progress {"event":"eval","index":3,"epoch":4})");
  CHECK(to_progress_line(events[5]) ==
        R"(@difflab-progress {"event":"end","index":4,"status":"done"})");
  for (const auto& e : events) {
    const auto line = to_progress_line(e);
    CHECK(line.find('\n') == std::string::npos);  // one line, whatever the reason holds
    const auto back = parse_progress_line(line);
    REQUIRE(back);
    CHECK(back->kind == e.kind);
    CHECK(back->index == e.index);
    CHECK(back->label == e.label);
    CHECK(back->total_steps == e.total_steps);
    CHECK(back->epochs == e.epochs);
    CHECK(back->epoch == e.epoch);
    CHECK(back->step == e.step);
    CHECK(back->loss == e.loss);
    CHECK(back->status == e.status);
    CHECK(back->reason == e.reason);
  }
  const auto nan =
      parse_progress_line(to_progress_line(ProgressEvent::stepped(1, 1, 1, std::nan(""))));
  REQUIRE(nan);
  CHECK(std::isnan(nan->loss));
  for (const std::string bad :
       {"12:00:00 info run 1/4 [schedule.plugin=linear] on cpu", "", "@difflab-progress",
        "@difflab-progress {", "@difflab-progress []", R"(@difflab-progress {"event":"start"})",
        R"(@difflab-progress {"event":"dance","index":1})",
        R"(@difflab-progress {"event":"step","index":1,"step":"many"})",
        R"(@difflab-progress {"event":"end","index":1,"status":"maybe"})",
        R"(difflab-progress {"event":"eval","index":1,"epoch":2})"}) {
    CHECK_FALSE(parse_progress_line(bad));
  }
}

TEST_CASE("a parent shows its children's runs from their json lines", "[progress]") {
  FakeClock clock;
  std::ostringstream child_out, direct_out, parent_out;
  SweepProgress child(options_for(ProgressMode::json, clock), child_out);
  SweepProgress direct(options_for(ProgressMode::bars, clock), direct_out);
  SweepProgress parent(options_for(ProgressMode::bars, clock), parent_out);
  direct.sweep_started("gmm", 3);
  parent.sweep_started("gmm", 3);
  const auto both = [&](const ProgressEvent& e) {
    child.report(e);
    direct.report(e);
  };
  both(ProgressEvent::finished(0, "done"));
  both(ProgressEvent::started(1, "seed=1", 300, 3));
  clock.now = 2;
  both(ProgressEvent::stepped(1, 1, 100, 0.75));
  both(ProgressEvent::evaluating(1, 1));
  clock.now = 3;
  both(ProgressEvent::evaluated(1, 1));
  clock.now = 4;
  both(ProgressEvent::stepped(1, 2, 150, 0.5));
  both(ProgressEvent::started(2, "seed=2", 300, 3));
  const auto lines = child_out.str();
  CHECK(count(lines, "\n") == 7);
  clock.now = 0;  // the parent reads them later: times are its own
  std::istringstream in(lines);
  CHECK_FALSE(parent.apply_line("12:00:00 info a log line of the child"));
  std::string line;
  clock.now = 0;
  for (int i = 0; std::getline(in, line); ++i) {
    if (i == 1) clock.now = 0;  // start at 0, as direct saw it
    if (i == 2) clock.now = 2;
    if (i == 4) clock.now = 3;
    if (i == 5) clock.now = 4;
    CHECK(parent.apply_line(line + "\n"));
  }
  CHECK(parent.run_line(1) == direct.run_line(1));
  CHECK(parent.run_line(1) ==
        "run 1 [seed=1] epoch 2/3 |" + bar_of(10) + "| 50% loss 0.5 50.0 steps/s ETA 0:04");
  CHECK(parent.sweep_line() == direct.sweep_line());
  CHECK(parent.sweep_line() == "sweep gmm: 1/3 done, 2 running, 0 failed, ETA 0:06");
}

TEST_CASE("runner prints periodic progress lines when stderr is not a terminal", "[progress]") {
  const auto dir = test::temp_dir("progress-lines");
  std::string out;
  REQUIRE(test::run_command(test::runner_path() + " sweep " + kTiny + kTinier + " --db " +
                                (dir / "runs.sqlite").string() + " --out " +
                                (dir / "runs").string() + " --progress-every 0.001",
                            &out) == 0);
  CHECK(out.find("\x1b[") == std::string::npos);  // no terminal codes in a log
  CHECK(count(out, "] started: 16 steps in 4 epochs") == 2);
  CHECK(count(out, "run 1 [schedule.plugin=cosine_beta] done in ") == 1);
  // Periodic lines: a running run's numbers and the sweep's.
  CHECK(out.find("run 0 [schedule.plugin=linear] epoch ") != std::string::npos);
  CHECK(out.find(" steps/s ETA ") != std::string::npos);
  CHECK(out.find("sweep tiny_schedule_sweep: 0/2 done, 1 running, 0 failed, ETA ") !=
        std::string::npos);
  CHECK(out.find("sweep tiny_schedule_sweep: 2/2 done, 0 running, 0 failed, ETA 0:00") !=
        std::string::npos);
  // --quiet: warnings only and no progress; --verbose: a line per epoch.
  REQUIRE(test::run_command(test::runner_path() + " sweep " + kTiny + kTinier + " --db " +
                                (dir / "quiet.sqlite").string() + " --out " +
                                (dir / "runs").string() + " -q",
                            &out) == 0);
  CHECK(out.empty());
  REQUIRE(test::run_command(test::runner_path() + " run " + kTiny + kTinier + " --index 0 --db " +
                                (dir / "verbose.sqlite").string() + " --out " +
                                (dir / "runs").string() + " -v",
                            &out) == 0);
  CHECK(count(out, "epoch 1/4 step 4 loss ") == 1);  // epochs 2 and 4 also have a checkpoint's line
  CHECK(count(out, "epoch 3/4 step 12 loss ") == 1);
  CHECK(test::run_command(test::runner_path() + " sweep " + kTiny + " --progress fancy", &out) ==
        2);
  CHECK_THAT(out, Catch::Contains("--progress fancy: expected auto, bars, lines, json or none"));
  CHECK(count(out, "\n") == 1);
  CHECK(test::run_command(test::runner_path() + " sweep " + kTiny + " --progress-every 0", &out) ==
        2);
  CHECK_THAT(out, Catch::Contains("--progress-every 0: must be > 0 seconds"));
}

TEST_CASE("runner draws bars on a terminal", "[progress]") {
  const auto dir = test::temp_dir("progress-bars");
  const auto log = (dir / "typescript").string();
  // `script` gives the runner a pseudo-terminal and records what it wrote to it.
  const auto command = test::runner_path() + " sweep " + kTiny + kTinier + " --db " +
                       (dir / "runs.sqlite").string() + " --out " + (dir / "runs").string();
  std::string out;
  REQUIRE(test::run_command("script -qec \"" + command + "\" " + log + " < /dev/null", &out) == 0);
  CHECK(out.find("|\u2588") != std::string::npos);  // a bar with some fill
  CHECK(out.find("\x1b[2K") != std::string::npos);  // lines cleared before they are drawn
  // Up over the bars and each cleared, for a log line above them or at the end.
  CHECK(out.find("\x1b[2A\x1b[2K\x1b[1B\x1b[2K\x1b[1A") != std::string::npos);
  CHECK(out.find("sweep tiny_schedule_sweep: 1/2 done, 1 running, 0 failed, ETA ") !=
        std::string::npos);
  CHECK(out.find("tiny_schedule_sweep: 2 of 2 runs done") != std::string::npos);
  CHECK(out.find("started: 16 steps") == std::string::npos);  // no plain progress lines
}

TEST_CASE("runner --progress json prints one event a line on stdout that a parent applies",
          "[progress]") {
  const auto dir = test::temp_dir("progress-json");
  std::string out;
  REQUIRE(test::run_command(test::runner_path() + " run " + kTiny + kTinier + " --index 1 --db " +
                                (dir / "runs.sqlite").string() + " --out " +
                                (dir / "runs").string() + " --progress json",
                            &out) == 0);
  FakeClock clock;
  std::ostringstream parent_out;
  SweepProgress parent(options_for(ProgressMode::bars, clock), parent_out);
  parent.sweep_started("tiny_schedule_sweep", 2);
  std::istringstream in(out);
  std::string line;
  std::vector<ProgressEvent> events;
  int logs = 0;
  while (std::getline(in, line)) {
    if (const auto e = parse_progress_line(line)) events.push_back(*e);
    if (!parent.apply_line(line)) ++logs;  // the child's log lines (stderr) pass by
  }
  CHECK(logs >= 2);
  REQUIRE(events.size() >= 8);  // start, a step and 2 evaluation events per checkpoint, end
  CHECK(events.front().kind == ProgressEvent::Kind::start);
  CHECK(events.front().index == 1);
  CHECK(events.front().label == "schedule.plugin=cosine_beta");
  CHECK(events.front().total_steps == 16);
  CHECK(events.front().epochs == 4);
  int evaluations = 0;
  for (const auto& e : events) evaluations += e.kind == ProgressEvent::Kind::eval_done;
  CHECK(evaluations == 2);  // epochs 2 and 4
  CHECK(events.back().kind == ProgressEvent::Kind::end);
  CHECK(events.back().status == "done");
  CHECK(parent.sweep_line() ==
        "sweep tiny_schedule_sweep: 1/2 done, 0 running, 0 failed, ETA 0:00");
}
