// heun: Karras et al. 2022's stochastic sampler, Algorithm 2: Heun's method on the probability-flow
// ODE in sigma, with optional "churn" noise raising sigma before each step (k-diffusion's
// sample_heun).
#include <algorithm>
#include <cmath>
#include <vector>

#include "difflab/plugin.hpp"
#include "noise_level.hpp"

namespace {
using namespace difflab;

using samplers::Level;
using samplers::level_at;

// The highest noise level the model can be asked at with a finite sigma: on a zero terminal SNR
// schedule abar is 0 in the whole last interval (diffusion.hpp), so it is sigma at T-2.
double largest_finite_sigma(const DiffusionProcess& p) {
  const std::int64_t last = p.timesteps() - 1;
  return p.sigma_at(p.zero_terminal_snr() ? std::max<std::int64_t>(last - 1, 0) : last);
}

// x (in x_t scaling) at its noise level, before a step.
struct State {
  torch::Tensor x;
  Level level;
};

class HeunSampler final : public Sampler {
 public:
  explicit HeunSampler(const Options& o)
      : steps_(o.integer("steps")),
        s_churn_(o.real("S_churn")),
        s_tmin_(o.real("S_tmin")),
        s_tmax_(o.real("S_tmax")),
        s_noise_(o.real("S_noise")),
        spacing_(TimestepSpacing::from(o)) {}

  std::int64_t steps(std::int64_t) const override { return steps_; }
  // Two model calls per step, one on the final step to the data (Euler only).
  std::int64_t nfe(std::int64_t) const override { return 2 * steps_ - 1; }

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto& p = ctx.process;
    const auto ts = spacing_.timesteps(p, steps_, "heun");
    for (std::size_t i = 0; i < ts.size(); ++i) {
      const State hat = churn(ctx, {x, level_at(p, ts[i])});
      const Level next = i + 1 < ts.size() ? level_at(p, ts[i + 1]) : Level{};
      x = heun_step(ctx, hat, next);
      if (ctx.on_step) ctx.on_step(static_cast<std::int64_t>(i), x);
    }
    return x;
  }

 private:
  // Alg. 2, line 4: gamma_i = min(S_churn / N, sqrt(2) - 1) for sigma_i in [S_tmin, S_tmax], else
  // 0. Never at sigma = inf, where x is pure noise already.
  double gamma(double sigma) const {
    const bool churned = std::isfinite(sigma) && s_tmin_ <= sigma && sigma <= s_tmax_;
    return churned ? std::min(s_churn_ / static_cast<double>(steps_), std::sqrt(2.0) - 1.0) : 0.0;
  }

  // Alg. 2, lines 5-6: sigma_hat = (1 + gamma_i) sigma_i and, in x / sqrt(abar),
  // x_hat = x + sqrt(sigma_hat^2 - sigma_i^2) S_noise z. sigma_hat is clamped to the schedule's
  // largest finite sigma and rounded to the level at t_from_sigma(sigma_hat), so that x_hat has
  // exactly the noise level of the timestep the model is given.
  State churn(const SamplingContext& ctx, const State& s) const {
    const auto& p = ctx.process;
    const double wanted =
        std::min(s.level.sigma * (1.0 + gamma(s.level.sigma)), largest_finite_sigma(p));
    if (!(wanted > s.level.sigma)) return s;
    const Level hat = level_at(p, p.t_from_sigma(wanted));
    const double added =
        std::sqrt(std::max(0.0, hat.sigma * hat.sigma - s.level.sigma * s.level.sigma));
    const auto x_ve = s.x / s.level.sqrt_abar + s_noise_ * added * sampler_noise(ctx, s.x);
    return {hat.sqrt_abar * x_ve, hat};
  }

  // Alg. 2, lines 7-11, with dx/dsigma = (x - D(x)) / sigma = eps (eq. 4 with s = 1), written
  // from x0 and eps so that nothing infinite is multiplied by 0.
  torch::Tensor heun_step(const SamplingContext& ctx, const State& hat, const Level& next) const {
    const auto d = denoise_at(ctx, hat.x, hat.level.t);
    // Line 8, the Euler step: x_next = x_hat + (sigma_next - sigma_hat) eps = x0 + sigma_next eps.
    auto x = next.sqrt_abar * d.x0 + next.sqrt_one_minus_abar * d.epsilon;
    // Lines 9-11, the trapezoidal rule x_next = x_hat + (sigma_next - sigma_hat)(eps + eps') / 2,
    // i.e. the Euler point plus half_step (eps' - eps). Skipped on the final step to sigma = 0
    // (as in Alg. 2) and from sigma_hat = inf, where the step is infinitely long.
    if (next.sigma > 0 && std::isfinite(hat.level.sigma)) {
      const auto d_next = denoise_at(ctx, x, next.t);
      const double half_step = 0.5 * (next.sigma - hat.level.sigma);
      x = x + next.sqrt_abar * half_step * (d_next.epsilon - d.epsilon);
    }
    return x;
  }

  std::int64_t steps_;
  double s_churn_, s_tmin_, s_tmax_, s_noise_;
  TimestepSpacing spacing_;
};

std::vector<OptionSpec> heun_options() {
  std::vector<OptionSpec> specs{
      steps_option(18,
                   "timesteps visited; 2 model calls each except the last, which steps to "
                   "the data with one"),
      OptionSpec::real("S_churn", 0.0,
                       "total churn: each step raises sigma by the factor 1 + min(S_churn / steps, "
                       "sqrt(2) - 1) with fresh noise; 0 is the deterministic ODE sampler")
          .at_least(0),
      OptionSpec::real("S_tmin", 0.0, "churn only where sigma >= S_tmin (sigma units)").at_least(0),
      OptionSpec::real("S_tmax", 1e30,
                       "churn only where sigma <= S_tmax (sigma units; 1e30 stands for infinity)")
          .at_least(0),
      OptionSpec::real("S_noise", 1.0, "scale of the churn noise (1 is exact)").at_least(0)};
  // Karras et al. 2022's own defaults: their spacing (eq. 5) from sigma_max = 80 (table 1). The
  // trapezoid in sigma needs steps that shrink with sigma: on trailing timesteps, or a ramp from
  // the cosine schedule's sigma of 2e4, too few steps fall where sigma is near the data's scale
  // and a Gaussian's samples come out 3 to 4 times too wide at 10 steps. The first step still
  // starts at T-1 (the ramp's first point moves up there: TimestepSpacing).
  for (auto spec : TimestepSpacing::options()) {
    if (spec.name == "spacing") {
      spec.default_value = OptionValue(std::string("karras"));
      spec.help += "; heun's default is karras, as Karras et al. 2022 pair Alg. 2 with eq. 5";
    } else if (spec.name == "sigma_max") {
      spec.default_value = OptionValue(80.0);
      spec.help = "largest sigma of the karras/exponential ramp; heun's default 80 is Karras et al. "
                  "2022's (table 1), clamped to the schedule's";
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_sampler(
      {"heun", "1.0.0",
       "Heun's method on the probability-flow ODE in sigma with optional churn, 2 steps - 1 model "
       "calls (Karras et al. 2022, Alg. 2)",
       heun_options()},
      [](const Options& o) { return std::make_unique<HeunSampler>(o); });
}
