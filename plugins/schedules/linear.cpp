// linear: betas evenly spaced from beta_start to beta_end (Ho et al. 2020).
#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class LinearSchedule final : public NoiseSchedule {
 public:
  explicit LinearSchedule(const Options& o)
      : timesteps_(o.integer("timesteps")), beta_start_(o.real("beta_start")),
        beta_end_(o.real("beta_end")) {
    if (beta_start_ > beta_end_) {
      throw InputError("schedule 'linear': beta_start (" +
                       format_option(o.values().at("beta_start")) + ") exceeds beta_end (" +
                       format_option(o.values().at("beta_end")) +
                       "); betas must not shrink with t, swap them");
    }
  }

  // Ho et al. 2020, sec. 4: beta_t = beta_1 + (beta_T - beta_1) (t - 1) / (T - 1).
  torch::Tensor betas() const override {
    return torch::linspace(beta_start_, beta_end_, timesteps_, torch::kFloat64);
  }

 private:
  std::int64_t timesteps_;
  double beta_start_, beta_end_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_schedule(
      {"linear", "1.0.0", "Betas linear in t (Ho et al. 2020)",
       {OptionSpec::integer("timesteps", 1000, "number of diffusion steps T").at_least(1),
        OptionSpec::real("beta_start", 1e-4, "beta_1, the variance added at the first step")
            .greater_than(0).less_than(1),
        OptionSpec::real("beta_end", 0.02, "beta_T, the variance added at the last step")
            .greater_than(0).less_than(1)}},
      [](const Options& o) { return std::make_unique<LinearSchedule>(o); });
}
