// cosine_beta: betas rising from beta_start to beta_end along a quarter cosine (2D GMM study).
#include <cmath>

#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

constexpr double kPi = 3.14159265358979323846;

class CosineBetaSchedule final : public NoiseSchedule {
 public:
  explicit CosineBetaSchedule(const Options& o) : range_(BetaRange::from(o, "cosine_beta")) {}

  // 2D GMM schedule study: beta_t = b0 + (b1 - b0)(1 - cos(pi t / (2T))), t = 1..T; beta_T = b1.
  torch::Tensor betas() const override {
    const auto t = torch::arange(1, range_.timesteps + 1, torch::kFloat64);
    const auto rise = 1.0 - torch::cos(t * (kPi / (2.0 * double(range_.timesteps))));
    return range_.beta_start + (range_.beta_end - range_.beta_start) * rise;
  }

 private:
  BetaRange range_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_schedule(
      {"cosine_beta", "1.0.0", "Betas b0 + (b1 - b0)(1 - cos(pi t / 2T)), t = 1..T (2D GMM study)",
       BetaRange::options()},
      [](const Options& o) { return std::make_unique<CosineBetaSchedule>(o); });
}
