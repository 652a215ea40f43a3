#pragma once
// The option lists the in-tree samplers share: a sampler's own options followed by the spacing
// options every sampler takes (TimestepSpacing).
#include <cstdint>
#include <vector>

#include "difflab/sampler.hpp"

namespace difflab::samplers {

/// `own`, then TimestepSpacing::options().
inline std::vector<OptionSpec> with_spacing(std::vector<OptionSpec> own) {
  for (auto& spec : TimestepSpacing::options()) own.push_back(std::move(spec));
  return own;
}

/// The `steps` option of a sampler that calls the model once per timestep visited.
inline OptionSpec one_call_steps(std::int64_t default_steps) {
  return steps_option(default_steps, "timesteps visited, one model call each; the last steps to the data");
}

}  // namespace difflab::samplers
