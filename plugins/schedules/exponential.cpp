// exponential: betas growing geometrically from beta_start to beta_end (2D GMM schedule study).
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class ExponentialSchedule final : public NoiseSchedule {
 public:
  explicit ExponentialSchedule(const Options& o) : range_(BetaRange::from(o, "exponential")) {}

  // 2D GMM schedule study: beta_t = b0 (b1 / b0)^(t / T), t = 1..T; beta_T = b1.
  torch::Tensor betas() const override {
    const auto t = torch::arange(1, range_.timesteps + 1, torch::kFloat64);
    return range_.beta_start * torch::pow(range_.beta_end / range_.beta_start, t / double(range_.timesteps));
  }

 private:
  BetaRange range_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_schedule(
      {"exponential", "2.0.0", "Betas b0 (b1 / b0)^(t/T), t = 1..T (2D GMM study)",
       BetaRange::options()},
      [](const Options& o) { return std::make_unique<ExponentialSchedule>(o); });
}
