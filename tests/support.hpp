#pragma once
// Shared test set-up: the real built plugins, temporary folders, the runner binary.
#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "loader/registry.hpp"

namespace difflab::test {

/// The registry with every plugin of this build loaded (once per test process).
Registry& plugins();

/// A fresh, empty temporary folder, removed at process exit is not promised.
std::filesystem::path temp_dir(const std::string& name);

/// Path of the built `runner` executable.
std::string runner_path();

/// Torch on one thread for a scope: small tensors run fastest so, and OpenMP threads that spin
/// for busy cores slow a shared machine down.
class SingleThread {
 public:
  SingleThread() : saved_(torch::get_num_threads()) { torch::set_num_threads(1); }
  ~SingleThread() { torch::set_num_threads(saved_); }

 private:
  int saved_;
};

/// Runs a shell command, returns its exit status and captures stdout+stderr in `output`.
int run_command(const std::string& command, std::string* output = nullptr);

/// The shape of a big store for report tests: `runs` done runs of sweep "big" (axes
/// schedule.plugin = linear and seed = the run's index r), each with checkpoints k = 1..`checkpoints`
/// (epoch 10 k, step 100 k) holding test_loss = 1 / k and, per sampler, mmd = 0.01 r / k and
/// wasserstein = 0.1 + (r % 7) / k (so every 7th run ties at all checkpoints), and `losses` loss
/// records 1 / e for e = 1..losses.
struct BigStore {
  int runs = 200;
  int checkpoints = 10;
  std::vector<std::string> samplers = {"ddpm", "ddim(steps=50,eta=0)"};
  int losses = 0;
};

/// Writes a BigStore into a new store at `path`, in one transaction.
void make_big_store(const std::string& path, const BigStore& shape);

/// Everything a store holds that must not depend on how its runs were launched (ids, times and
/// folders aside), one line per row: runs, losses, checkpoints, metrics to 17 digits, artifacts
/// with their file names.
std::vector<std::string> recorded_rows(const std::filesystem::path& db);

}  // namespace difflab::test
