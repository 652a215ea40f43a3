#pragma once
// Batched grid training (`runner sweep --batch-grid`): grid points that share device, dataset,
// model and train config but differ in schedule and/or seed train together as one model with
// stacked weights [K, ...] and batched matrix products. Each member keeps its own schedule,
// generator (data order, timesteps, noise drawn exactly as it would draw them alone), Adam
// state, gradient clipping, losses and checkpoints; the checkpoints are written in the normal
// per-run format, so evaluation and resume of each run are those of a run trained alone.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "loader/registry.hpp"
#include "engine/engine.hpp"
#include "store/run_store.hpp"
#include "config/sweep_grid.hpp"

namespace difflab {

/// Why a run cannot train in a batch ("" when it can): the batched form exists for the plain
/// `mlp` (no residual blocks, no classes, epsilon prediction) without EMA or label dropout.
std::string batching_obstacle(const RunConfig& run);

/// What runs must share to train together: device, dataset, model and train sections.
std::string batch_key(const RunConfig& run);

/// K plain-MLP denoisers (plugins/models/mlp.cpp, residual = false) as one module whose
/// parameters are the members' parameters stacked along a new first dimension.
class BatchedMlp {
 public:
  /// Stacks copies of the members' parameters; throws RunError if they are not plain MLPs of
  /// one shape (parameter names input, time_in, time_out, block0.., output).
  BatchedMlp(const std::vector<Denoiser*>& members, std::int64_t time_embedding);

  /// x_t [K, B, D], t [K, B] (float timesteps) -> epsilon [K, B, D].
  torch::Tensor forward(const torch::Tensor& x_t, const torch::Tensor& t) const;

  const std::vector<torch::Tensor>& parameters() const { return stacked_; }
  std::int64_t size() const { return members_; }
  /// Copies member k's slice of the stacked parameters into `member` (same names as at construction).
  void unstack_into(std::int64_t k, Denoiser& member) const;
  const std::vector<std::string>& names() const { return names_; }

 private:
  const torch::Tensor& param(const std::string& name) const;
  std::int64_t members_, time_embedding_, layers_;
  std::vector<std::string> names_;
  std::vector<torch::Tensor> stacked_;  // [K, ...] leaves, in names_ order
};

/// Trains, batched, the runs of `grid` that have not started (pending, no checkpoints, no done
/// run with the same training to reuse) and can train together; groups of one are left alone.
/// Writes every member's losses and checkpoints; run_sweep then evaluates each run as usual. A
/// group that fails (a NaN loss, a throwing plugin) is logged and left to the separate path,
/// which resumes its members from their last checkpoints and records the failure as usual.
/// Returns how many runs were trained batched.
std::int64_t train_batched_groups(const SweepGrid& grid, RunStore& store, const Registry& registry,
                                  std::int64_t sweep_id, const SweepOptions& options);

}  // namespace difflab
