// Parallel sweeps: child runners with their own shards, the merge into one database, device
// assignment, and a child killed by a signal failing only its run.
#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <catch2/catch.hpp>

#include "training/checkpoint.hpp"
#include "difflab/options.hpp"
#include "engine/engine.hpp"
#include "difflab/errors.hpp"
#include "launch/local_launcher.hpp"
#include "store/run_store.hpp"
#include "launch/slurm_launcher.hpp"
#include "store/store_merge.hpp"
#include "support.hpp"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

const std::string kTiny = std::string(DIFFLAB_SOURCE_DIR) + "/tests/fixtures/tiny_schedule_sweep.yaml";

std::string sweep_command(const fs::path& dir, const std::string& extra) {
  return test::runner_path() + " sweep " + kTiny + " --db " + (dir / "runs.sqlite").string() + " --out " +
         (dir / "runs").string() + " " + extra;
}

std::size_t count(const std::vector<std::string>& rows, const std::string& kind) {
  return static_cast<std::size_t>(
      std::count_if(rows.begin(), rows.end(), [&](const std::string& r) { return r.rfind(kind + " ", 0) == 0; }));
}

double timed(const std::string& command, int expected, std::string* output = nullptr) {
  const auto start = std::chrono::steady_clock::now();
  std::string out;
  const int rc = test::run_command(command, &out);
  INFO(out);
  CHECK(rc == expected);
  if (output) *output = out;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A small store with one sweep and one run in `status`, with a checkpoint, losses, a metric and an
// artifact whose values are offset by `value`.
void fill_store(const fs::path& db, RunStatus status, double value, const std::string& hash = "h0") {
  RunStore store(db.string());
  const auto sweep = store.add_sweep("s", "s.yaml", "name: s");
  RunRecord run;
  run.sweep_id = sweep;
  run.grid_index = 0;
  run.config_json = "{}";
  run.config_hash = hash;
  run.status = status;
  const auto id = store.add_run(run);
  if (status == RunStatus::done) store.mark_done(id, 1.5, 2.5);
  if (status == RunStatus::failed) store.mark_failed(id, "it broke");
  store.add_losses(id, {{10, 1, value, ""}, {20, 2, value / 2, ""}});
  const auto c = store.add_checkpoint({0, id, 2, 20, "/x/checkpoint.pt", 3.0, "model"});
  store.add_metric({c, "ddpm", "{}", "mmd", "rbf", value * 3});
  store.add_artifact({c, "ddpm", "samples_npy", "/x/samples.npy"});
}

}  // namespace

TEST_CASE("device lists are checked and dealt to the job slots in turn", "[parallel]") {
  CHECK(parse_devices("cpu") == std::vector<std::string>{"cpu"});
  CHECK(parse_devices("cpu,cpu") == std::vector<std::string>{"cpu", "cpu"});
  CHECK_THROWS_AS(parse_devices(""), InputError);
  CHECK_THROWS_AS(parse_devices("cpu,,cpu"), InputError);
  CHECK_THROWS_WITH(parse_devices("cpu,gpu:1"), Catch::Contains("'gpu:1' is not a device"));
  if (!torch::cuda::is_available()) CHECK_THROWS_AS(parse_devices("cuda:0"), InputError);
  CHECK(assign_devices({"cuda:0", "cuda:1"}, 5) ==
        std::vector<std::string>{"cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"});
  CHECK(assign_devices({"cuda:0", "cuda:1", "cuda:2"}, 2) == std::vector<std::string>{"cuda:0", "cuda:1"});
  CHECK(assign_devices({}, 2) == std::vector<std::string>{"", ""});
  CHECK(threads_per_child(4, 2) == 2);
  CHECK(threads_per_child(3, 2) == 1);
  CHECK(threads_per_child(1, 4) == 1);
  CHECK(threads_per_child(0, 1) >= 1);
}

