// dpmpp_2m: DPM-Solver++(2M), the second-order multistep solver of the probability-flow ODE in
// data prediction (Lu et al. 2022b, Alg. 2; diffusers' DPMSolverMultistepScheduler, k-diffusion's
// sample_dpmpp_2m).
#include <cmath>
#include <vector>

#include "difflab/plugin.hpp"
#include "multistep.hpp"

namespace {
using namespace difflab;
using namespace difflab::multistep;

class DpmPp2mSampler final : public Sampler {
 public:
  explicit DpmPp2mSampler(const Options& o)
      : steps_(o.integer("steps")),
        order_(o.integer("order")),
        spacing_(TimestepSpacing::from(o)) {}

  std::int64_t steps(std::int64_t) const override { return steps_; }

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto ts = spacing_.timesteps(ctx.process, steps_, "dpmpp_2m");
    return solve(ctx, std::move(x), ts, History(static_cast<std::size_t>(order_)),
                 [&](const torch::Tensor& x_s, Level from, Level to, const History& h) {
                   return step(x_s, from, to, h);
                 });
  }

 private:
  // Lu et al. 2022b, Alg. 2: x_t = (sigma_t / sigma_s) x - alpha_t (e^{-h} - 1) D, h = lambda_t -
  // lambda_s, D = (1 + 1/(2r)) x0_s - 1/(2r) x0_prev with r = h_prev / h; D = x0_s on the first
  // step (DPM-Solver++1, which is DDIM with eta = 0). From a zero terminal SNR h = inf, e^{-h} = 0.
  static torch::Tensor step(const torch::Tensor& x, Level from, Level to, const History& history) {
    const double h = to.lambda - from.lambda;
    auto d = history[0].x0;
    if (history.size() == 2) {
      const double r = history.h(0) / h;
      d = (1.0 + 1.0 / (2.0 * r)) * d - 1.0 / (2.0 * r) * history[1].x0;
    }
    return (to.sigma / from.sigma) * x - to.alpha * std::expm1(-h) * d;
  }

  std::int64_t steps_, order_;
  TimestepSpacing spacing_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_sampler(
      {"dpmpp_2m", "1.0.0",
       "DPM-Solver++(2M): second-order multistep ODE solver in x0, `steps` model calls (Lu et al. "
       "2022b, Alg. 2)",
       with_spacing(
           {one_call_steps(20),
            OptionSpec::integer("order", 2,
                                "multistep order (diffusers' solver_order): 2 is DPM-Solver++(2M), "
                                "1 is DPM-Solver++1, equal to DDIM with eta = 0")
                .at_least(1)
                .at_most(2)})},
      [](const Options& o) { return std::make_unique<DpmPp2mSampler>(o); });
}
