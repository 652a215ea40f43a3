// ddim: denoising diffusion implicit models on a subsequence of the timesteps (Song et al. 2021).
#include <algorithm>
#include <vector>

#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class DdimSampler final : public Sampler {
 public:
  explicit DdimSampler(const Options& o)
      : steps_(o.integer("steps")),
        eta_(o.real("eta")),
        clip_x0_(o.boolean("clip_x0")),
        clip_range_(o.real("clip_range")) {}

  // What the user asked for, even above T: validation refuses that before anything runs.
  std::int64_t steps(std::int64_t) const override { return steps_; }

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto& p = ctx.process;
    const std::int64_t T = p.timesteps();
    if (steps_ > T) {
      throw InputError("ddim: steps (" + std::to_string(steps_) +
                       ") exceeds the schedule's timesteps (" + std::to_string(T) +
                       "); lower steps");
    }
    // Song et al. 2021, sec. 4.2: the "leading" subsequence tau_i = floor(i T / S), i = 0..S-1.
    std::vector<std::int64_t> tau(steps_);
    for (std::int64_t i = 0; i < steps_; ++i) tau[i] = i * T / steps_;

    const auto& alpha_bars = p.alpha_bars();
    const auto one = torch::ones({}, alpha_bars.options());
    for (std::int64_t i = steps_ - 1; i >= 0; --i) {
      auto d = denoise(ctx.model, p, x, timestep_batch(x, tau[i]), ctx.cond);
      const auto a_t = alpha_bars[tau[i]];
      if (clip_x0_) {
        // improved-diffusion ddim_sample: clip x0, then eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t).
        d.x0 = d.x0.clamp(-clip_range_, clip_range_);
        d.epsilon = (x - a_t.sqrt() * d.x0) / (1.0 - a_t).sqrt();
      }
      const auto a_prev = i > 0 ? alpha_bars[tau[i - 1]] : one;  // abar_0 = 1: x0 itself
      // Song et al. 2021, eq. 16: sigma = eta sqrt((1 - a_prev)/(1 - a_t)) sqrt(1 - a_t/a_prev).
      const auto sigma = eta_ * ((1.0 - a_prev) / (1.0 - a_t) * (1.0 - a_t / a_prev)).sqrt();
      // Ibid., eq. 12: x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z.
      x = a_prev.sqrt() * d.x0 + (1.0 - a_prev - sigma.square()).clamp_min(0).sqrt() * d.epsilon;
      if (eta_ > 0 && i > 0) x = x + sigma * sampler_noise(ctx, x);
      if (ctx.on_step) ctx.on_step(steps_ - 1 - i, x);
    }
    return x;
  }

 private:
  std::int64_t steps_;
  double eta_;
  bool clip_x0_;
  double clip_range_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_sampler(
      {"ddim", "1.1.0", "DDIM on `steps` evenly spaced timesteps (Song et al. 2021, eq. 12)",
       {OptionSpec::integer("steps", 50, "model calls, at timestep indices floor(i T / steps)")
            .at_least(1),
        OptionSpec::real("eta", 0.0,
                         "noise scale: 0 is deterministic DDIM, 1 matches DDPM's posterior "
                         "variance (eq. 16)")
            .at_least(0),
        OptionSpec::boolean("clip_x0", false,
                            "clamp the predicted x0 to [-clip_range, clip_range] at every step, as "
                            "improved-diffusion's clip_denoised does"),
        OptionSpec::real("clip_range", 1.0, "bound of the clamp (data units; the data lie in [-1, 1])")
            .greater_than(0)}},
      [](const Options& o) { return std::make_unique<DdimSampler>(o); });
}
