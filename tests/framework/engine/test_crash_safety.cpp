// Crash safety: a sweep killed with SIGKILL anywhere resumes to exactly the uninterrupted result,
// one run's failure stays local, and a reader never sees a half-written checkpoint.
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "difflab/errors.hpp"
#include "report/report.hpp"
#include "store/run_store.hpp"
#include "support.hpp"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

const std::string kTiny = std::string(DIFFLAB_SOURCE_DIR) + "/tests/fixtures/tiny_schedule_sweep.yaml";

// Two of the tiny study's four schedules on one thread: reruns are bit-identical on the CPU.
std::string sweep_command(const fs::path& dir, const std::string& extra = "") {
  return test::runner_path() + " sweep " + kTiny + " --db " + (dir / "runs.sqlite").string() +
         " --out " + (dir / "runs").string() +
         " --set 'sweep.schedule.plugin=[linear, cosine_beta]' --threads 1 -q" + extra;
}

std::string exact(double v) {
  std::ostringstream out;
  out << std::setprecision(17) << v;
  return out.str();
}

// Everything a sweep recorded, keyed by run config hash and step, so that two stores compare
// equal exactly when they hold the same results (row ids and absolute paths aside).
struct Recorded {
  std::vector<std::string> runs, checkpoints, losses, metrics, artifacts;
  bool operator==(const Recorded& o) const {
    return runs == o.runs && checkpoints == o.checkpoints && losses == o.losses &&
           metrics == o.metrics && artifacts == o.artifacts;
  }
};

Recorded recorded(const fs::path& db) {
  RunStore store(db.string(), RunStore::Access::read_only);
  Recorded r;
  for (const auto& run : store.runs()) {
    const auto& h = run.config_hash;
    r.runs.push_back(h + " " + run_status_name(run.status));
    for (const auto& l : store.losses(run.id)) {
      r.losses.push_back(h + " " + std::to_string(l.step) + " " + exact(l.loss));
    }
    for (const auto& c : store.checkpoints(run.id)) {
      const auto at = h + " " + std::to_string(c.step);
      r.checkpoints.push_back(at + " " + std::to_string(c.epoch));
      for (const auto& m : store.metrics(c.id)) {
        r.metrics.push_back(at + " " + m.sampler + " " + m.metric + " " + m.variant + " " + exact(m.value));
      }
      for (const auto& a : store.artifacts(c.id)) {
        CHECK(fs::exists(a.path));
        r.artifacts.push_back(at + " " + a.sampler + " " + a.kind + " " + fs::path(a.path).filename().string());
      }
    }
  }
  return r;
}

// The rows of a PRAGMA (or any query), joined by newlines.
std::string query(const fs::path& db, const char* sql) {
  sqlite3* handle = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  std::string out;
  auto append = [](void* text, int n, char** values, char**) {
    auto& s = *static_cast<std::string*>(text);
    for (int i = 0; i < n; ++i) s += std::string(values[i] ? values[i] : "NULL") + (i + 1 < n ? "|" : "\n");
    return 0;
  };
  const int rc = sqlite3_exec(handle, sql, append, &out, nullptr);
  sqlite3_close(handle);
  REQUIRE(rc == SQLITE_OK);
  return out;
}

std::vector<fs::path> partial_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp") != std::string::npos) out.push_back(e.path());
  }
  return out;
}

// What every re-run after a crash must give: the reference's rows exactly, a sound database,
// no half-written files.
void check_repaired(const fs::path& dir, const Recorded& reference) {
  const auto db = dir / "runs.sqlite";
  CHECK(query(db, "PRAGMA integrity_check") == "ok\n");
  CHECK(query(db, "PRAGMA foreign_key_check").empty());
  CHECK(partial_files(dir / "runs").empty());
  const auto got = recorded(db);
  CHECK(got.runs == reference.runs);
  CHECK(got.checkpoints == reference.checkpoints);
  CHECK(got.losses == reference.losses);
  CHECK(got.metrics == reference.metrics);
  CHECK(got.artifacts == reference.artifacts);
}

Recorded reference_sweep(const fs::path& dir) {
  std::string out;
  REQUIRE(test::run_command(sweep_command(dir), &out) == 0);
  auto r = recorded(dir / "runs.sqlite");
  REQUIRE(r.runs.size() == 2);
  REQUIRE(r.checkpoints.size() == 10);
  return r;
}

}  // namespace

TEST_CASE("a sweep killed with SIGKILL at any point resumes to the uninterrupted result", "[crash]") {
  const auto root = test::temp_dir("crash");
  const auto reference = reference_sweep(root / "reference");
  // 40 optimizer steps and 5 checkpoints per run, two runs: points in both runs and each phase.
  for (const char* point : {"train-step:30", "train-step:61", "checkpoint-file:2", "checkpoint-record:7",
                            "evaluation:3", "evaluation:10", "run-done:1"}) {
    INFO("DIFFLAB_CRASH_AT=" << point);
    const auto dir = root / std::string(point).replace(std::string(point).find(':'), 1, "-");
    std::string out;
    CHECK(test::run_command("DIFFLAB_CRASH_AT=" + std::string(point) + " " + sweep_command(dir), &out) == 128 + 9);
    CHECK(query(dir / "runs.sqlite", "PRAGMA integrity_check") == "ok\n");
    REQUIRE(test::run_command(sweep_command(dir), &out) == 0);
    check_repaired(dir, reference);
  }
}

