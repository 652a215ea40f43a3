// midpoint: the explicit midpoint method (2nd-order Runge-Kutta) on the probability-flow ODE,
// with the midpoint taken in lambda = -log sigma (DPM-Solver-2, Lu et al. 2022, Alg. 1 with
// r1 = 1/2; k-diffusion's sample_dpm_2). An example of a plugin built outside the difflab tree:
// only difflab/plugin.hpp is needed.
#include <cmath>
#include <vector>

#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

// A noise level on the path; the defaults are the data (abar = 1, sigma = 0) where sampling ends.
struct Level {
  double t = 0.0;      // timestep given to the model (unused at the data)
  double sigma = 0.0;  // Karras sigma = sqrt((1 - abar) / abar); inf where abar = 0
  double sqrt_abar = 1.0;
  double sqrt_one_minus_abar = 0.0;
};

Level level_at(const DiffusionProcess& p, double t) {
  const double abar = p.alpha_bar_at(t);
  return {t, p.sigma_at(t), std::sqrt(abar), std::sqrt(1.0 - abar)};
}

// x_t = sqrt(abar) (x0 + sigma eps) at `level`: the Euler (DDIM) step's end, finite from sigma =
// inf.
torch::Tensor euler_to(const Level& level, const Denoised& d) {
  return level.sqrt_abar * d.x0 + level.sqrt_one_minus_abar * d.epsilon;
}

class MidpointSampler final : public Sampler {
 public:
  explicit MidpointSampler(const Options& o)
      : steps_(o.integer("steps")), spacing_(TimestepSpacing::from(o)) {}

  std::int64_t steps(std::int64_t) const override { return steps_; }
  // Two model calls per step, one on the final step to the data (Euler only).
  std::int64_t nfe(std::int64_t) const override { return 2 * steps_ - 1; }

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto& p = ctx.process;
    const auto ts = spacing_.timesteps(p, steps_, "midpoint");
    for (std::size_t i = 0; i < ts.size(); ++i) {
      const Level next = i + 1 < ts.size() ? level_at(p, ts[i + 1]) : Level{};
      x = step(ctx, x, level_at(p, ts[i]), next);
      if (ctx.on_step) ctx.on_step(static_cast<std::int64_t>(i), x);
    }
    return x;
  }

 private:
  // In x / sqrt(abar) = x0 + sigma eps the ODE is dx/dsigma = eps (Karras et al. 2022, eq. 4).
  // Its midpoint step, with the midpoint halfway in lambda, sigma_mid = sqrt(sigma sigma_next):
  //   x_mid = x0 + sigma_mid eps,  x_next = x + (sigma_next - sigma) eps(x_mid, sigma_mid),
  // exactly DPM-Solver-2's update. Halfway in sigma, (sigma + sigma_next) / 2 would stay near
  // sigma when sigma >> sigma_next (a cosine schedule's first steps), far from where eps changes.
  static torch::Tensor step(const SamplingContext& ctx, const torch::Tensor& x, const Level& cur,
                            const Level& next) {
    const auto d = denoise_at(ctx, x, cur.t);
    // The final step to sigma = 0 has no midpoint, and from sigma = inf x / sqrt(abar) is not
    // finite: both take the Euler step.
    if (next.sigma == 0.0 || std::isinf(cur.sigma)) return euler_to(next, d);
    const Level mid =
        level_at(ctx.process, ctx.process.t_from_sigma(std::sqrt(cur.sigma * next.sigma)));
    const auto d_mid = denoise_at(ctx, euler_to(mid, d), mid.t);
    return next.sqrt_abar * (x / cur.sqrt_abar + (next.sigma - cur.sigma) * d_mid.epsilon);
  }

  std::int64_t steps_;
  TimestepSpacing spacing_;
};

std::vector<OptionSpec> midpoint_options() {
  std::vector<OptionSpec> specs{
      steps_option(10,
                   "timesteps visited; 2 model calls each except the last, which steps to "
                   "the data with one")};
  const auto spacing = TimestepSpacing::options();
  specs.insert(specs.end(), spacing.begin(), spacing.end());
  return specs;
}

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_sampler(
      {"midpoint", "0.1.0",
       "Explicit midpoint method on the probability-flow ODE, midpoint in log sigma, 2 steps - 1 "
       "model calls (DPM-Solver-2, Lu et al. 2022)",
       midpoint_options()},
      [](const Options& o) { return std::make_unique<MidpointSampler>(o); });
}
