// plms: pseudo linear multistep, DDIM's transfer driven by an Adams-Bashforth combination of the
// last four predicted noises (Liu et al. 2022, PNDM; diffusers' PNDMScheduler with
// skip_prk_steps, without its second model call on the first step).
#include <cmath>
#include <deque>
#include <vector>

#include "difflab/plugin.hpp"
#include "noise_level.hpp"
#include "sampler_options.hpp"

namespace {
using namespace difflab;

using samplers::Level;
using samplers::level_at;

constexpr std::size_t kHistory = 4;  // noises the 4th-order combination uses

// Liu et al. 2022, eq. 12: eps' = (55 e_0 - 59 e_1 + 37 e_2 - 9 e_3) / 24 (newest first), the
// 4th-order Adams-Bashforth weights; while fewer noises are known, the Adams-Bashforth weights of
// order 1 to 3, as diffusers' step_plms, so every step costs one model call.
torch::Tensor combined_epsilon(const std::deque<torch::Tensor>& e) {
  switch (e.size()) {
    case 1: return e[0];
    case 2: return (3.0 * e[0] - e[1]) / 2.0;
    case 3: return (23.0 * e[0] - 16.0 * e[1] + 5.0 * e[2]) / 12.0;
    default: return (55.0 * e[0] - 59.0 * e[1] + 37.0 * e[2] - 9.0 * e[3]) / 24.0;
  }
}

class PlmsSampler final : public Sampler {
 public:
  explicit PlmsSampler(const Options& o)
      : steps_(o.integer("steps")), spacing_(TimestepSpacing::from(o)) {}

  std::int64_t steps(std::int64_t) const override { return steps_; }

  torch::Tensor sample(const SamplingContext& ctx, torch::Tensor x) const override {
    const auto& p = ctx.process;
    const auto ts = spacing_.timesteps(p, steps_, "plms");
    std::deque<torch::Tensor> history;  // predicted noises, newest first
    for (std::size_t i = 0; i < ts.size(); ++i) {
      const auto d = denoise_at(ctx, x, ts[i]);
      history.push_front(d.epsilon);
      if (history.size() > kHistory) history.pop_back();
      const Level next = i + 1 < ts.size() ? level_at(p, ts[i + 1]) : Level{};
      x = transfer(x, d, history, level_at(p, ts[i]), next);
      if (ctx.on_step) ctx.on_step(static_cast<std::int64_t>(i), x);
    }
    return x;
  }

 private:
  // Liu et al. 2022, eq. 9 (DDIM's update, Song et al. 2021, eq. 12 with sigma = 0) with eps':
  // x0' = (x - sqrt(1 - abar) eps') / sqrt(abar), x_next = sqrt(abar_next) x0' +
  // sqrt(1 - abar_next) eps'.
  static torch::Tensor transfer(const torch::Tensor& x, const Denoised& d,
                                const std::deque<torch::Tensor>& history, const Level& cur,
                                const Level& next) {
    // At abar = 0 (a zero terminal SNR, only ever the first step) x holds no trace of x0, so x0'
    // cannot be formed: take the model's x0 and eps, a first-order (DDIM) step.
    if (cur.sqrt_abar == 0.0) return next.sqrt_abar * d.x0 + next.sqrt_one_minus_abar * d.epsilon;
    const auto eps = combined_epsilon(history);
    const auto x0 = (x - cur.sqrt_one_minus_abar * eps) / cur.sqrt_abar;
    return next.sqrt_abar * x0 + next.sqrt_one_minus_abar * eps;
  }

  std::int64_t steps_;
  TimestepSpacing spacing_;
};

std::vector<OptionSpec> plms_options() { return samplers::with_spacing({samplers::one_call_steps(20)}); }

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_sampler(
      {"plms", "1.0.0",
       "Pseudo linear multistep: DDIM's update with a 4th-order Adams-Bashforth combination of "
       "the noise predictions, `steps` model calls (Liu et al. 2022, eq. 12)",
       plms_options()},
      [](const Options& o) { return std::make_unique<PlmsSampler>(o); });
}
