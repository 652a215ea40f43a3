// ddpm_x0: predict x0, then step to the mean of q(x_{t-1} | x_t, x0) (Ho et al. 2020, eq. 7).
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class DdpmX0Sampler final : public Sampler {
 public:
  explicit DdpmX0Sampler(const Options& o)
      : posterior_variance_(o.text("variance") == "posterior"),
        clip_x0_(o.boolean("clip_x0")),
        clip_range_(o.real("clip_range")) {}

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto& p = ctx.process;
    const std::int64_t T = p.timesteps();
    for (std::int64_t i = T - 1; i >= 0; --i) {
      const auto t = timestep_batch(x, i);
      auto x0 = denoise(ctx.model, p, x, t, ctx.cond).x0;
      if (clip_x0_) x0 = x0.clamp(-clip_range_, clip_range_);  // improved-diffusion's clip_denoised
      // Ho et al. 2020, eq. 7: mu~ = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0
      //                              + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t.
      const auto mean = p.posterior_mean(x0, x, t.to(torch::kLong));
      x = ancestral_step(ctx, mean, i, posterior_variance_);
      if (ctx.on_step) ctx.on_step(T - 1 - i, x);
    }
    return x;
  }

 private:
  bool posterior_variance_, clip_x0_;
  double clip_range_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_sampler(
      {"ddpm_x0", "1.1.0", "DDPM through the predicted x0 and the posterior mean (Ho et al. eq. 7)",
       {OptionSpec::text("variance", "posterior",
                         "reverse-step variance: posterior (sigma^2 = beta tilde_t) or beta "
                         "(sigma^2 = beta_t)",
                         {"beta", "posterior"}),
        OptionSpec::boolean("clip_x0", false,
                            "clamp the predicted x0 to [-clip_range, clip_range] at every step, as "
                            "improved-diffusion's clip_denoised does"),
        OptionSpec::real("clip_range", 1.0, "bound of the clamp (data units; the data lie in [-1, 1])")
            .greater_than(0)}},
      [](const Options& o) { return std::make_unique<DdpmX0Sampler>(o); });
}
