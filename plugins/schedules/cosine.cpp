// cosine: alpha bar follows a squared cosine in t (Nichol & Dhariwal 2021, "improved DDPM").
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

constexpr double kPi = 3.14159265358979323846;

class CosineSchedule final : public NoiseSchedule {
 public:
  explicit CosineSchedule(const Options& o)
      : timesteps_(o.integer("timesteps")), offset_(o.real("s")), max_beta_(o.real("max_beta")) {}

  torch::Tensor betas() const override {
    const auto t = torch::arange(0, timesteps_ + 1, torch::kFloat64);
    // Nichol & Dhariwal 2021, eq. 17: abar(t) = f(t) / f(0), f(t) = cos^2((t/T + s)/(1 + s) pi/2).
    const auto phase = (t / double(timesteps_) + offset_) / (1.0 + offset_) * (kPi / 2);
    const auto f = torch::cos(phase).square();
    const auto alpha_bars = f / f[0];
    // Ibid., sec. 3.2: beta_t = min(1 - abar_t / abar_{t-1}, max_beta); the cap avoids beta_T = 1.
    const auto ratio = alpha_bars.slice(0, 1) / alpha_bars.slice(0, 0, timesteps_);
    return (1.0 - ratio).clamp_max(max_beta_);
  }

 private:
  std::int64_t timesteps_;
  double offset_, max_beta_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_schedule(
      {"cosine", "1.0.0", "alpha bar = f(t)/f(0), f = cos^2 (Nichol & Dhariwal 2021, eq. 17)",
       {OptionSpec::integer("timesteps", 1000, "number of diffusion steps T")
            .at_least(1)
            .at_most(double(kMaxTimesteps)),
        OptionSpec::real("s", 0.008, "offset s that keeps beta_1 from vanishing (fraction of T)")
            .at_least(0),
        OptionSpec::real("max_beta", 0.999, "cap on every beta, avoiding a singular last step")
            .greater_than(0).less_than(1)}},
      [](const Options& o) { return std::make_unique<CosineSchedule>(o); });
}
