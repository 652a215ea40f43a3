// unipc: UniPC, a multistep predictor (UniP) with a corrector (UniC) that reuses the next model
// call, in data prediction with B(h) = e^h - 1 ("bh2") (Zhao et al. 2023, sec. 3; diffusers'
// UniPCMultistepScheduler with predict_x0, solver_type "bh2", no disabled corrector).
#include <algorithm>
#include <cmath>
#include <vector>

#include "difflab/plugin.hpp"
#include "multistep.hpp"

namespace {
using namespace difflab;
using namespace difflab::multistep;

// b_k = k! hh phi_{k+1}(hh) / B(h), k = 1..n, hh = -h, with phi_1(z) = (e^z - 1) / z and
// phi_{k+1}(z) = (phi_k(z) - 1/k!) / z (Zhao et al. 2023, sec. 3.1; diffusers' `b`).
std::vector<double> order_conditions(double hh, std::size_t n) {
  const double b_h = std::expm1(hh);
  double h_phi = std::expm1(hh) / hh - 1.0;
  double factorial = 1.0;
  std::vector<double> b;
  for (std::size_t k = 1; k <= n; ++k) {
    b.push_back(h_phi * factorial / b_h);
    factorial *= static_cast<double>(k + 1);
    h_phi = h_phi / hh - 1.0 / factorial;
  }
  return b;
}

// The rho_k of UniP / UniC: sum_k rho_k r_k^(j-1) = b_j, j = 1..n (Zhao et al. 2023, sec. 3.1),
// with diffusers' rho = 1/2 where a single coefficient is needed (UniP-2, UniC-1).
std::vector<double> rhos(const std::vector<double>& rks, double h) {
  const auto n = static_cast<std::int64_t>(rks.size());
  if (n <= 1) return std::vector<double>(rks.size(), 0.5);
  auto vandermonde = torch::empty({n, n}, torch::kDouble);
  auto v = vandermonde.accessor<double, 2>();
  for (std::int64_t j = 0; j < n; ++j) {
    for (std::int64_t k = 0; k < n; ++k) v[j][k] = std::pow(rks[k], static_cast<double>(j));
  }
  const auto b = torch::tensor(order_conditions(-h, rks.size()), torch::dtype(torch::kDouble));
  const auto rho = torch::linalg::solve(vandermonde, b, /*left=*/true).contiguous();
  return {rho.data_ptr<double>(), rho.data_ptr<double>() + n};
}

// One UniP-order step from `from` to `to`, or, given the model's x0 at `to`, the UniC-order
// correction of that step (diffusers' multistep_uni_p_bh_update / multistep_uni_c_bh_update):
//   x_t = (sigma_t / sigma_s) x - alpha_t B(-h) (x0_s + sum_k rho_k D_k),  B(-h) = e^{-h} - 1,
//   D_k = (x0_k - x0_s) / r_k, r_k = (lambda_k - lambda_s) / h over the older evaluations, and for
//   UniC D = x0_t - x0_s with r = 1. history[0] is the evaluation at `from`.
torch::Tensor uni_update(const torch::Tensor& x, Level from, Level to, const History& history,
                         std::size_t order, const torch::Tensor& x0_at_to) {
  const double h = to.lambda - from.lambda;  // inf from a zero terminal SNR: B(h) = -1
  const auto& x0 = history[0].x0;
  std::vector<double> rks;
  std::vector<torch::Tensor> ds;
  for (std::size_t k = 1; k < order; ++k) {
    rks.push_back((history[k].lambda - from.lambda) / h);
    ds.push_back((history[k].x0 - x0) / rks.back());
  }
  if (x0_at_to.defined()) {
    rks.push_back(1.0);
    ds.push_back(x0_at_to - x0);
  }
  const auto rho = rhos(rks, h);
  auto sum = x0;
  for (std::size_t k = 0; k < ds.size(); ++k) sum = sum + rho[k] * ds[k];
  return (to.sigma / from.sigma) * x - (to.alpha * std::expm1(-h)) * sum;
}

class UniPcSampler final : public Sampler {
 public:
  explicit UniPcSampler(const Options& o)
      : steps_(o.integer("steps")),
        order_(static_cast<std::size_t>(o.integer("order"))),
        lower_order_final_(o.boolean("lower_order_final")),
        spacing_(TimestepSpacing::from(o)) {}

  std::int64_t steps(std::int64_t) const override { return steps_; }

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto ts = spacing_.timesteps(ctx.process, steps_, "unipc");
    History history(order_);
    torch::Tensor start;         // where the last predictor step began, corrected
    std::size_t last_order = 0;  // that step's order, which its corrector shares
    for (std::size_t i = 0; i < ts.size(); ++i) {
      const Level level = level_at(ctx.process, ts[i]);
      const auto d = denoise_at(ctx, x, ts[i]);
      if (i + 1 == ts.size()) {
        // The step to the data is first order, x = x0 of this call, which the corrector of the
        // previous step would not change; diffusers' output is the same.
        x = d.x0;
      } else {
        if (i > 0) {  // UniC on the step that led here, with this call's x0 (no extra call)
          x = uni_update(start, level_at(ctx.process, ts[i - 1]), level, history, last_order, d.x0);
        }
        history.push(level.lambda, d.x0);
        last_order = predictor_order(i, ts.size(), history);
        start = x;
        x = uni_update(x, level, level_at(ctx.process, ts[i + 1]), history, last_order, {});
      }
      if (ctx.on_step) ctx.on_step(static_cast<std::int64_t>(i), x);
    }
    return x;
  }

 private:
  // diffusers: min(order, steps left) with lower_order_final, and no more than the evaluations
  // at hand (warm-up; one after a zero terminal SNR).
  std::size_t predictor_order(std::size_t i, std::size_t steps, const History& history) const {
    const std::size_t cap = lower_order_final_ ? std::min(order_, steps - i) : order_;
    return std::min(cap, history.size());
  }

  std::int64_t steps_;
  std::size_t order_;
  bool lower_order_final_;
  TimestepSpacing spacing_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_sampler(
      {"unipc", "1.0.0",
       "UniPC: multistep predictor UniP-order with the corrector UniC (B(h) = e^h - 1), in x0, "
       "`steps` model calls (Zhao et al. 2023)",
       with_spacing(
           {one_call_steps(20),
            OptionSpec::integer("order", 2,
                                "order p of the predictor UniP-p; the corrector raises it to p + 1")
                .at_least(1)
                .at_most(3),
            OptionSpec::boolean("lower_order_final", true,
                                "cap the order by the steps left (diffusers): at order 3 the step "
                                "into the last timestep is second order; the step to the data is "
                                "always first order")})},
      [](const Options& o) { return std::make_unique<UniPcSampler>(o); });
}
