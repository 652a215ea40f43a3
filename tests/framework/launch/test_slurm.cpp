// The schedule sweep as a Slurm job array on the local cluster that scripts/test.sh starts
// (scripts/slurm/start.sh): one task made to fail, then resubmitted alone, and the merged
// database equal to a local run's. Hidden from the default run; CTest runs it as slurm_sweep.
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <catch2/catch.hpp>

#include "store/run_store.hpp"
#include "support.hpp"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

const std::string kTiny = std::string(DIFFLAB_SOURCE_DIR) + "/tests/fixtures/tiny_schedule_sweep.yaml";
// Four epochs of four steps, checkpoints at steps 8 and 16: seconds per run.
const std::string kShort = " --threads 1 --set train.epochs=4 ";

std::string sweep(const fs::path& dir, const std::string& extra) {
  return test::runner_path() + " sweep " + kTiny + " --db " + (dir / "runs.sqlite").string() + " --out " +
         (dir / "runs").string() + kShort + extra;
}

std::vector<std::string> lines(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Whether sinfo answers; without a cluster the test skips, except under CI=true, where it fails.
bool slurm_reachable() {
  if (test::run_command("sinfo -h") == 0) return true;
  const char* ci = std::getenv("CI");
  if (ci && std::string(ci) == "true") FAIL("no Slurm cluster is reachable (sinfo failed); scripts/test.sh starts one");
  WARN("skipped: no Slurm cluster is reachable (sinfo failed); start one with scripts/slurm/start.sh");
  return false;
}

}  // namespace

TEST_CASE("a sweep as a Slurm job array: a failed task resubmitted alone, merged equal to a local run",
          "[.][slurm]") {
  if (!slurm_reachable()) return;
  const auto root = test::temp_dir("slurm");
  const auto local = root / "local", cluster = root / "cluster";
  std::string out;
  REQUIRE(test::run_command(sweep(local, "-q"), &out) == 0);
  const auto reference = test::recorded_rows(local / "runs.sqlite");
  REQUIRE(reference.size() > 4);

  // Task 2 kills itself at its 9th optimizer step, after its first checkpoint (step 8).
  const int first = test::run_command("DIFFLAB_CRASH_AT=train-step:9@2 " + sweep(cluster, "--launcher slurm --wait"), &out);
  INFO(out);
  CHECK(first == 1);
  const auto slurm_dir = cluster / "runs" / "tiny_schedule_sweep" / "slurm";
  auto jobs = lines(slurm_dir / "jobs.txt");
  REQUIRE(jobs.size() == 1);
  const auto job = jobs[0].substr(0, jobs[0].find(' '));
  CHECK(jobs[0].find(" 0-3 ") != std::string::npos);
  {
    RunStore store((cluster / "runs.sqlite").string(), RunStore::Access::read_only);
    const auto runs = store.runs();
    REQUIRE(runs.size() == 4);
    for (const auto& r : runs) CHECK(r.status == (r.grid_index == 2 ? RunStatus::failed : RunStatus::done));
    const auto log = (slurm_dir / "logs" / (job + "_2.log")).string();
    CHECK_THAT(runs[2].reason, Catch::Contains("Slurm task " + job + "_2 FAILED") && Catch::Contains(log));
    CHECK(fs::exists(log));
    CHECK(store.checkpoints(runs[2].id).size() == 1);  // what it did before it died is kept
  }
  CHECK_THAT(out, Catch::Contains("run 2 failed"));

  // Merging the shards again adds nothing.
  const auto before = test::recorded_rows(cluster / "runs.sqlite");
  REQUIRE(test::run_command(test::runner_path() + " merge -q --db " + (cluster / "runs.sqlite").string() + " " +
                                (cluster / "runs" / "tiny_schedule_sweep" / "shards").string(), &out) == 0);
  CHECK(test::recorded_rows(cluster / "runs.sqlite") == before);

  // Resubmitting runs only the failed task, which resumes from its checkpoint.
  const int second = test::run_command(sweep(cluster, "--launcher slurm --wait --retry-failed"), &out);
  INFO(out);
  CHECK(second == 0);
  jobs = lines(slurm_dir / "jobs.txt");
  REQUIRE(jobs.size() == 2);
  const auto job2 = jobs[1].substr(0, jobs[1].find(' '));
  CHECK(jobs[1].find(" 2 ") != std::string::npos);
  int logs_of_job2 = 0;
  for (const auto& e : fs::directory_iterator(slurm_dir / "logs")) {
    if (e.path().filename().string().rfind(job2 + "_", 0) == 0) {
      ++logs_of_job2;
      CHECK(e.path().filename().string() == job2 + "_2.log");
    }
  }
  CHECK(logs_of_job2 == 1);
  CHECK(test::recorded_rows(cluster / "runs.sqlite") == reference);

  // Nothing is left to submit.
  CHECK(test::run_command(sweep(cluster, "--launcher slurm --wait"), &out) == 0);
  CHECK_THAT(out, Catch::Contains("no run to submit"));
  CHECK(lines(slurm_dir / "jobs.txt").size() == 2);
}

