#pragma once
// The engine layer: trains and evaluates grid points, recording everything in the RunStore.
// It owns a run's life (run_context: its objects; trainer with a training_task: the loop and what
// it trains; evaluator: metrics, samples, pictures; run_executor: resume, reuse, evaluation of
// what is pending), validation that needs plugin objects (validate), the sweep's record and grid
// changes (sweep_record), the sweep loop with claims (sweep_runner) and batched grid training.
// It may use every layer below it (accel, training, report, store, config, io, progress,
// loader, api); only launch/ and the runner's commands sit above it.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <torch/torch.h>

#include "loader/registry.hpp"
#include "io/atomic_file.hpp"
#include "progress/progress.hpp"
#include "store/run_store.hpp"
#include "config/sweep_grid.hpp"

namespace difflab {

/// auto -> cuda when available, else cpu; InputError for a CUDA device this build cannot use.
torch::Device resolve_device(const std::string& device);

/// A generator on `device` seeded with `seed` (CPU or CUDA); all randomness of a run uses these.
torch::Generator make_generator(torch::Device device, std::uint64_t seed);

/// A seed for one purpose of one run ("sampler:ddim", step 500), stable across versions.
std::uint64_t derive_seed(std::int64_t seed, const std::string& purpose, std::int64_t step = 0);

/// Where a run writes its samples and pictures: `<out>/<sweep>/evaluations/<config_hash>`, its
/// own however many runs share its checkpoints in `<out>/<sweep>/<train_hash>`.
std::filesystem::path evaluation_dir(const std::filesystem::path& out_dir, const RunConfig& run);

/// Creates the run's schedule, samplers, dataset and metrics once to catch what the sweep file's
/// types cannot: betas outside (0, 1), more sampler steps than timesteps. Throws InputError.
void validate_run(const Registry& registry, const RunConfig& run);

struct EngineOptions {
  std::filesystem::path out_dir = "runs";
  ProgressSink* progress = nullptr;  // live progress of runs and the sweep; null: none
};

/// The autoencoder checkpoint whose latents a latent diffusion run diffuses: the last checkpoint
/// of a done run with the run's autoencoder_hash.
struct LatentSource {
  std::string checkpoint;  // its file
  std::int64_t step = 0;
  std::int64_t run_id = 0;  // the autoencoder run that wrote it
};

/// The checkpoint a latent diffusion run encodes its data with: the last one of a done run that
/// trained its autoencoder (same train_hash, any sweep); nothing while none is done.
std::optional<LatentSource> latent_source(const RunStore& store, const RunConfig& run);

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

/// What to do when a sweep file's grid differs from the one recorded under the same name.
enum class GridChange {
  refuse,     // InputError showing the difference (the default)
  extend,     // add the new grid points to the recorded sweep; recorded ones stay
  new_sweep,  // record the file as a new sweep, NAME-2 (or the next free suffix)
};

struct SweepOptions {
  EngineOptions engine;
  GridChange grid_change = GridChange::refuse;
  bool retry_failed = false;
  /// `runner run --index I [--index J ...]`: only these grid points, in this order (a Slurm task
  /// runs the points of one training this way, so that the first trains and the rest reuse).
  std::vector<std::int64_t> only_indices;
  /// Runs on this device instead of the file's (`runner run --device`, given by a parallel
  /// sweep); the run's identity (config hash, checkpoint folder) stays the file's.
  std::optional<std::string> device;
  bool batch_grid = false;  // train compatible grid points as one batched model (batched_training.hpp)
};

struct SweepSummary {
  int done = 0;     // finished now or before
  int skipped = 0;  // already done before this invocation
  int failed = 0;
  int input_failed = 0;  // of those failed, how many because of their input (a missing data file)
  std::string name;      // the sweep's name in the store (differs from the file's with new_sweep)
  int interrupted = 0;   // the signal (SIGINT, SIGTERM) that stopped a parallel sweep, or 0
};

/// Records the sweep and its runs, then executes every run that is not done. A run that fails
/// (NaN loss, a plugin that throws, out of memory, a missing data file) is marked failed with its
/// reason and the sweep goes on.
SweepSummary run_sweep(SweepGrid grid, RunStore& store, const Registry& registry,
                       const SweepOptions& options);

/// The betas a run's schedule section gives: the plugin's, rescaled to a zero terminal SNR when
/// the section says rescale_zero_terminal_snr (float64, CPU).
torch::Tensor schedule_betas(const Registry& registry, const PluginConfig& schedule);

/// The schedule's alpha bar at t = T: what fraction of the data's variance survives into x_T.
double terminal_alpha_bar(const Registry& registry, const PluginConfig& schedule);

/// Says why a claim was refused (done before, run by a live process, failed before) in the log,
/// the progress display and the summary; `claimed` and `training_elsewhere` are the caller's.
void note_refused_claim(const ClaimResult& claim, const RunConfig& run, SweepSummary& summary,
                        ProgressSink* progress);

/// Marks `run` failed because its autoencoder run (`autoencoder`, as recorded) failed, with that
/// run's reason, in the store, the log, the progress display and the summary.
void fail_with_autoencoder(const RunConfig& run, const RunRecord& autoencoder, RunStore& store, std::int64_t sweep_id,
                           SweepSummary& summary, ProgressSink* progress);

/// Registers the sweep and its grid in the store (pending runs) and returns the sweep id. A grid
/// that differs from the one recorded under the same name is handled as `change` says; with
/// new_sweep, `grid` is renamed. Unless with new_sweep, a recorded run that the file trains
/// longer (train.epochs or train.steps raised, nothing else changed) is continued first: it takes
/// the longer config and is pending again, so its training goes on from its last checkpoint
/// (see find_continuations); InputError when its learning rate decays over the whole length.
std::int64_t record_sweep(SweepGrid& grid, RunStore& store, const Registry& registry,
                          GridChange change = GridChange::refuse);

/// "2 recorded runs not in the file, 1 new; train.lr: 0.001 -> 0.002; schedule.plugin: added
/// sigmoid, removed quadratic": how `grid` differs from the runs recorded for its sweep.
std::string describe_grid_change(const std::vector<RunRecord>& recorded, const SweepGrid& grid);

}  // namespace difflab
