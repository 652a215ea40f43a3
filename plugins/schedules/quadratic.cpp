// quadratic: betas rising with the square of t/T (the 2D GMM schedule study).
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class QuadraticSchedule final : public NoiseSchedule {
 public:
  explicit QuadraticSchedule(const Options& o) : range_(BetaRange::from(o, "quadratic")) {}

  // 2D GMM schedule study: beta_t = b0 + (b1 - b0) (t / T)^2, t = 1..T; beta_T = b1.
  torch::Tensor betas() const override {
    const auto t = torch::arange(1, range_.timesteps + 1, torch::kFloat64);
    return range_.beta_start + (range_.beta_end - range_.beta_start) * (t / double(range_.timesteps)).square();
  }

 private:
  BetaRange range_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_schedule(
      {"quadratic", "2.0.0",
       "Betas b0 + (b1 - b0)(t/T)^2, t = 1..T (2D GMM study; Ho et al.'s 'quad' is scaled_linear)",
       BetaRange::options()},
      [](const Options& o) { return std::make_unique<QuadraticSchedule>(o); });
}
