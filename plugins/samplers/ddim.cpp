// ddim: denoising diffusion implicit models on a subsequence of the timesteps (Song et al. 2021).
#include "difflab/plugin.hpp"
#include "respaced.hpp"

namespace {
using namespace difflab;

class DdimSampler final : public Sampler {
 public:
  explicit DdimSampler(const Options& o)
      : steps_(o.integer("steps")),
        spacing_(TimestepSpacing::from(o)),
        eta_(o.real("eta")),
        clip_x0_(o.boolean("clip_x0")),
        clip_range_(o.real("clip_range")) {}

  // What the user asked for, even above T: validation refuses that before anything runs.
  std::int64_t steps(std::int64_t) const override { return steps_; }

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto ts = spacing_.timesteps(ctx.process, steps_, "ddim");
    for (std::size_t i = 0; i < ts.size(); ++i) {
      auto d = denoise_at(ctx, x, ts[i]);
      const auto abar = respaced::step(ctx.process, ts, i);  // abar_prev = 1 last: x0 itself
      const double a_t = abar.abar, a_prev = abar.abar_prev;
      if (clip_x0_) {
        // improved-diffusion ddim_sample: clip x0, then eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t).
        d.x0 = d.x0.clamp(-clip_range_, clip_range_);
        d.epsilon = (x - std::sqrt(a_t) * d.x0) / std::sqrt(1.0 - a_t);
      }
      // Song et al. 2021, eq. 16: sigma = eta sqrt((1 - a_prev)/(1 - a_t)) sqrt(1 - a_t/a_prev).
      const double sigma = eta_ * std::sqrt((1.0 - a_prev) / (1.0 - a_t) * (1.0 - a_t / a_prev));
      // Ibid., eq. 12: x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z.
      x = std::sqrt(a_prev) * d.x0 + std::sqrt(std::max(0.0, 1.0 - a_prev - sigma * sigma)) * d.epsilon;
      if (sigma > 0) x = x + sigma * sampler_noise(ctx, x);
      if (ctx.on_step) ctx.on_step(static_cast<std::int64_t>(i), x);
    }
    return x;
  }

 private:
  std::int64_t steps_;
  TimestepSpacing spacing_;
  double eta_;
  bool clip_x0_;
  double clip_range_;
};

std::vector<OptionSpec> ddim_options() {
  std::vector<OptionSpec> specs{
      steps_option(50, "model calls, at the timesteps `spacing` picks"),
      OptionSpec::real("eta", 0.0,
                       "noise scale: 0 is deterministic DDIM, 1 matches DDPM's posterior variance (eq. 16)")
          .at_least(0),
      respaced::clip_spec(), respaced::clip_range_spec()};
  return samplers::with_spacing(std::move(specs));
}

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_sampler({"ddim", "2.0.0", "DDIM on `steps` spaced timesteps (Song et al. 2021, eq. 12)",
                         ddim_options()},
                        [](const Options& o) { return std::make_unique<DdimSampler>(o); });
}
