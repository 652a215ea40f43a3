// ddpm_x0: predict x0, then step to the mean of q(x_{t-1} | x_t, x0) (Ho et al. 2020, eq. 7), on
// every timestep or a respaced subsequence of them (Nichol & Dhariwal 2021, sec. 4).
#include "difflab/plugin.hpp"
#include "respaced.hpp"

namespace {
using namespace difflab;

class DdpmX0Sampler final : public Sampler {
 public:
  explicit DdpmX0Sampler(const Options& o)
      : steps_(o.integer("steps")),
        spacing_(TimestepSpacing::from(o)),
        posterior_variance_(o.text("variance") == "posterior"),
        clip_x0_(o.boolean("clip_x0")),
        clip_range_(o.real("clip_range")) {}

  std::int64_t steps(std::int64_t timesteps) const override { return steps_ > 0 ? steps_ : timesteps; }

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto ts = spacing_.timesteps(ctx.process, steps(ctx.process.timesteps()), "ddpm_x0");
    for (std::size_t i = 0; i < ts.size(); ++i) {
      auto x0 = denoise_at(ctx, x, ts[i]).x0;
      if (clip_x0_) x0 = x0.clamp(-clip_range_, clip_range_);  // improved-diffusion's clip_denoised
      const auto s = respaced::step(ctx.process, ts, i);
      x = respaced::add_noise(ctx, s, respaced::posterior_mean(s, x0, x), posterior_variance_,
                              i + 1 == ts.size());
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

std::vector<OptionSpec> ddpm_x0_options() {
  std::vector<OptionSpec> specs{respaced::steps_spec(), respaced::variance_spec("posterior"),
                                respaced::clip_spec(), respaced::clip_range_spec()};
  return samplers::with_spacing(std::move(specs));
}

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_sampler(
      {"ddpm_x0", "2.0.0", "DDPM through the predicted x0 and the posterior mean (Ho et al. eq. 7)",
       ddpm_x0_options()},
      [](const Options& o) { return std::make_unique<DdpmX0Sampler>(o); });
}
