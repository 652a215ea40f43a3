// exponential: betas growing geometrically from beta_start to beta_end.
#include <cmath>

#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class ExponentialSchedule final : public NoiseSchedule {
 public:
  explicit ExponentialSchedule(const Options& o) : range_(BetaRange::from(o, "exponential")) {}

  // 2D GMM schedule study: beta_t = b0 (b1 / b0)^((t - 1) / (T - 1)); T = 1 gives b0.
  torch::Tensor betas() const override {
    const auto u = torch::linspace(0.0, 1.0, range_.timesteps, torch::kFloat64);
    return range_.beta_start * torch::pow(range_.beta_end / range_.beta_start, u);
  }

 private:
  BetaRange range_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_schedule(
      {"exponential", "1.0.0", "Betas geometric in t: b0 (b1 / b0)^((t - 1) / (T - 1))",
       BetaRange::options()},
      [](const Options& o) { return std::make_unique<ExponentialSchedule>(o); });
}
