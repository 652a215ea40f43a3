#include "difflab/noise_schedule.hpp"

#include "difflab/errors.hpp"

namespace difflab {

std::vector<OptionSpec> BetaRange::options() {
  return {OptionSpec::integer("timesteps", 1000, "number of diffusion steps T")
              .at_least(1)
              .at_most(double(kMaxTimesteps)),
          OptionSpec::real("beta_start", 1e-4, "beta_1, the variance added at the first step")
              .greater_than(0)
              .less_than(1),
          OptionSpec::real("beta_end", 0.02, "beta_T, the variance added at the last step")
              .greater_than(0)
              .less_than(1)};
}

BetaRange BetaRange::from(const Options& options, const std::string& plugin) {
  BetaRange range{options.integer("timesteps"), options.real("beta_start"), options.real("beta_end")};
  if (range.beta_start > range.beta_end) {
    throw InputError("schedule '" + plugin + "': beta_start (" +
                     format_option(options.values().at("beta_start")) + ") exceeds beta_end (" +
                     format_option(options.values().at("beta_end")) +
                     "); betas must not shrink with t, swap them");
  }
  return range;
}

torch::Tensor rescale_zero_terminal_snr(const torch::Tensor& betas) {
  // Lin et al. 2024, Algorithm 1: shift sqrt(abar) so that its last value is 0, scale it so that
  // its first is unchanged, and turn the result back into betas.
  const auto b = betas.to(torch::kCPU, torch::kFloat64);
  auto root = torch::cumprod(1.0 - b, 0).sqrt();
  const double first = root[0].item<double>(), last = root[-1].item<double>();
  if (root.size(0) < 2 || !(first > last)) {
    throw InputError("rescale_zero_terminal_snr needs at least two timesteps with abar falling");
  }
  root = (root - last) * (first / (first - last));
  const auto alpha_bars = root.square();
  const auto alphas = torch::cat({alpha_bars.slice(0, 0, 1), alpha_bars.slice(0, 1) / alpha_bars.slice(0, 0, -1)});
  return 1.0 - alphas;
}

}  // namespace difflab
