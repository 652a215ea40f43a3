// quadratic: betas whose square roots are evenly spaced (the 'quad' schedule of the DDPM code).
#include <cmath>

#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class QuadraticSchedule final : public NoiseSchedule {
 public:
  explicit QuadraticSchedule(const Options& o)
      : timesteps_(o.integer("timesteps")), beta_start_(o.real("beta_start")),
        beta_end_(o.real("beta_end")) {
    if (beta_start_ > beta_end_) {
      throw InputError("schedule 'quadratic': beta_start (" +
                       format_option(o.values().at("beta_start")) + ") exceeds beta_end (" +
                       format_option(o.values().at("beta_end")) +
                       "); betas must not shrink with t, swap them");
    }
  }

  // Ho et al. 2020 code, "quad": beta_t = (sqrt(b0) + (sqrt(b1) - sqrt(b0)) (t - 1) / (T - 1))^2.
  torch::Tensor betas() const override {
    const auto roots =
        torch::linspace(std::sqrt(beta_start_), std::sqrt(beta_end_), timesteps_, torch::kFloat64);
    return roots.square();
  }

 private:
  std::int64_t timesteps_;
  double beta_start_, beta_end_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_schedule(
      {"quadratic", "1.0.0", "Betas whose square roots are linear in t",
       {OptionSpec::integer("timesteps", 1000, "number of diffusion steps T").at_least(1),
        OptionSpec::real("beta_start", 1e-4, "beta_1, the variance added at the first step")
            .greater_than(0).less_than(1),
        OptionSpec::real("beta_end", 0.02, "beta_T, the variance added at the last step")
            .greater_than(0).less_than(1)}},
      [](const Options& o) { return std::make_unique<QuadraticSchedule>(o); });
}
