#pragma once
// Trains and evaluates grid points, recording everything in the RunStore.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <torch/torch.h>

#include "difflab/registry.hpp"
#include "run_store.hpp"
#include "sweep_grid.hpp"

namespace difflab {

/// auto -> cuda when available, else cpu; InputError for a CUDA device this build cannot use.
torch::Device resolve_device(const std::string& device);

/// A generator on `device` seeded with `seed` (CPU or CUDA); all randomness of a run uses these.
torch::Generator make_generator(torch::Device device, std::uint64_t seed);

/// A seed for one purpose of one run ("sampler:ddim", step 500), stable across versions.
std::uint64_t derive_seed(std::int64_t seed, const std::string& purpose, std::int64_t step = 0);

/// Creates the run's schedule, samplers, dataset and metrics once to catch what the sweep file's
/// types cannot: betas outside (0, 1), more sampler steps than timesteps. Throws InputError.
void validate_run(const Registry& registry, const RunConfig& run);

struct EngineOptions {
  std::filesystem::path out_dir = "runs";
};

class RunExecutor {
 public:
  RunExecutor(const Registry& registry, RunStore& store, EngineOptions options);

  /// Trains the run (resuming from its last checkpoint, or reusing the checkpoints of a done
  /// run with the same training config), then evaluates every checkpoint that has no metrics.
  /// Throws RunError when training or evaluation fails.
  void execute(const RunConfig& run, std::int64_t run_id);

 private:
  const Registry& registry_;
  RunStore& store_;
  EngineOptions options_;
};

struct SweepOptions {
  EngineOptions engine;
  bool retry_failed = false;
  std::optional<std::int64_t> only_index;  // `runner run --index I`
};

struct SweepSummary {
  int done = 0;     // finished now or before
  int skipped = 0;  // already done before this invocation
  int failed = 0;
};

/// Records the sweep and its runs, then executes every run that is not done. A changed sweep
/// file under an existing name is refused (InputError) when its grid differs.
SweepSummary run_sweep(const SweepGrid& grid, RunStore& store, const Registry& registry,
                       const SweepOptions& options);

/// Registers the sweep and its grid in the store (pending runs); returns the sweep id.
std::int64_t record_sweep(const SweepGrid& grid, RunStore& store, const Registry& registry);

}  // namespace difflab
