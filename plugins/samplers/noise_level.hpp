#pragma once
// A noise level on the sampling path in the quantities the sigma-space samplers (euler,
// euler_ancestral, heun, plms) step with; the DPM-Solver family uses multistep.hpp's, in Lu et
// al.'s notation.
#include <cmath>

#include "difflab/diffusion.hpp"

namespace difflab::samplers {

/// The defaults are the data (abar = 1, sigma = 0), where sampling ends.
struct Level {
  double t = 0.0;      // timestep given to the model (unused at the data)
  double sigma = 0.0;  // Karras sigma = sqrt((1 - abar) / abar); inf where abar = 0
  double sqrt_abar = 1.0;
  double sqrt_one_minus_abar = 0.0;
};

inline Level level_at(const DiffusionProcess& p, double t) {
  const double abar = p.alpha_bar_at(t);
  return {t, p.sigma_at(t), std::sqrt(abar), std::sqrt(1.0 - abar)};
}

}  // namespace difflab::samplers
