#pragma once
// A sampler: turns noise x_T into samples with a trained denoiser.
#include "difflab/export.hpp"
#include <functional>

#include <torch/torch.h>

#include "difflab/diffusion.hpp"

namespace difflab {

/// Called after each reverse step with the step number (0-based) and the current x.
using StepCallback = std::function<void(std::int64_t step, const torch::Tensor& x)>;

struct SamplingContext {
  Denoiser& model;
  const DiffusionProcess& process;
  torch::Generator generator;  // all randomness comes from here (repeatable runs)
  Conditioning cond;
  StepCallback on_step;  // may be empty
};

class DIFFLAB_API Sampler {
 public:
  virtual ~Sampler() = default;
  /// Runs the reverse process from `x_T` (standard normal noise) and returns x_0. Called
  /// under torch::NoGradGuard with the model in eval mode.
  virtual torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x_T) const = 0;
  /// Number of model evaluations for a process of T steps (for reporting and validation).
  virtual std::int64_t steps(std::int64_t timesteps) const { return timesteps; }
};

/// Standard normal noise with the context's generator, shaped like `like`.
DIFFLAB_API torch::Tensor sampler_noise(const SamplingContext& ctx, const torch::Tensor& like);

/// A tensor [B] filled with the timestep index `t` as the model expects it (float).
DIFFLAB_API torch::Tensor timestep_batch(const torch::Tensor& x, std::int64_t t);

}  // namespace difflab
