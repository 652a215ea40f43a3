#include "difflab/sampler.hpp"

#include <cmath>
#include <limits>

#include "difflab/errors.hpp"

namespace difflab {

namespace {

constexpr const char* kSpacingNames[] = {"leading", "trailing", "linspace", "karras", "exponential"};

Spacing parse_spacing(const std::string& name) {
  for (std::size_t i = 0; i < std::size(kSpacingNames); ++i) {
    if (name == kSpacingNames[i]) return static_cast<Spacing>(i);
  }
  throw InputError("unknown spacing '" + name + "'");
}

// numpy's round (half to even, the default rounding mode), as diffusers rounds its timesteps.
double round_even(double x) { return std::nearbyint(x); }

// Whole timesteps of the three discrete spacings, descending (diffusers' set_timesteps).
std::vector<double> discrete(Spacing spacing, std::int64_t T, std::int64_t S) {
  std::vector<double> ts;
  for (std::int64_t i = 0; i < S; ++i) {
    switch (spacing) {
      case Spacing::leading: ts.push_back(double((S - 1 - i) * (T / S))); break;
      case Spacing::trailing: ts.push_back(round_even(double(T) - double(i) * double(T) / double(S)) - 1); break;
      default:  // linspace
        ts.push_back(S == 1 ? 0.0 : round_even(double(T - 1) * double(S - 1 - i) / double(S - 1)));
    }
  }
  return ts;
}

// S noise levels from sigma_max down to sigma_min: Karras et al. 2022, eq. 5 (rho), or evenly
// in log sigma (exponential).
std::vector<double> sigma_ramp(Spacing spacing, double sigma_min, double sigma_max, double rho,
                               std::int64_t S) {
  std::vector<double> sigmas;
  for (std::int64_t i = 0; i < S; ++i) {
    const double f = S == 1 ? 0.0 : double(i) / double(S - 1);
    if (spacing == Spacing::karras) {
      const double a = std::pow(sigma_max, 1.0 / rho), b = std::pow(sigma_min, 1.0 / rho);
      sigmas.push_back(std::pow(a + f * (b - a), rho));
    } else {
      sigmas.push_back(std::exp(std::log(sigma_max) + f * (std::log(sigma_min) - std::log(sigma_max))));
    }
  }
  return sigmas;
}

std::string number(double v) { return format_option(OptionValue(v)); }

}  // namespace

std::vector<OptionSpec> TimestepSpacing::options() {
  return {OptionSpec::text("spacing", "trailing",
                           "where the steps fall: leading, trailing (starts at T-1), linspace, "
                           "karras (rho) or exponential in sigma",
                           std::vector<std::string>(std::begin(kSpacingNames), std::end(kSpacingNames))),
          OptionSpec::real("rho", 7.0, "karras spacing's exponent (Karras et al. 2022, eq. 5)").greater_than(0),
          OptionSpec::real("sigma_min", 0.0, "smallest sigma of karras/exponential spacing (0: the schedule's)")
              .at_least(0),
          OptionSpec::real("sigma_max", 0.0, "largest sigma of karras/exponential spacing (0: the schedule's)")
              .at_least(0)};
}

TimestepSpacing TimestepSpacing::from(const Options& o) {
  return {parse_spacing(o.text("spacing")), o.real("rho"), o.real("sigma_min"), o.real("sigma_max")};
}

std::vector<double> TimestepSpacing::timesteps(const DiffusionProcess& process, std::int64_t steps,
                                               const std::string& sampler) const {
  const std::int64_t T = process.timesteps();
  if (steps < 1 || steps > T) {
    throw InputError(sampler + ": steps (" + std::to_string(steps) + ") must lie in 1.." +
                     std::to_string(T) + ", the schedule's timesteps");
  }
  if (spacing != Spacing::karras && spacing != Spacing::exponential) return discrete(spacing, T, steps);
  // The ramp's first point is T-1, x_T's own noise level, also where sigma_max lies below the
  // schedule's sigma there (user-set, heun's default of 80, or a zero terminal SNR's sigma = inf):
  // the first step jumps from T-1 to the ramp's second point. Above sigma ~ 80 the probability-
  // flow ODE is close to linear in sigma, so the jump costs no accuracy, and the ramp keeps its
  // resolution where sigma is near the data's scale.
  const double top_finite_t = process.zero_terminal_snr() ? double(std::max<std::int64_t>(T - 2, 0)) : double(T - 1);
  const double lo = process.sigma_at(0.0), hi = process.sigma_at(top_finite_t);
  const double s_min = sigma_min > 0 ? sigma_min : lo, s_max = sigma_max > 0 ? std::min(sigma_max, hi) : hi;
  if (s_min < lo * (1 - 1e-9) || !(s_min < s_max)) {
    throw InputError(sampler + ": sigma_min (" + number(s_min) + ") and sigma_max (" + number(s_max) +
                     ") must satisfy " + number(lo) + " <= sigma_min < sigma_max, within the schedule's range " +
                     "of sigma (" + number(lo) + " to " + number(hi) + ")");
  }
  std::vector<double> ts;
  for (double s : sigma_ramp(spacing, s_min, s_max, rho, steps)) ts.push_back(process.t_from_sigma(s));
  ts.front() = double(T - 1);
  if (sigma_min == 0 && ts.size() > 1) ts.back() = 0.0;  // exactly, not the inverse's rounding
  return ts;
}

OptionSpec steps_option(std::int64_t default_steps, const std::string& help) {
  return OptionSpec::integer("steps", default_steps, help).at_least(1);
}

}  // namespace difflab
