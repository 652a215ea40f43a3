// linear: betas evenly spaced from beta_start to beta_end (Ho et al. 2020).
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class LinearSchedule final : public NoiseSchedule {
 public:
  explicit LinearSchedule(const Options& o) : range_(BetaRange::from(o, "linear")) {}

  // Ho et al. 2020, sec. 4: beta_t = beta_1 + (beta_T - beta_1) (t - 1) / (T - 1).
  torch::Tensor betas() const override {
    return torch::linspace(range_.beta_start, range_.beta_end, range_.timesteps, torch::kFloat64);
  }

 private:
  BetaRange range_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_schedule(
      {"linear", "1.0.0", "Betas linspace(b0, b1, T) (Ho et al. 2020, sec. 4; the MNIST and Fashion-MNIST DDPMs)",
       BetaRange::options()},
      [](const Options& o) { return std::make_unique<LinearSchedule>(o); });
}
