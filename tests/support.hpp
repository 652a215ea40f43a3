#pragma once
// Shared test set-up: the real built plugins, temporary folders, the runner binary.
#include <filesystem>
#include <string>

#include "difflab/registry.hpp"

namespace difflab::test {

/// The registry with every plugin of this build loaded (once per test process).
Registry& plugins();

/// A fresh, empty temporary folder, removed at process exit is not promised.
std::filesystem::path temp_dir(const std::string& name);

/// Path of the built `runner` executable.
std::string runner_path();

/// Runs a shell command, returns its exit status and captures stdout+stderr in `output`.
int run_command(const std::string& command, std::string* output = nullptr);

}  // namespace difflab::test
