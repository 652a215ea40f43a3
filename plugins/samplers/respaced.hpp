#pragma once
// Ancestral DDPM steps on a subsequence of the timesteps (Nichol & Dhariwal 2021, sec. 4 and
// improved-diffusion's respace.py): between two visited timesteps t > t' the step acts as one
// step of a process with beta = 1 - abar_t / abar_t'. Shared by the ddpm and ddpm_x0 plugins.
#include <cstdint>

#include "difflab/plugin.hpp"
#include "sampler_options.hpp"

namespace difflab::respaced {

struct Step {
  double abar, abar_prev;  // at t and at the next timestep visited (1 after the last)
  double alpha() const { return abar / abar_prev; }
  double beta() const { return 1.0 - alpha(); }
  /// beta tilde = beta (1 - abar_prev) / (1 - abar) (Ho et al. 2020, eq. 7).
  double posterior_variance() const { return beta() * (1.0 - abar_prev) / (1.0 - abar); }
};

/// The i-th step of `ts` (descending timesteps; the data after the last).
inline Step step(const DiffusionProcess& process, const std::vector<double>& ts, std::size_t i) {
  return {process.alpha_bar_at(ts[i]), i + 1 < ts.size() ? process.alpha_bar_at(ts[i + 1]) : 1.0};
}

/// Mean of q(x_t' | x_t, x0) (Ho et al. 2020, eq. 7 on the respaced process):
///   sqrt(abar_prev) beta / (1 - abar) x0 + sqrt(alpha) (1 - abar_prev) / (1 - abar) x_t.
inline torch::Tensor posterior_mean(const Step& s, const torch::Tensor& x0, const torch::Tensor& x_t) {
  return (std::sqrt(s.abar_prev) * s.beta() / (1.0 - s.abar)) * x0 +
         (std::sqrt(s.alpha()) * (1.0 - s.abar_prev) / (1.0 - s.abar)) * x_t;
}

/// mean + sigma z with sigma^2 = beta or beta tilde; no noise on the last step (to the data).
inline torch::Tensor add_noise(const SamplingContext& ctx, const Step& s, const torch::Tensor& mean,
                               bool posterior_variance, bool last) {
  if (last) return mean;
  const double variance = posterior_variance ? s.posterior_variance() : s.beta();
  return mean + std::sqrt(variance) * sampler_noise(ctx, mean);
}

/// The `steps` option of the DDPM samplers: 0 visits every timestep.
inline OptionSpec steps_spec() {
  return OptionSpec::integer("steps", 0, "reverse steps on a respaced subsequence (0: every timestep, T)")
      .at_least(0);
}

inline OptionSpec variance_spec(const std::string& default_variance) {
  return OptionSpec::text("variance", default_variance,
                          "reverse-step variance: beta (sigma^2 = beta_t, upper bound) or posterior "
                          "(sigma^2 = beta tilde_t, lower bound)",
                          {"beta", "posterior"});
}

inline OptionSpec clip_spec() {
  return OptionSpec::boolean("clip_x0", false,
                             "clamp the predicted x0 to [-clip_range, clip_range] at every step, as "
                             "improved-diffusion's clip_denoised does");
}

inline OptionSpec clip_range_spec() {
  return OptionSpec::real("clip_range", 1.0, "bound of the clamp (data units; the data lie in [-1, 1])")
      .greater_than(0);
}

}  // namespace difflab::respaced
