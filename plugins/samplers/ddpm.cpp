// ddpm: ancestral sampling (Ho et al. 2020, Algorithm 2), on every timestep or a respaced
// subsequence of them (Nichol & Dhariwal 2021, sec. 4).
#include "difflab/plugin.hpp"
#include "respaced.hpp"

namespace {
using namespace difflab;

class DdpmSampler final : public Sampler {
 public:
  explicit DdpmSampler(const Options& o)
      : steps_(o.integer("steps")),
        spacing_(TimestepSpacing::from(o)),
        posterior_variance_(o.text("variance") == "posterior"),
        clip_x0_(o.boolean("clip_x0")),
        clip_range_(o.real("clip_range")) {}

  std::int64_t steps(std::int64_t timesteps) const override { return steps_ > 0 ? steps_ : timesteps; }

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto ts = spacing_.timesteps(ctx.process, steps(ctx.process.timesteps()), "ddpm");
    for (std::size_t i = 0; i < ts.size(); ++i) {
      const auto d = denoise_at(ctx, x, ts[i]);
      const auto s = respaced::step(ctx.process, ts, i);
      torch::Tensor mean;
      if (clip_x0_ || s.alpha() == 0.0) {
        // Nichol & Dhariwal 2021 (improved-diffusion p_mean_variance): eq. 7's mean of the
        // (clipped) x0; also the form that stays finite from abar = 0 (zero terminal SNR).
        const auto x0 = clip_x0_ ? d.x0.clamp(-clip_range_, clip_range_) : d.x0;
        mean = respaced::posterior_mean(s, x0, x);
      } else {
        // Ho et al. 2020, Alg. 2: mu = (x_t - beta / sqrt(1 - abar) eps) / sqrt(alpha).
        mean = (x - (s.beta() / std::sqrt(1.0 - s.abar)) * d.epsilon) / std::sqrt(s.alpha());
      }
      x = respaced::add_noise(ctx, s, mean, posterior_variance_, i + 1 == ts.size());
      if (ctx.on_step) ctx.on_step(static_cast<std::int64_t>(i), x);
    }
    return x;
  }

 private:
  std::int64_t steps_;
  TimestepSpacing spacing_;
  bool posterior_variance_, clip_x0_;
  double clip_range_;
};

std::vector<OptionSpec> ddpm_options() {
  std::vector<OptionSpec> specs{respaced::steps_spec(), respaced::variance_spec("beta"), respaced::clip_spec(),
                                respaced::clip_range_spec()};
  return samplers::with_spacing(std::move(specs));
}

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_sampler(
      {"ddpm", "2.0.0", "Ancestral DDPM sampling, one model call per step (Ho et al. 2020, Alg. 2)",
       ddpm_options()},
      [](const Options& o) { return std::make_unique<DdpmSampler>(o); });
}
