#pragma once
// A sampler: turns noise x_T into samples with a trained denoiser.
#include "difflab/export.hpp"
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "difflab/diffusion.hpp"
#include "difflab/options.hpp"

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
  /// validation before a run starts. on_step is called once per step.
  virtual std::int64_t steps(std::int64_t timesteps) const { return timesteps; }
  /// Number of function evaluations: calls of denoise() per sample (a guided call, which runs
  /// the network twice, counts once), what quality is compared against. Default: steps(T).
  virtual std::int64_t nfe(std::int64_t timesteps) const { return steps(timesteps); }
};

/// Where a sampler's steps fall, one option shared by every sampler (`spacing:`):
///   leading      t_i = i floor(T / S), i = 0..S-1 (DDIM paper, diffusers "leading")
///   trailing     t_i = round(T - i T / S) - 1: starts at T-1 (Lin et al. 2024, table 2)
///   linspace     S points from T-1 to 0, rounded (diffusers "linspace")
///   karras       sigma_i = (sigma_max^(1/rho) + i/(S-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho
///                (Karras et al. 2022, eq. 5), as fractional timesteps
///   exponential  log sigma evenly spaced from sigma_max to sigma_min
/// sigma_min / sigma_max of 0: the schedule's own (sigma at 0 and T-1, or the last finite one);
/// a larger sigma_max is clamped. The ramp's first point is always T-1, where x_T lies (a
/// sigma_max below sigma there shapes the rest of the ramp). After its last timestep every
/// sampler steps to the data (abar = 1, sigma = 0).
enum class Spacing { leading, trailing, linspace, karras, exponential };

struct DIFFLAB_API TimestepSpacing {
  Spacing spacing = Spacing::trailing;
  double rho = 7.0;
  double sigma_min = 0.0;  // 0: the schedule's
  double sigma_max = 0.0;  // 0: the schedule's

  /// The options `spacing`, `rho`, `sigma_min`, `sigma_max`, for a sampler's option list.
  static std::vector<OptionSpec> options();
  static TimestepSpacing from(const Options& options);
  /// `steps` timesteps in [0, T-1], in the order visited (descending). InputError naming
  /// `sampler` when steps exceeds T or a sigma bound lies outside the schedule's range.
  std::vector<double> timesteps(const DiffusionProcess& process, std::int64_t steps,
                                const std::string& sampler) const;
};

/// The `steps` option of a sampler (model calls or reverse steps, at least 1).
DIFFLAB_API OptionSpec steps_option(std::int64_t default_steps, const std::string& help);

/// denoise() for the whole batch at one timestep t (fractional allowed).
DIFFLAB_API Denoised denoise_at(const SamplingContext& ctx, const torch::Tensor& x, double t);

/// Standard normal noise with the context's generator, shaped like `like`.
DIFFLAB_API torch::Tensor sampler_noise(const SamplingContext& ctx, const torch::Tensor& like);

/// A tensor [B] filled with the timestep `t` as the model expects it (float; fractional allowed).
DIFFLAB_API torch::Tensor timestep_batch(const torch::Tensor& x, double t);

}  // namespace difflab
