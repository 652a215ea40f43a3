// quadratic: betas whose square roots are evenly spaced (the 'quad' schedule of the DDPM code).
#include <cmath>

#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class QuadraticSchedule final : public NoiseSchedule {
 public:
  explicit QuadraticSchedule(const Options& o) : range_(BetaRange::from(o, "quadratic")) {}

  // Ho et al. 2020 code, "quad": beta_t = (sqrt(b0) + (sqrt(b1) - sqrt(b0)) (t - 1) / (T - 1))^2.
  torch::Tensor betas() const override {
    const auto roots =
        torch::linspace(std::sqrt(range_.beta_start), std::sqrt(range_.beta_end), range_.timesteps, torch::kFloat64);
    return roots.square();
  }

 private:
  BetaRange range_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_schedule(
      {"quadratic", "1.0.0", "Betas whose square roots are linear in t",
       BetaRange::options()},
      [](const Options& o) { return std::make_unique<QuadraticSchedule>(o); });
}
