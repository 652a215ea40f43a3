#pragma once
// Folding one store into another: how task databases (shards) end up in the sweep's database.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "store/run_store.hpp"

namespace difflab {

struct MergeFilter {
  std::optional<std::string> sweep;  // only this sweep (all when unset)
  /// Only these runs' results (checkpoints, losses, metrics, artifacts) and states; the other runs
  /// of the sweep are registered as pending. Unset: every run's.
  std::optional<std::vector<std::string>> config_hashes;
};

struct MergeSummary {
  int sweeps = 0;    // sweeps seen in the source
  int runs = 0;      // runs whose results were folded in
  int finished = 0;  // of those, runs that became done or failed in the target by this merge
  int kept = 0;      // runs left as they were: done in the target but not in the source
};

/// Merges `from` into `into`, idempotently: sweeps by name, runs by (sweep, config_hash),
/// checkpoints by (run, step), losses by (run, step), metrics by (checkpoint, sampler, metric,
/// variant), artifacts by (checkpoint, sampler, kind); merging again adds nothing twice. A run
/// done in `from` replaces a pending, running or failed one; a done run is never downgraded and
/// keeps its results; a failed one replaces a pending or running one. Each run is one transaction.
MergeSummary merge_store(const RunStore& from, RunStore& into, const MergeFilter& filter = {});

/// The stores named by `paths`: files as given, folders searched recursively for `*.sqlite`
/// (sorted). InputError for a path that does not exist.
std::vector<std::filesystem::path> find_shards(const std::vector<std::string>& paths);

/// Merges every store under `paths` into `into`; InputError names a file that is not a store.
MergeSummary merge_shards(const std::vector<std::filesystem::path>& shards, RunStore& into);

}  // namespace difflab