TEST_CASE("Slurm array specs, scontrol's task states and shell quoting", "[parallel]") {
  CHECK(array_spec({0, 1, 2, 5, 7, 8}, 0) == "0-2,5,7-8");
  CHECK(array_spec({3}, 2) == "3%2");
  const auto tasks = parse_scontrol_tasks(
      "JobId=12 ArrayJobId=11 ArrayTaskId=1 JobName=x JobState=FAILED Reason=NonZeroExitCode ExitCode=0:9\n"
      "JobId=11 ArrayJobId=11 ArrayTaskId=0 JobName=x JobState=COMPLETED Reason=None ExitCode=0:0\n"
      "JobId=13 ArrayJobId=11 ArrayTaskId=2-3 JobState=PENDING\n");
  REQUIRE(tasks.size() == 2);
  CHECK(tasks[0].task == 1);
  CHECK(tasks[0].state == "FAILED");
  CHECK(tasks[0].exit_code == "0:9");
  CHECK(tasks[1].task == 0);
  CHECK(tasks[1].state == "COMPLETED");
  CHECK(shell_quote("it's a/b") == "'it'\\''s a/b'");
}

TEST_CASE("merging shards is idempotent and never downgrades a done run", "[parallel][store]") {
  const auto dir = test::temp_dir("merge");
  const auto main_db = dir / "main.sqlite";
  fill_store(dir / "done.sqlite", RunStatus::done, 0.25);
  fill_store(dir / "failed.sqlite", RunStatus::failed, 7.0);

  RunStore main_store(main_db.string());
  auto merged = merge_shards({dir / "done.sqlite"}, main_store);
  CHECK(merged.runs == 1);
  CHECK(merged.finished == 1);
  const auto once = test::recorded_rows(main_db);
  CHECK(count(once, "run") == 1);
  CHECK(count(once, "loss") == 2);
  CHECK(count(once, "checkpoint") == 1);
  CHECK(count(once, "metric") == 1);
  CHECK(count(once, "artifact") == 1);
  CHECK(std::find(once.begin(), once.end(), "metric h0 20 ddpm mmd rbf 0.75") != once.end());
  auto run = main_store.runs("s").at(0);
  CHECK(run.status == RunStatus::done);
  CHECK(run.train_seconds == 1.5);
  CHECK(run.eval_seconds == 2.5);

  merged = merge_shards({dir / "done.sqlite"}, main_store);  // again: nothing new
  CHECK(merged.finished == 0);
  CHECK(test::recorded_rows(main_db) == once);

  merged = merge_shards({dir / "failed.sqlite"}, main_store);  // a failed try of a done run
  CHECK(merged.kept == 1);
  CHECK(test::recorded_rows(main_db) == once);
  CHECK(main_store.runs("s").at(0).status == RunStatus::done);

  // A failed run in the main store becomes done when a shard finished it.
  const auto other = dir / "other.sqlite";
  fill_store(other, RunStatus::failed, 7.0);
  RunStore other_store(other.string());
  merge_shards({dir / "done.sqlite"}, other_store);
  const auto fixed = other_store.runs("s").at(0);
  CHECK(fixed.status == RunStatus::done);
  CHECK(fixed.reason.empty());

  // Folders are searched for *.sqlite; a missing path is an input error.
  CHECK(find_shards({dir.string()}).size() == 4);
  CHECK_THROWS_AS(find_shards({(dir / "nope").string()}), InputError);
  std::string out;
  CHECK(test::run_command(test::runner_path() + " merge --db " + main_db.string() + " " + (dir / "nope").string(),
                          &out) == 2);
  CHECK_THAT(out, Catch::Contains("nope: no such file or folder"));
}

