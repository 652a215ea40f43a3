// Heun's second-order sampler for the probability-flow ODE (Karras et al. 2022, Alg. 1 without
// churn), on a uniform subsequence of the schedule's timesteps. An example of a plugin built
// outside the difflab tree: only difflab/plugin.hpp is needed.
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class HeunSampler final : public Sampler {
 public:
  explicit HeunSampler(const Options& o) : steps_(o.integer("steps")) {}

  // Timesteps visited (the model is called twice on each but the last).
  std::int64_t steps(std::int64_t) const override { return steps_; }

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x_T) const override {
    const auto& process = ctx.process;
    const std::int64_t T = process.timesteps();
    const std::int64_t n = std::min(steps_, T);
    std::vector<std::int64_t> ts;  // descending, T-1 .. 0
    for (std::int64_t i = 0; i < n; ++i) ts.push_back((T - 1) - i * (T - 1) / std::max<std::int64_t>(1, n - 1));
    const auto sigmas = process.sigmas().to(torch::kCPU, torch::kFloat64);
    // Work in the variance-exploding variable x / sqrt(abar) = x0 + sigma eps (Karras eq. 5).
    const auto sigma = [&](std::int64_t t) { return sigmas[t].item<double>(); };
    const auto epsilon = [&](const torch::Tensor& x_ve, std::int64_t t) {
      const double scale = 1.0 / std::sqrt(1.0 + sigma(t) * sigma(t));  // sqrt(abar_t)
      return denoise(ctx.model, process, x_ve * scale, timestep_batch(x_ve, t), ctx.cond).epsilon;
    };
    auto x = x_T * std::sqrt(1.0 + sigma(ts[0]) * sigma(ts[0]));
    for (std::size_t i = 0; i < ts.size(); ++i) {
      const double s = sigma(ts[i]);
      const double s_next = i + 1 < ts.size() ? sigma(ts[i + 1]) : 0.0;
      const auto d = epsilon(x, ts[i]);  // dx/dsigma = eps (Karras eq. 4 with s(t) = 1)
      auto x_next = x + (s_next - s) * d;
      if (i + 1 < ts.size()) {  // Heun correction, except on the final step to sigma = 0
        x_next = x + (s_next - s) * 0.5 * (d + epsilon(x_next, ts[i + 1]));
      }
      x = x_next;
      if (ctx.on_step) ctx.on_step(static_cast<std::int64_t>(i), x);
    }
    return x;
  }

 private:
  std::int64_t steps_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_sampler({"heun", "0.1.0", "Heun's 2nd-order probability-flow ODE sampler (Karras et al. 2022)",
                         {OptionSpec::integer("steps", 18, "timesteps visited (the model is called 2 steps - 1 times)")
                              .at_least(1)}},
                        [](const Options& o) { return std::make_unique<HeunSampler>(o); });
}
