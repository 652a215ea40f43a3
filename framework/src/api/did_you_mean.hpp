#pragma once
// did_you_mean: the suggestion every "unknown name" error makes (plugins, keys, commands, sweeps).
#include <string>
#include <vector>

#include "difflab/export.hpp"

namespace difflab {

/// The closest candidate to `word` by edit distance, or "" when none is close enough.
DIFFLAB_API std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace difflab