TEST_CASE("a checkpoint loads onto the device asked for, whatever device wrote it", "[parallel][training]") {
  const auto dir = test::temp_dir("checkpoint-device");
  const auto mlp = [] {
    const auto& entry = test::plugins().get(PluginKind::model, "mlp");
    return test::plugins().make_model("mlp", resolve_options(entry.info.options, {{"hidden", std::int64_t{8}},
                                                                                   {"layers", std::int64_t{1}},
                                                                                   {"time_embedding", std::int64_t{4}}}));
  };
  torch::manual_seed(3);
  auto model = mlp();
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-3));
  auto gen = make_generator(torch::kCPU, 5);
  save_checkpoint((dir / "c.pt").string(), *model, optimizer, gen, {2, 20});
  // What a CUDA run writes: a 16-byte Philox state (seed, offset) instead of the CPU's.
  {
    torch::serialize::OutputArchive archive, model_archive, optimizer_archive;
    model->save(model_archive);
    optimizer.save(optimizer_archive);
    archive.write("model", model_archive);
    archive.write("optimizer", optimizer_archive);
    archive.write("rng", torch::zeros({16}, torch::kUInt8));
    archive.write("epoch", torch::tensor(std::int64_t{2}));
    archive.write("step", torch::tensor(std::int64_t{20}));
    archive.save_to((dir / "cuda.pt").string());
  }
  for (const char* file : {"c.pt", "cuda.pt"}) {
    torch::manual_seed(4);
    auto fresh = mlp();
    torch::optim::Adam fresh_optimizer(fresh->parameters(), torch::optim::AdamOptions(1e-3));
    auto fresh_gen = make_generator(torch::kCPU, 9);
    const auto loaded = load_checkpoint((dir / file).string(), *fresh, &fresh_optimizer, &fresh_gen, torch::Device("cpu"));
    CHECK(loaded.position.step == 20);
    CHECK(loaded.rng_restored == (std::string(file) == "c.pt"));
    const auto a = model->parameters(), b = fresh->parameters();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(b[i].device() == torch::Device("cpu"));
      CHECK(torch::equal(a[i], b[i]));
    }
  }
}

TEST_CASE("a sweep with --jobs 2 records exactly what --jobs 1 does, one shard and log per run", "[parallel][cli]") {
  const auto root = test::temp_dir("jobs");
  const auto serial = root / "serial", parallel = root / "parallel";
  // One torch thread per run on both sides: the results are bit-identical.
  const double serial_s = timed(sweep_command(serial, "--threads 1 -q"), 0);
  std::string out;
  const double parallel_s = timed(sweep_command(parallel, "--jobs 2 --threads 2 --devices cpu,cpu"), 0, &out);
  std::cout << "tiny_schedule_sweep, 4 runs: --jobs 1 --threads 1 took " << std::fixed << std::setprecision(1)
            << serial_s << " s, --jobs 2 --threads 2 (1 per run) " << parallel_s << " s\n";
  CHECK_THAT(out, Catch::Contains("run 3 [schedule.plugin=exponential] started on cpu"));
  CHECK_THAT(out, Catch::Contains("4 done, 0 running, 0 failed"));
  const auto reference = test::recorded_rows(serial / "runs.sqlite");
  REQUIRE(count(reference, "run") == 4);
  REQUIRE(count(reference, "checkpoint") == 20);
  CHECK(test::recorded_rows(parallel / "runs.sqlite") == reference);
  {
    RunStore store((parallel / "runs.sqlite").string(), RunStore::Access::read_only);
    for (const auto& run : store.runs()) CHECK(run.device == "cpu");
  }
  for (int i = 0; i < 4; ++i) {
    const auto shard = parallel / "runs" / "tiny_schedule_sweep" / "shards" / ("run-" + std::to_string(i) + ".sqlite");
    CHECK(fs::exists(shard));
    const auto log = parallel / "runs" / "tiny_schedule_sweep" / "logs" / ("run-" + std::to_string(i) + ".log");
    std::ifstream in(log);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK_THAT(text, Catch::Contains("--index " + std::to_string(i)) && Catch::Contains("--threads 1"));
    CHECK_THAT(text, Catch::Contains("1 of 1 run done"));
  }
  // Merging the shards once more adds nothing; a re-run has nothing left to do.
  CHECK(test::run_command(test::runner_path() + " merge -q --db " + (parallel / "runs.sqlite").string() + " " +
                          (parallel / "runs").string()) == 0);
  CHECK(test::recorded_rows(parallel / "runs.sqlite") == reference);
  timed(sweep_command(parallel, "--jobs 2 --threads 2"), 0, &out);
  CHECK_THAT(out, Catch::Contains("4 of 4 runs done (4 already before)"));
  CHECK(test::recorded_rows(parallel / "runs.sqlite") == reference);
}

