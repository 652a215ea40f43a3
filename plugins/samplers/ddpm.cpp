// ddpm: ancestral sampling, one model call per timestep (Ho et al. 2020, Algorithm 2).
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class DdpmSampler final : public Sampler {
 public:
  explicit DdpmSampler(const Options& o)
      : posterior_variance_(o.text("variance") == "posterior"),
        clip_x0_(o.boolean("clip_x0")),
        clip_range_(o.real("clip_range")) {}

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto& p = ctx.process;
    const std::int64_t T = p.timesteps();
    for (std::int64_t i = T - 1; i >= 0; --i) {
      const auto t = timestep_batch(x, i);
      const auto d = denoise(ctx.model, p, x, t, ctx.cond);
      torch::Tensor mean;
      if (clip_x0_) {
        // Nichol & Dhariwal 2021 (improved-diffusion p_mean_variance): eq. 7's mean of the clipped x0.
        mean = p.posterior_mean(d.x0.clamp(-clip_range_, clip_range_), x, t.to(torch::kLong));
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
  bool posterior_variance_, clip_x0_;
  double clip_range_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_sampler(
      {"ddpm", "1.1.0", "Ancestral DDPM sampling, T model calls (Ho et al. 2020, Alg. 2)",
       {OptionSpec::text("variance", "beta",
                         "reverse-step variance: beta (sigma^2 = beta_t, upper bound) or posterior "
                         "(sigma^2 = beta tilde_t, lower bound)",
                         {"beta", "posterior"}),
        OptionSpec::boolean("clip_x0", false,
                            "clamp the predicted x0 to [-clip_range, clip_range] at every step, as "
                            "improved-diffusion's clip_denoised does"),
        OptionSpec::real("clip_range", 1.0, "bound of the clamp (data units; the data lie in [-1, 1])")
            .greater_than(0)}},
      [](const Options& o) { return std::make_unique<DdpmSampler>(o); });
}
