// cosine_beta: betas rising from beta_start to beta_end along a quarter cosine (2D GMM study).
#include <cmath>

#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

constexpr double kPi = 3.14159265358979323846;

class CosineBetaSchedule final : public NoiseSchedule {
 public:
  explicit CosineBetaSchedule(const Options& o)
      : timesteps_(o.integer("timesteps")), beta_start_(o.real("beta_start")),
        beta_end_(o.real("beta_end")) {
    if (beta_start_ > beta_end_) {
      throw InputError("schedule 'cosine_beta': beta_start (" +
                       format_option(o.values().at("beta_start")) + ") exceeds beta_end (" +
                       format_option(o.values().at("beta_end")) +
                       "); betas must not shrink with t, swap them");
    }
  }

  // 2D GMM schedule study: beta_t = b0 + (b1 - b0)(1 - cos(pi t / (2T))), t = 1..T; beta_T = b1.
  torch::Tensor betas() const override {
    const auto t = torch::arange(1, timesteps_ + 1, torch::kFloat64);
    const auto rise = 1.0 - torch::cos(t * (kPi / (2.0 * double(timesteps_))));
    return beta_start_ + (beta_end_ - beta_start_) * rise;
  }

 private:
  std::int64_t timesteps_;
  double beta_start_, beta_end_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_schedule(
      {"cosine_beta", "1.0.0", "Betas b0 + (b1 - b0)(1 - cos(pi t / 2T)), t = 1..T (2D GMM study)",
       {OptionSpec::integer("timesteps", 1000, "number of diffusion steps T").at_least(1),
        OptionSpec::real("beta_start", 1e-4, "b0, the variance per step as t -> 0")
            .greater_than(0).less_than(1),
        OptionSpec::real("beta_end", 0.02, "beta_T, the variance added at the last step")
            .greater_than(0).less_than(1)}},
      [](const Options& o) { return std::make_unique<CosineBetaSchedule>(o); });
}
