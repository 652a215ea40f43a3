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
  /// Number of reverse steps it takes on a process of T timesteps; more than T is refused by
  /// validation before a run starts.
  virtual std::int64_t steps(std::int64_t timesteps) const { return timesteps; }
};

/// Standard normal noise with the context's generator, shaped like `like`.
DIFFLAB_API torch::Tensor sampler_noise(const SamplingContext& ctx, const torch::Tensor& like);

/// The end of one ancestral step from timestep index `t`: mean + sigma_t z, with sigma_t^2 = beta_t
/// or, when `posterior_variance`, beta tilde_t (Ho et al. 2020, sec. 3.2); no noise at t = 0.
DIFFLAB_API torch::Tensor ancestral_step(const SamplingContext& ctx, const torch::Tensor& mean,
                                         std::int64_t t, bool posterior_variance);

/// A tensor [B] filled with the timestep index `t` as the model expects it (float).
DIFFLAB_API torch::Tensor timestep_batch(const torch::Tensor& x, std::int64_t t);

}  // namespace difflab
