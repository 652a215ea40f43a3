#pragma once
// The few error types difflab throws; `runner` maps them to exit codes (input 2, run 1).
#include "difflab/export.hpp"
#include <stdexcept>
#include <string>

namespace difflab {

/// Something the user gave is wrong: a file, a flag, a sweep key, a plugin library. Exit code 2.
class DIFFLAB_API InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A plugin library cannot be used (not a plugin, wrong API or torch version, bad registration).
class DIFFLAB_API PluginError : public InputError {
 public:
  using InputError::InputError;
};

/// A run failed while training or evaluating (NaN loss, a plugin threw). Exit code 1.
class DIFFLAB_API RunError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace difflab
