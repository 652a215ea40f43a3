#pragma once
// The launch layer (top of framework/src): sweeps spread over child processes (--jobs, this
// header) or Slurm array tasks (slurm_launcher.hpp), each writing a shard the parent merges. It
// uses the engine and every layer below it.
//
// Parallel sweeps: each grid point runs as a child `runner run FILE --index I --db SHARD` that
// writes its own SQLite shard; the parent, the main database's only writer, merges each shard as
// its child exits. The same shards serve the Slurm launcher.
#include <filesystem>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "store/run_store.hpp"
#include "config/sweep_grid.hpp"

namespace difflab {

/// What every child `runner run` gets besides its index, shard, threads and device.
struct ChildCommand {
  std::string runner;      // the runner executable (absolute)
  std::string sweep_file;  // the sweep file as the parent read it
  std::filesystem::path out_dir;
  std::vector<std::string> pass_through;  // --set, --plugin-dir, -v/-q, as given to the parent
};

struct LocalLaunchOptions {
  ChildCommand child;
  int jobs = 1;
  int threads = 0;                   // torch threads of the whole machine (0: the core count)
  std::vector<std::string> devices;  // round-robin over the job slots; empty: the file's device
  bool retry_failed = false;
  GridChange grid_change = GridChange::refuse;
  ProgressSink* progress = nullptr;  // shows the children's progress (they print json lines)
};

/// "cuda:0,cuda:1" or "cpu" -> the devices; InputError naming a malformed or absent one.
std::vector<std::string> parse_devices(const std::string& list);

/// The device of each of `jobs` slots: the devices in turn, so each gets jobs / devices slots.
std::vector<std::string> assign_devices(const std::vector<std::string>& devices, int jobs);

/// Devices to spread over when none are given: every CUDA device when a run's device is `auto`
/// and more than one is visible; else none (each run uses its own device).
std::vector<std::string> default_devices(const SweepGrid& grid);

/// Torch threads of each child: max(1, threads / jobs), threads defaulting to the core count.
int threads_per_child(int threads, int jobs);

/// `<out>/<sweep>/shards/run-<I>.sqlite`, `<out>/<sweep>/logs/run-<I>.log`.
std::filesystem::path shard_path(const std::filesystem::path& out_dir, const std::string& sweep,
                                 std::int64_t index);
std::filesystem::path log_path(const std::filesystem::path& out_dir, const std::string& sweep,
                               std::int64_t index);

/// Merges every shard an earlier invocation left under `<out>/<sweep>/shards` into `store`.
void merge_leftover_shards(RunStore& store, const std::filesystem::path& out_dir, const std::string& sweep);

/// Writes a fresh shard for `runs` (one run, or the runs of one training that a Slurm task runs in
/// turn): the sweep's runs (pending), these runs' results so far from `store` (to resume), and
/// those of a done run with the same training (to reuse).
void seed_shard(const RunStore& store, const std::string& sweep, const std::vector<const RunConfig*>& runs,
                const std::filesystem::path& shard);

/// The runs of `grid` to execute now, as run_sweep chooses them; counts the others in `summary`.
std::vector<const RunConfig*> runs_to_launch(const SweepGrid& grid, std::int64_t sweep_id,
                                             RunStore& store, bool retry_failed, SweepSummary& summary);

/// The argv of `runner run` for one run.
std::vector<std::string> child_argv(const ChildCommand& child, const SweepGrid& grid, GridChange change,
                                    const RunConfig& run, const std::filesystem::path& shard,
                                    int threads, const std::string& device);

/// `runner sweep --jobs N`: records the sweep, then keeps `jobs` children running over the runs
/// that are not done, merging each shard as its child exits. SIGINT/SIGTERM are forwarded to the
/// children; their runs stay resumable.
SweepSummary run_sweep_local(SweepGrid grid, RunStore& store, const Registry& registry,
                             const LocalLaunchOptions& options);

}  // namespace difflab
