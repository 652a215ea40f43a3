// dpmpp_3m_sde: DPM-Solver++(3M) SDE, the third-order multistep solver of the reverse SDE in
// data prediction (k-diffusion's sample_dpmpp_3m_sde; Lu et al. 2022b), written in VP scaling.
// With eta = 0 it is the deterministic DPM-Solver++(3M).
#include <cmath>
#include <vector>

#include "difflab/plugin.hpp"
#include "multistep.hpp"

namespace {
using namespace difflab;
using namespace difflab::multistep;

class DpmPp3mSdeSampler final : public Sampler {
 public:
  explicit DpmPp3mSdeSampler(const Options& o)
      : steps_(o.integer("steps")),
        eta_(o.real("eta")),
        s_noise_(o.real("s_noise")),
        spacing_(TimestepSpacing::from(o)) {}

  std::int64_t steps(std::int64_t) const override { return steps_; }

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto ts = spacing_.timesteps(ctx.process, steps_, "dpmpp_3m_sde");
    // Three x0 kept: first and second order on the first two steps, as the reference.
    return solve(ctx, std::move(x), ts, History(3),
                 [&](const torch::Tensor& x_s, Level from, Level to, const History& h) {
                   return step(ctx, x_s, from, to, h);
                 });
  }

 private:
  // k-diffusion's update times alpha_t, with H = (1 + eta) h, phi_2 = (e^{-H} - 1) / H + 1 and
  // phi_3 = phi_2 / H - 1/2:
  //   x_t = (sigma_t / sigma_s) e^{-eta h} x + alpha_t ((1 - e^{-H}) x0_s + phi_2 d1 - 2 phi_3 d2)
  //         + sigma_t sqrt(1 - e^{-2 eta h}) s_noise z,
  // d1 ~ h x0' and d2 ~ h^2 x0'' / 2 the divided differences over the last three x0 (in lambda).
  // k-diffusion and diffusers weight d2 by phi_3 alone, half the exponential integral
  // int_0^H e^{v-H} v^2 dv / H^2 = 1 - 2 phi_2 / H = -2 phi_3, which leaves their 3M second order;
  // with 2 phi_3 it integrates a quadratic x0 exactly and is third order.
  torch::Tensor step(const SamplingContext& ctx, const torch::Tensor& x, Level from, Level to,
                     const History& history) const {
    const double h = to.lambda - from.lambda;
    const double eta_h = eta_ > 0 ? eta_ * h : 0.0;  // eta = 0 with h = inf would be 0 * inf
    const double big_h = h + eta_h;
    const auto& x0 = history[0].x0;
    auto next = (to.sigma / from.sigma * std::exp(-eta_h)) * x - to.alpha * std::expm1(-big_h) * x0;
    if (history.size() >= 2) {
      const double phi_2 = std::expm1(-big_h) / big_h + 1.0;
      const double r0 = history.h(0) / h;
      const auto d1_0 = (x0 - history[1].x0) / r0;
      if (history.size() == 3) {
        const double phi_3 = phi_2 / big_h - 0.5;
        const double r1 = history.h(1) / h;
        const auto d1_1 = (history[1].x0 - history[2].x0) / r1;
        const auto d2 = (d1_0 - d1_1) / (r0 + r1);
        const auto d1 = d1_0 + r0 * d2;
        next = next + to.alpha * (phi_2 * d1 - 2.0 * phi_3 * d2);
      } else {
        next = next + (to.alpha * phi_2) * d1_0;
      }
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
      {"dpmpp_3m_sde", "1.0.0",
       "DPM-Solver++(3M) SDE: third-order multistep solver of the reverse SDE in x0, `steps` model "
       "calls (k-diffusion sample_dpmpp_3m_sde; Lu et al. 2022b); eta = 0 is the 3M ODE solver",
       with_spacing(
           {one_call_steps(20),
            OptionSpec::real("eta", 1.0,
                             "stochasticity: 1 is the reverse SDE, 0 the probability-flow ODE")
                .at_least(0),
            OptionSpec::real("s_noise", 1.0, "scale of the injected noise (1: the SDE's own)")
                .at_least(0)})},
      [](const Options& o) { return std::make_unique<DpmPp3mSdeSampler>(o); });
}
