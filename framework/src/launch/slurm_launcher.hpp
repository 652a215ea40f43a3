#pragma once
// `runner sweep --launcher slurm`: the grid as one Slurm job array whose tasks run
// `runner run FILE --index $SLURM_ARRAY_TASK_ID --db SHARD`, each writing its own shard, merged
// into the sweep's database by the submitting runner (--wait) or by `runner merge`.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "launch/local_launcher.hpp"

namespace difflab {

struct SlurmSettings {
  std::string partition;  // sbatch --partition; empty: the cluster's default
  std::string time;       // sbatch --time of each task; empty: the partition's default
  int gpus_per_task = 0;
  int max_parallel = 0;  // --array=...%K; 0: no limit
  bool wait = false;     // block until the array ends, then merge and report
};

struct SlurmLaunchOptions {
  SlurmSettings settings;
  ChildCommand child;  // absolute paths: tasks may start anywhere on the cluster
  std::filesystem::path db;
  int threads = 0;  // torch threads (and CPUs) of each task; 0: 1
  bool retry_failed = false;
  GridChange grid_change = GridChange::refuse;
};

/// "0,2,5%2": the --array value for these grid indices.
std::string array_spec(const std::vector<std::int64_t>& indices, int max_parallel);

/// One array task's state from `scontrol -o show job`.
struct SlurmTaskState {
  std::int64_t task = -1;
  std::string state;      // COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
  std::string exit_code;  // "0:9": exit status and signal
};

/// Parses `scontrol -o show job ARRAYJOBID` (one line per task; a pending range counts for each
/// of its indices only by ArrayTaskId as printed).
std::vector<SlurmTaskState> parse_scontrol_tasks(const std::string& text);

/// `"'it''s'"`-style quoting for a POSIX shell.
std::string shell_quote(const std::string& text);

/// Records the sweep, merges what earlier tasks left, seeds a shard per run not done and submits
/// them as one job array; the job id is appended to `<out>/<sweep>/slurm/jobs.txt`. With
/// settings.wait it waits for the array, merges every shard and marks the runs whose task failed
/// with their Slurm job id and log; without, the summary counts only what was done before.
SweepSummary run_sweep_slurm(SweepGrid grid, RunStore& store, const Registry& registry,
                             const SlurmLaunchOptions& options);

}  // namespace difflab
