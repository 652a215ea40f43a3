// ddpm: ancestral sampling, one model call per timestep (Ho et al. 2020, Algorithm 2).
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class DdpmSampler final : public Sampler {
 public:
  explicit DdpmSampler(const Options& o)
      : posterior_variance_(o.text("variance") == "posterior"), clip_x0_(o.real("clip_x0")) {}

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto& p = ctx.process;
    const std::int64_t T = p.timesteps();
    for (std::int64_t i = T - 1; i >= 0; --i) {
      const auto t = timestep_batch(x, i);
      const auto d = denoise(ctx.model, p, x, t, ctx.cond);
      torch::Tensor mean;
      if (clip_x0_ > 0) {
        // Same mean as below for an unclipped x0; clamping x0 first keeps samples in range.
        mean = p.posterior_mean(d.x0.clamp(-clip_x0_, clip_x0_), x, t.to(torch::kLong));
      } else {
        // Ho et al. 2020, Alg. 2: mu = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t).
        const auto eps_scale = p.betas()[i] / p.sqrt_one_minus_alpha_bars()[i];
        mean = (x - eps_scale * d.epsilon) / p.alphas()[i].sqrt();
      }
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
      {"ddpm", "1.0.0", "Ancestral DDPM sampling, T model calls (Ho et al. 2020, Alg. 2)",
       {OptionSpec::text("variance", "beta",
                         "reverse-step variance: beta (sigma^2 = beta_t, upper bound) or posterior "
                         "(sigma^2 = beta tilde_t, lower bound)",
                         {"beta", "posterior"}),
        OptionSpec::real("clip_x0", 0.0,
                         "when > 0, clamp the predicted x0 to [-clip_x0, clip_x0] (data units) "
                         "and step to the posterior mean of that x0; 0 turns clipping off")
            .at_least(0)}},
      [](const Options& o) { return std::make_unique<DdpmSampler>(o); });
}
