#pragma once
// Batched grid training (`runner sweep --batch-grid`): grid points that share device, dataset,
// model and train config but differ in schedule and/or seed train together as one model with
// stacked weights [K, ...] and batched matrix products: the model plugin's BatchedDenoiser
// (difflab/denoiser.hpp), asked for through Denoiser::make_batched. Each member keeps its own
// schedule, generator (data order, timesteps, noise drawn exactly as it would draw them alone),
// Adam state, gradient clipping, losses and checkpoints; the checkpoints are written in the
// normal per-run format, so evaluation and resume of each run are those of a run trained alone.
#include <cstdint>
#include <string>

#include "loader/registry.hpp"
#include "engine/engine.hpp"
#include "store/run_store.hpp"
#include "config/sweep_grid.hpp"

namespace difflab {

/// Why a run cannot train in a batch ("" when it can): the training side (EMA, label dropout,
/// an optimizer other than Adam or AdamW), else the model's Denoiser::batching_obstacle() after
/// the plugin's name ("mlp with residual blocks has no batched form"). Makes the model to ask it
/// and leaves torch's global generator as it found it.
std::string batching_obstacle(const RunConfig& run, const Registry& registry);

/// What runs must share to train together: device, dataset, model and train sections.
std::string batch_key(const RunConfig& run);

/// Trains, batched, the runs of `grid` that have not started (pending, no checkpoints, no done
/// run with the same training to reuse) and can train together; groups of one are left alone.
/// Writes every member's losses and checkpoints; run_sweep then evaluates each run as usual. A
/// group that fails (a NaN loss, a throwing plugin) is logged and left to the separate path,
/// which resumes its members from their last checkpoints and records the failure as usual.
/// Returns how many runs were trained batched.
std::int64_t train_batched_groups(const SweepGrid& grid, RunStore& store, const Registry& registry,
                                  std::int64_t sweep_id, const SweepOptions& options);

}  // namespace difflab
