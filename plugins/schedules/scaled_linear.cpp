// scaled_linear: betas whose square roots are evenly spaced (Ho et al.'s "quad", diffusers'
// "scaled_linear", the schedule of latent diffusion).
#include <cmath>

#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class ScaledLinearSchedule final : public NoiseSchedule {
 public:
  explicit ScaledLinearSchedule(const Options& o) : range_(BetaRange::from(o, "scaled_linear")) {}

  // Ho et al. 2020 code, "quad": beta_t = (sqrt(b0) + (sqrt(b1) - sqrt(b0)) (t - 1) / (T - 1))^2.
  torch::Tensor betas() const override {
    const auto roots = torch::linspace(std::sqrt(range_.beta_start), std::sqrt(range_.beta_end),
                                       range_.timesteps, torch::kFloat64);
    return roots.square();
  }

 private:
  BetaRange range_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_schedule(
      {"scaled_linear", "1.0.0",
       "Betas whose square roots are linear in t (Ho et al. 2020 code's 'quad'; diffusers' scaled_linear)",
       BetaRange::options()},
      [](const Options& o) { return std::make_unique<ScaledLinearSchedule>(o); });
}