TEST_CASE("a sweep killed from outside again and again still ends with the uninterrupted result", "[crash]") {
  const auto root = test::temp_dir("crash-timed");
  const auto reference = reference_sweep(root / "reference");
  const auto dir = root / "killed";
  int kills = 0, rc = -1;
  std::string out;
  // SIGKILL after 0.6 s, 0.85 s, ...: wherever each attempt happens to be, the next one goes on.
  for (int attempt = 0; attempt < 30 && rc != 0; ++attempt) {
    const double seconds = 0.6 + 0.25 * attempt;
    rc = test::run_command("timeout -s KILL " + exact(seconds) + " " + sweep_command(dir), &out);
    if (rc == 128 + 9) ++kills;
    INFO(out);
    REQUIRE((rc == 0 || rc == 128 + 9));
  }
  REQUIRE(rc == 0);
  CHECK(kills >= 1);
  check_repaired(dir, reference);
}

TEST_CASE("a changed grid under a recorded sweep name is refused with the difference", "[crash][cli]") {
  const auto dir = test::temp_dir("changed");
  reference_sweep(dir);
  std::string out;
  CHECK(test::run_command(sweep_command(dir, " --set train.lr=2.0e-3"), &out) == 2);
  CHECK_THAT(out, Catch::Contains("was recorded with a different grid") &&
                      Catch::Contains("2 recorded runs not in the file, 2 new") &&
                      Catch::Contains("train.lr: 0.001 -> 0.002") && Catch::Contains("--extend") &&
                      Catch::Contains("--new-sweep"));
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  CHECK(test::run_command(sweep_command(dir, " --extend --new-sweep"), &out) == 2);
  CHECK_THAT(out, Catch::Contains("choose one"));
}

TEST_CASE("one run's failure is recorded with its reason and the sweep goes on", "[crash][cli]") {
  const auto dir = test::temp_dir("failing");
  const auto file = dir / "failing.yaml";
  std::ofstream(file) << R"(name: failing
seed: 0
device: cpu
dataset:  {plugin: fixture_failing}
model:    {plugin: mlp, hidden: 16, layers: 1, time_embedding: 8}
schedule: {plugin: linear, timesteps: 50}
train:    {epochs: 2, batch_size: 64, lr: 1.0e-3, checkpoint_every: 1}
evaluation: {num_samples: 64, samplers: [{plugin: ddim, steps: 10}], metrics: [{plugin: mmd}]}
sweep:    {dataset.fail: [none, throw, oom, foreign, input]}
)";
  const auto db = (dir / "runs.sqlite").string();
  const auto command = test::runner_path() + " sweep " + file.string() + " --db " + db + " --out " +
                       (dir / "runs").string() + " --plugin-dir " DIFFLAB_TEST_PLUGIN_DIR "/failing --threads 1";
  std::string out;
  CHECK(test::run_command(command, &out) == 2);  // a run's input (its data file) was bad
  {
    RunStore store(db, RunStore::Access::read_only);
    const auto runs = store.runs("failing");
    REQUIRE(runs.size() == 5);
    std::map<std::string, std::string> outcome;
    for (const auto& r : runs) {
      outcome[nlohmann::json::parse(r.axes_json).at("dataset.fail")] =
          std::string(run_status_name(r.status)) + ": " + r.reason;
    }
    CHECK(outcome["none"] == "done: ");
    CHECK_THAT(outcome["throw"], Catch::StartsWith("failed: fixture dataset failure"));
    CHECK_THAT(outcome["oom"], Catch::StartsWith("failed: std::bad_alloc"));
    CHECK_THAT(outcome["foreign"], Catch::StartsWith("failed: a plugin threw something that is not a std::exception"));
    CHECK_THAT(outcome["input"], Catch::StartsWith("failed: /nonexistent/fixture.idx: no such file"));
    for (const auto& r : runs) {
      if (r.status == RunStatus::done) CHECK(store.checkpoints(r.id).size() == 2);
    }
  }
  CHECK(test::run_command(test::runner_path() + " report --db " + db, &out) == 0);
  CHECK_THAT(out, Catch::Contains("fixture dataset failure") && Catch::Contains("failed") &&
                      Catch::Contains("done"));
  // Failed runs are not retried unless asked; the exit code still says some failed.
  CHECK(test::run_command(command, &out) == 1);
  CHECK_THAT(out, Catch::Contains("--retry-failed"));
}

