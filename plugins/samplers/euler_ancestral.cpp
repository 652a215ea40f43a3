// euler_ancestral: an Euler step in sigma down to sigma_down, then fresh noise up to sigma_next
// (k-diffusion's sample_euler_ancestral and get_ancestral_step).
#include <algorithm>
#include <cmath>
#include <vector>

#include "difflab/plugin.hpp"
#include "noise_level.hpp"
#include "sampler_options.hpp"

namespace {
using namespace difflab;

using samplers::Level;
using samplers::level_at;

// The split of sigma_next into a deterministic and a fresh-noise part,
// sigma_down^2 + sigma_up^2 = sigma_next^2.
struct AncestralSplit {
  double down;
  double up;
};

// k-diffusion get_ancestral_step: sigma_up = min(sigma_next, eta sqrt(sigma_next^2 (sigma^2 -
// sigma_next^2) / sigma^2)) (eta = 1 is DDPM's posterior variance, Song et al. 2021, eq. 16),
// written as sigma_next sqrt(1 - (sigma_next / sigma)^2) so that sigma = inf gives its limit,
// eta sigma_next.
AncestralSplit ancestral_split(double sigma, double sigma_next, double eta) {
  const double ratio = sigma_next / sigma;
  const double up = std::min(sigma_next, eta * sigma_next * std::sqrt(1.0 - ratio * ratio));
  return {std::sqrt(sigma_next * sigma_next - up * up), up};
}

class EulerAncestralSampler final : public Sampler {
 public:
  explicit EulerAncestralSampler(const Options& o)
      : steps_(o.integer("steps")),
        eta_(o.real("eta")),
        s_noise_(o.real("s_noise")),
        spacing_(TimestepSpacing::from(o)) {}

  std::int64_t steps(std::int64_t) const override { return steps_; }

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto& p = ctx.process;
    const auto ts = spacing_.timesteps(p, steps_, "euler_ancestral");
    for (std::size_t i = 0; i < ts.size(); ++i) {
      const auto d = denoise_at(ctx, x, ts[i]);
      const Level next = i + 1 < ts.size() ? level_at(p, ts[i + 1]) : Level{};
      const auto split = ancestral_split(p.sigma_at(ts[i]), next.sigma, eta_);
      // Euler to sigma_down in x / sqrt(abar) (Karras et al. 2022, eq. 4: dx/dsigma = eps),
      // written from x0 and eps so that a step from sigma = inf stays finite.
      auto x_ve = d.x0 + split.down * d.epsilon;
      // sigma_up is 0 on the final step to the data and when eta = 0: no noise is drawn then.
      if (split.up > 0) x_ve = x_ve + s_noise_ * split.up * sampler_noise(ctx, x_ve);
      x = next.sqrt_abar * x_ve;  // x_t scaling: sqrt(abar_next) = 1 / sqrt(1 + sigma_next^2)
      if (ctx.on_step) ctx.on_step(static_cast<std::int64_t>(i), x);
    }
    return x;
  }

 private:
  std::int64_t steps_;
  double eta_;
  double s_noise_;
  TimestepSpacing spacing_;
};

std::vector<OptionSpec> euler_ancestral_options() {
  return samplers::with_spacing({
      samplers::one_call_steps(20),
      OptionSpec::real("eta", 1.0,
                       "scale of sigma_up, each step's fresh noise (capped at sigma_next): 0 is "
                       "the euler sampler, 1 DDPM's posterior variance")
          .at_least(0),
      OptionSpec::real("s_noise", 1.0,
                       "scale of the fresh noise (Karras et al. 2022's S_noise; 1 is exact)")
          .at_least(0)});
}

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_sampler(
      {"euler_ancestral", "1.0.0",
       "Euler steps in sigma with fresh noise after each, `steps` model calls (k-diffusion's "
       "sample_euler_ancestral)",
       euler_ancestral_options()},
      [](const Options& o) { return std::make_unique<EulerAncestralSampler>(o); });
}
