// dpmpp_2m_sde: DPM-Solver++(2M) SDE, the second-order multistep solver of the reverse SDE in
// data prediction (k-diffusion's sample_dpmpp_2m_sde, solver_type "midpoint"; with eta = 1 it is
// diffusers' SDE-DPM-Solver++(2M), Lu et al. 2022b), written in VP scaling.
#include <cmath>
#include <vector>

#include "difflab/plugin.hpp"
#include "multistep.hpp"

namespace {
using namespace difflab;
using namespace difflab::multistep;

class DpmPp2mSdeSampler final : public Sampler {
 public:
  explicit DpmPp2mSdeSampler(const Options& o)
      : steps_(o.integer("steps")),
        eta_(o.real("eta")),
        s_noise_(o.real("s_noise")),
        spacing_(TimestepSpacing::from(o)) {}

  std::int64_t steps(std::int64_t) const override { return steps_; }

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto ts = spacing_.timesteps(ctx.process, steps_, "dpmpp_2m_sde");
    return solve(ctx, std::move(x), ts, History(2),
                 [&](const torch::Tensor& x_s, Level from, Level to, const History& h) {
                   return step(ctx, x_s, from, to, h);
                 });
  }

 private:
  // k-diffusion's update times alpha_t (x_VE = x / alpha, sigma_VE alpha_t = sigma_t):
  //   x_t = (sigma_t / sigma_s) e^{-eta h} x + alpha_t (1 - e^{-(1+eta) h}) D
  //         + sigma_t sqrt(1 - e^{-2 eta h}) s_noise z,
  // D = x0_s + (x0_s - x0_prev) / (2r), r = h_prev / h (D = x0_s on the first step).
  // From a zero terminal SNR h = inf: x_t = alpha_t x0_s + sigma_t z (eta > 0).
  torch::Tensor step(const SamplingContext& ctx, const torch::Tensor& x, Level from, Level to,
                     const History& history) const {
    const double h = to.lambda - from.lambda;
    const double eta_h = eta_ > 0 ? eta_ * h : 0.0;  // eta = 0 with h = inf would be 0 * inf
    const double c_x0 = -to.alpha * std::expm1(-h - eta_h);
    auto next = (to.sigma / from.sigma * std::exp(-eta_h)) * x + c_x0 * history[0].x0;
    if (history.size() == 2) {
      const double r = history.h(0) / h;
      next = next + (0.5 * c_x0 / r) * (history[0].x0 - history[1].x0);
    }
    if (eta_ > 0) {
      next = next + sde_noise(ctx, to, eta_h, s_noise_, x);
    }
    return next;
  }

  std::int64_t steps_;
  double eta_, s_noise_;
  TimestepSpacing spacing_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_sampler(
      {"dpmpp_2m_sde", "1.0.0",
       "DPM-Solver++(2M) SDE: second-order multistep solver of the reverse SDE in x0, `steps` "
       "model calls (k-diffusion sample_dpmpp_2m_sde, midpoint; Lu et al. 2022b)",
       with_spacing(
           {one_call_steps(20),
            OptionSpec::real("eta", 1.0,
                             "stochasticity: 1 is the reverse SDE, 0 the probability-flow ODE "
                             "(then equal to dpmpp_2m)")
                .at_least(0),
            OptionSpec::real("s_noise", 1.0, "scale of the injected noise (1: the SDE's own)")
                .at_least(0)})},
      [](const Options& o) { return std::make_unique<DpmPp2mSdeSampler>(o); });
}
