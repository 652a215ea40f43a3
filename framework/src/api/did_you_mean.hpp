#pragma once
// The api layer (bottom): the implementation of the public plugin API in framework/include/difflab
// (libdifflab: options, the forward process, schedules' checks, datasets' helpers) and the
// did-you-mean suggestions every layer's errors make. It uses only the public API's headers.
//
// did_you_mean: the suggestion every "unknown name" error makes (plugins, keys, commands, sweeps).
#include <string>
#include <vector>

#include "difflab/export.hpp"

namespace difflab {

/// The closest candidate to `word` by edit distance, or "" when none is close enough.
DIFFLAB_API std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace difflab
