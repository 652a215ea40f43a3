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

}  // namespace difflab
