// exponential: betas growing geometrically from beta_start to beta_end.
#include <cmath>

#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class ExponentialSchedule final : public NoiseSchedule {
 public:
  explicit ExponentialSchedule(const Options& o)
      : timesteps_(o.integer("timesteps")), beta_start_(o.real("beta_start")),
        beta_end_(o.real("beta_end")) {
    if (beta_start_ > beta_end_) {
      throw InputError("schedule 'exponential': beta_start (" +
                       format_option(o.values().at("beta_start")) + ") exceeds beta_end (" +
                       format_option(o.values().at("beta_end")) +
                       "); betas must not shrink with t, swap them");
    }
  }

  // 2D GMM schedule study: beta_t = b0 (b1 / b0)^((t - 1) / (T - 1)); T = 1 gives b0.
  torch::Tensor betas() const override {
    const auto u = torch::linspace(0.0, 1.0, timesteps_, torch::kFloat64);
    return beta_start_ * torch::pow(beta_end_ / beta_start_, u);
  }

 private:
  std::int64_t timesteps_;
  double beta_start_, beta_end_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_schedule(
      {"exponential", "1.0.0", "Betas geometric in t: b0 (b1 / b0)^((t - 1) / (T - 1))",
       {OptionSpec::integer("timesteps", 1000, "number of diffusion steps T").at_least(1),
        OptionSpec::real("beta_start", 1e-4, "beta_1, the variance added at the first step")
            .greater_than(0).less_than(1),
        OptionSpec::real("beta_end", 0.02, "beta_T, the variance added at the last step")
            .greater_than(0).less_than(1)}},
      [](const Options& o) { return std::make_unique<ExponentialSchedule>(o); });
}