TEST_CASE("grid points that share their training run as one Slurm task, which trains it once",
          "[.][slurm]") {
  if (!slurm_reachable()) return;
  const auto root = test::temp_dir("slurm-groups");
  const auto local = root / "local", cluster = root / "cluster";
  // Two trainings, each evaluated with two sample counts: grid points 0, 1 and 2, 3 share one.
  const std::string grid =
      "--set 'sweep.schedule.plugin=[linear, cosine_beta]' --set 'sweep.evaluation.num_samples=[128, 256]' ";
  std::string out;
  REQUIRE(test::run_command(sweep(local, grid + "-q"), &out) == 0);
  const auto reference = test::recorded_rows(local / "runs.sqlite");
  REQUIRE(test::run_command(sweep(cluster, grid + "--launcher slurm --wait"), &out) == 0);
  INFO(out);
  const auto slurm_dir = cluster / "runs" / "tiny_schedule_sweep" / "slurm";
  const auto jobs = lines(slurm_dir / "jobs.txt");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].find(" 0,2 ") != std::string::npos);  // one task per training
  const auto job = jobs[0].substr(0, jobs[0].find(' '));
  for (const char* task : {"_0.log", "_2.log"}) {
    std::ifstream in(slurm_dir / "logs" / (job + task));
    const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK_THAT(log, Catch::Contains("reusing the checkpoints of run"));  // the second point
  }
  RunStore store((cluster / "runs.sqlite").string(), RunStore::Access::read_only);
  const auto runs = store.runs();
  REQUIRE(runs.size() == 4);
  for (const auto& r : runs) CHECK(r.status == RunStatus::done);
  CHECK(store.checkpoints(runs[0].id).back().file == store.checkpoints(runs[1].id).back().file);
  CHECK(store.checkpoints(runs[2].id).back().file == store.checkpoints(runs[3].id).back().file);
  CHECK(test::recorded_rows(cluster / "runs.sqlite") == reference);
}

TEST_CASE("a latent sweep on Slurm: the autoencoder's array first, the latent runs' array after it", "[.][slurm]") {
  if (!slurm_reachable()) return;
  const auto cluster = test::temp_dir("slurm-latent");
  const std::string tiny_latent = std::string(DIFFLAB_SOURCE_DIR) + "/tests/fixtures/tiny_latent_sweep.yaml";
  // Two latent runs (two learning rates) share one autoencoder.
  const auto command = "DIFFLAB_CACHE_DIR=" + (cluster / "cache").string() + " " + test::runner_path() + " sweep " +
                       tiny_latent + " --db " + (cluster / "runs.sqlite").string() + " --out " +
                       (cluster / "runs").string() + " --threads 1 --set 'sweep.train.lr=[2.0e-3, 1.0e-3]' " +
                       "--launcher slurm --wait";
  std::string out;
  REQUIRE(test::run_command(command, &out) == 0);
  INFO(out);
  const auto slurm_dir = cluster / "runs" / "tiny_latent_sweep" / "slurm";
  const auto jobs = lines(slurm_dir / "jobs.txt");
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[0].find(" 0 ") != std::string::npos);    // the autoencoder
  CHECK(jobs[1].find(" 1-2 ") != std::string::npos);  // its latent runs, after it
  CHECK_THAT(out, Catch::Contains("after job " + jobs[0].substr(0, jobs[0].find(' '))));
  RunStore store((cluster / "runs.sqlite").string(), RunStore::Access::read_only);
  const auto runs = store.runs();
  REQUIRE(runs.size() == 3);
  for (const auto& r : runs) {
    CHECK(r.status == RunStatus::done);
    if (r.grid_index > 0) CHECK(r.started_at >= runs[0].finished_at);
  }
  // The autoencoder trained once: the latent tasks read its checkpoints, they did not train it.
  CHECK(store.checkpoints(runs[0].id).size() == 2);
  CHECK(store.checkpoints(runs[1].id).back().file != store.checkpoints(runs[0].id).back().file);
}