TEST_CASE("with --jobs 2, a raised train.epochs continues each run to what a straight sweep records",
          "[parallel][cli]") {
  const auto root = test::temp_dir("jobs-continue");
  const auto straight = root / "straight", continued = root / "continued";
  timed(sweep_command(straight, "--threads 1 -q --set train.epochs=8"), 0);
  timed(sweep_command(continued, "--jobs 2 --threads 2 -q --set train.epochs=4"), 0);
  std::string out;
  // The shards the first sweep left hold the 4-epoch runs: they must not come back as runs.
  timed(sweep_command(continued, "--jobs 2 --threads 2 --set train.epochs=8"), 0, &out);
  CHECK_THAT(out, Catch::Contains("continuing its recorded training (train.epochs 4 -> 8)") &&
                      Catch::Contains("4 done, 0 running, 0 failed"));
  const auto reference = test::recorded_rows(straight / "runs.sqlite");
  REQUIRE(count(reference, "run") == 4);
  CHECK(test::recorded_rows(continued / "runs.sqlite") == reference);
}

TEST_CASE("a child killed by a signal fails only its run, naming its log, and --retry-failed resumes it",
          "[parallel][crash][cli]") {
  const auto root = test::temp_dir("jobs-crash");
  const auto reference_dir = root / "reference", dir = root / "crashed";
  const std::string two = "--threads 2 --set 'sweep.schedule.plugin=[linear, cosine_beta, quadratic]'";
  timed(sweep_command(reference_dir, "--threads 1 -q --set 'sweep.schedule.plugin=[linear, cosine_beta, quadratic]'"), 0);
  const auto reference = test::recorded_rows(reference_dir / "runs.sqlite");
  std::string out;
  // Run 1 kills itself at its 13th optimizer step: after its first checkpoint (step 8), mid-epoch 4.
  timed("DIFFLAB_CRASH_AT=train-step:13@1 " + sweep_command(dir, "--jobs 2 " + two), 1, &out);
  CHECK_THAT(out, Catch::Contains("run 1 failed"));
  {
    RunStore store((dir / "runs.sqlite").string(), RunStore::Access::read_only);
    const auto runs = store.runs();
    REQUIRE(runs.size() == 3);
    CHECK(runs[0].status == RunStatus::done);
    CHECK(runs[2].status == RunStatus::done);
    CHECK(runs[1].status == RunStatus::failed);
    CHECK_THAT(runs[1].reason, Catch::Contains("killed by signal 9 (SIGKILL) without a final status") &&
                                   Catch::Contains("logs/run-1.log"));
  }
  timed(sweep_command(dir, "--jobs 2 " + two), 1, &out);  // failed runs stay failed without the flag
  CHECK_THAT(out, Catch::Contains("use --retry-failed"));
  timed(sweep_command(dir, "--jobs 2 --retry-failed " + two), 0, &out);
  CHECK(test::recorded_rows(dir / "runs.sqlite") == reference);
}

TEST_CASE("parallel sweep flags are checked", "[parallel][cli]") {
  const auto dir = test::temp_dir("jobs-flags");
  std::string out;
  CHECK(test::run_command(sweep_command(dir, "--jobs 0"), &out) == 2);
  CHECK_THAT(out, Catch::Contains("--jobs 0: must be at least 1"));
  CHECK(test::run_command(sweep_command(dir, "--jobs 2 --devices cpu,tpu"), &out) == 2);
  CHECK_THAT(out, Catch::Contains("'tpu' is not a device"));
  CHECK(test::run_command(sweep_command(dir, "--wait"), &out) == 2);
  CHECK_THAT(out, Catch::Contains("need --launcher slurm"));
  CHECK(test::run_command(sweep_command(dir, "--launcher pbs"), &out) == 2);
  CHECK_THAT(out, Catch::Contains("expected local or slurm"));
}
