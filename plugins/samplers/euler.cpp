// euler: Euler's method on the probability-flow ODE in sigma (Karras et al. 2022, Alg. 1 without
// the Heun correction; k-diffusion's sample_euler).
#include <cmath>
#include <vector>

#include "difflab/plugin.hpp"
#include "noise_level.hpp"
#include "sampler_options.hpp"

namespace {
using namespace difflab;

using samplers::Level;
using samplers::level_at;

class EulerSampler final : public Sampler {
 public:
  explicit EulerSampler(const Options& o)
      : steps_(o.integer("steps")), spacing_(TimestepSpacing::from(o)) {}

  std::int64_t steps(std::int64_t) const override { return steps_; }

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto ts = spacing_.timesteps(ctx.process, steps_, "euler");
    for (std::size_t i = 0; i < ts.size(); ++i) {
      const auto d = denoise_at(ctx, x, ts[i]);
      const Level next = i + 1 < ts.size() ? level_at(ctx.process, ts[i + 1]) : Level{};
      // Karras et al. 2022, eq. 4 with s = 1: dx/dsigma = (x - D(x)) / sigma = eps, so the Euler
      // step from sigma is x0 + sigma_next eps in x / sqrt(abar); times sqrt(abar_next) it is
      // DDIM's eta = 0 update (Song et al. 2021, eq. 12), finite also from sigma = inf.
      x = next.sqrt_abar * d.x0 + next.sqrt_one_minus_abar * d.epsilon;
      if (ctx.on_step) ctx.on_step(static_cast<std::int64_t>(i), x);
    }
    return x;
  }

 private:
  std::int64_t steps_;
  TimestepSpacing spacing_;
};

std::vector<OptionSpec> euler_options() { return samplers::with_spacing({samplers::one_call_steps(20)}); }

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_sampler(
      {"euler", "1.0.0",
       "Euler's method on the probability-flow ODE in sigma, `steps` model calls (Karras et al. "
       "2022, Alg. 1 without the Heun step; equal to DDIM with eta = 0)",
       euler_options()},
      [](const Options& o) { return std::make_unique<EulerSampler>(o); });
}
