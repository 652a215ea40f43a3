#pragma once
// Bookkeeping shared by the multistep exponential integrators (dpmpp_2m, dpmpp_2m_sde,
// dpmpp_3m_sde, unipc): noise levels in DPM-Solver's notation and the last x0 predictions.
#include <cmath>
#include <cstddef>
#include <deque>
#include <limits>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "difflab/diffusion.hpp"
#include "difflab/options.hpp"
#include "difflab/sampler.hpp"
#include "sampler_options.hpp"

namespace difflab::multistep {

using samplers::one_call_steps;
using samplers::with_spacing;

/// A noise level as Lu et al. 2022 write it: x = alpha x0 + sigma eps, lambda = log(alpha / sigma).
struct Level {
  double alpha;   // sqrt(abar)
  double sigma;   // sqrt(1 - abar)
  double lambda;  // -inf at a zero terminal SNR, +inf at the data
};

inline Level level_at(const DiffusionProcess& p, double t) {
  const double abar = p.alpha_bar_at(t);
  return {std::sqrt(abar), std::sqrt(1.0 - abar), p.lambda_at(t)};
}

/// One model call's x0 prediction and the lambda it was made at.
struct Evaluation {
  double lambda;
  torch::Tensor x0;
};

/// The newest `capacity` evaluations, newest first. One made at lambda = -inf (a zero terminal
/// SNR) is forgotten once a newer one arrives: the step after it has h_prev = inf, r = h_prev / h
/// = inf, and every difference over it vanishes, so that step is first order by construction
/// rather than through inf / inf.
class History {
 public:
  explicit History(std::size_t capacity) : capacity_(capacity) {}

  void push(double lambda, torch::Tensor x0) {
    if (!entries_.empty() && std::isinf(entries_.front().lambda)) entries_.clear();
    entries_.push_front({lambda, std::move(x0)});
    if (entries_.size() > capacity_) entries_.pop_back();
  }

  std::size_t size() const { return entries_.size(); }
  const Evaluation& operator[](std::size_t i) const { return entries_[i]; }  // 0: the newest
  /// The step that ended at evaluation i: lambda_i - lambda_{i+1}, finite.
  double h(std::size_t i) const { return entries_[i].lambda - entries_[i + 1].lambda; }

 private:
  std::size_t capacity_;
  std::deque<Evaluation> entries_;
};

/// The loop of the DPM-Solver++ samplers: at each timestep of `ts` one model call, its x0 into
/// `history`, then `step(x, from, to, history)` to the next timestep; the step to the data is x =
/// x0 of the last call (first order, no noise, as diffusers' and k-diffusion's final step).
template <class Step>
torch::Tensor solve(const SamplingContext& ctx, torch::Tensor x, const std::vector<double>& ts,
                    History history, Step&& step) {
  for (std::size_t i = 0; i < ts.size(); ++i) {
    const auto d = denoise_at(ctx, x, ts[i]);
    const Level from = level_at(ctx.process, ts[i]);
    history.push(from.lambda, d.x0);
    x = i + 1 < ts.size() ? step(x, from, level_at(ctx.process, ts[i + 1]), history) : d.x0;
    if (ctx.on_step) ctx.on_step(static_cast<std::int64_t>(i), x);
  }
  return x;
}

/// Fresh noise of the SDE solvers over a step of length h (k-diffusion's sample_dpmpp_2m_sde and
/// _3m_sde): sigma_t sqrt(1 - e^{-2 eta h}) s_noise z, z from the sampler's own stream.
inline torch::Tensor sde_noise(const SamplingContext& ctx, const Level& to, double eta_h, double s_noise,
                               const torch::Tensor& like) {
  return (to.sigma * std::sqrt(-std::expm1(-2.0 * eta_h)) * s_noise) * sampler_noise(ctx, like);
}

}  // namespace difflab::multistep
