// ddpm_x0: predict x0, then step to the mean of q(x_{t-1} | x_t, x0) (Ho et al. 2020, eq. 7).
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class DdpmX0Sampler final : public Sampler {
 public:
  explicit DdpmX0Sampler(const Options& o)
      : posterior_variance_(o.text("variance") == "posterior"), clip_x0_(o.real("clip_x0")) {}

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto& p = ctx.process;
    const std::int64_t T = p.timesteps();
    for (std::int64_t i = T - 1; i >= 0; --i) {
      const auto t = timestep_batch(x, i);
      auto x0 = denoise(ctx.model, p, x, t, ctx.cond).x0;
      if (clip_x0_ > 0) x0 = x0.clamp(-clip_x0_, clip_x0_);
      // Ho et al. 2020, eq. 7: mu~ = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0
      //                              + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t.
      const auto mean = p.posterior_mean(x0, x, t.to(torch::kLong));
      x = ancestral_step(ctx, mean, i, posterior_variance_);
      if (ctx.on_step) ctx.on_step(T - 1 - i, x);
    }
    return x;
  }

 private:
  bool posterior_variance_;
  double clip_x0_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_sampler(
      {"ddpm_x0", "1.0.0", "DDPM through the predicted x0 and the posterior mean (Ho et al. eq. 7)",
       {OptionSpec::text("variance", "posterior",
                         "reverse-step variance: posterior (sigma^2 = beta tilde_t) or beta "
                         "(sigma^2 = beta_t)",
                         {"beta", "posterior"}),
        OptionSpec::real("clip_x0", 0.0,
                         "when > 0, clamp the predicted x0 to [-clip_x0, clip_x0] (data units); "
                         "0 turns clipping off")
            .at_least(0)}},
      [](const Options& o) { return std::make_unique<DdpmX0Sampler>(o); });
}