TEST_CASE("a reader sees whole checkpoints while a sweep writes, and never blocks it", "[crash][store]") {
  const auto dir = test::temp_dir("wal-reader");
  const auto db = dir / "runs.sqlite";
  int writer_rc = -1;
  std::string writer_out;
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    writer_rc = test::run_command(sweep_command(dir), &writer_out);
    writing = false;
  });
  std::map<std::int64_t, std::set<std::size_t>> counts_seen;  // checkpoint -> metric counts seen
  int reads = 0;
  double slowest = 0;
  ReportOptions options;
  options.format = ReportFormat::json;
  while (writing) {
    try {
      const auto start = std::chrono::steady_clock::now();
      RunStore store(db.string(), RunStore::Access::read_only);
      store.snapshot([&] {
        const auto checkpoints = store.sweep_checkpoints();
        std::map<std::int64_t, std::size_t> counts;
        for (const auto& c : checkpoints) counts[c.id] = 0;
        for (const auto& m : store.sweep_metrics()) ++counts[m.checkpoint_id];
        for (const auto& [id, n] : counts) counts_seen[id].insert(n);
      });
      render_report(store, options);
      slowest = std::max(slowest, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      ++reads;
    } catch (const InputError&) {
      // the writer has not created the store yet
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  writer.join();
  INFO(writer_out);
  REQUIRE(writer_rc == 0);
  CHECK_THAT(writer_out, !Catch::Contains("locked"));
  RunStore store(db.string(), RunStore::Access::read_only);
  std::map<std::int64_t, std::size_t> final_counts;
  for (const auto& m : store.sweep_metrics()) ++final_counts[m.checkpoint_id];
  REQUIRE(final_counts.size() == 10);
  // Each checkpoint was seen without metrics or with all of them, never with a part.
  for (const auto& [id, seen] : counts_seen) {
    for (auto n : seen) CHECK((n == 0 || n == final_counts[id]));
  }
  CHECK(reads >= 10);
  CHECK(slowest < 1.0);
  std::cout << "reader: " << reads << " consistent reads while the sweep wrote, slowest " << slowest
            << " s\n";
}

TEST_CASE("a truncated last checkpoint is set aside and the run resumes to the uninterrupted result",
          "[crash]") {
  const auto root = test::temp_dir("truncated");
  const auto reference = reference_sweep(root / "reference");
  const auto dir = root / "machine-crash";
  std::string out;
  // Killed as the first run ends: all its checkpoints recorded, the run not yet done.
  CHECK(test::run_command("DIFFLAB_CRASH_AT=run-done:1 " + sweep_command(dir), &out) == 128 + 9);
  RunStore before((dir / "runs.sqlite").string(), RunStore::Access::read_only);
  const auto run = before.runs().at(0);
  const auto checkpoints = before.checkpoints(run.id);
  REQUIRE(checkpoints.size() == 5);
  // What a power cut can leave of files the kernel had not yet written: the last checkpoint cut
  // in half, the one before it empty. The run must go on from the third.
  const auto last = checkpoints[4].file, previous = checkpoints[3].file;
  fs::resize_file(last, fs::file_size(last) / 2);
  fs::resize_file(previous, 0);
  REQUIRE(test::run_command(sweep_command(dir), &out) == 0);
  INFO(out);
  CHECK_THAT(out, Catch::Contains("checkpoint " + last + " cannot be read") &&
                      Catch::Contains("checkpoint " + previous + " cannot be read (the file is empty)"));
  CHECK(fs::exists(last + ".unreadable"));
  CHECK(fs::exists(previous + ".unreadable"));
  check_repaired(dir, reference);
}

TEST_CASE("two runner sweeps on one store split the grid: each run once, each training once",
          "[crash][parallel]") {
  const auto root = test::temp_dir("two-sweeps");
  // Four trainings, each evaluated twice (an evaluation-only axis): eight runs.
  const std::string grid = " --set 'sweep.evaluation.num_samples=[128, 256]'";
  const auto command = [&](const fs::path& dir) {
    return test::runner_path() + " sweep " + kTiny + " --db " + (dir / "runs.sqlite").string() + " --out " +
           (dir / "runs").string() + grid + " --threads 1 --progress none";
  };
  std::string out;
  REQUIRE(test::run_command(command(root / "reference") + " -q", &out) == 0);
  const auto reference = recorded(root / "reference" / "runs.sqlite");
  REQUIRE(reference.runs.size() == 8);

  const auto dir = root / "shared";
  int rc[2] = {-1, -1};
  std::string output[2];
  std::thread first([&] { rc[0] = test::run_command(command(dir), &output[0]); });
  std::thread second([&] { rc[1] = test::run_command(command(dir), &output[1]); });
  first.join();
  second.join();
  INFO(output[0] << "\n----\n" << output[1]);
  CHECK(rc[0] == 0);
  CHECK(rc[1] == 0);
  const auto count = [&](const std::string& what) {
    int n = 0;
    for (const auto& text : output) {
      for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    }
    return n;
  };
  CHECK(count("] on cpu") == 8);                         // every run executed by one process
  CHECK(count("reusing the checkpoints of run") == 4);  // every model trained once
  CHECK(query(dir / "runs.sqlite", "PRAGMA integrity_check") == "ok\n");
  CHECK(query(dir / "runs.sqlite", "SELECT COUNT(*) FROM runs WHERE status = 'done'") == "8\n");
  check_repaired(dir, reference);
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir / "runs")) files += e.path().filename() == "checkpoint.pt";
  CHECK(files == 4 * 5);
}
