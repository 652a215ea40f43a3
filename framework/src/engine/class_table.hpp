#pragma once
// The one check of a model's class table against the labels it will be given: by `runner
// validate` (the dataset's classes) and before training (the loaded labels too). The models'
// forward cannot check them: it reads nothing back to the host (a CUDA graph capture forbids it).
#include <cstdint>

#include "config/sweep_grid.hpp"

namespace difflab {

/// InputError when the run's model has a class table (its option num_classes > 0, as the in-tree
/// models name it) with fewer than `needed` classes (labels 0..needed-1 of the run's dataset).
void check_class_table(const RunConfig& run, std::int64_t needed);

}  // namespace difflab
