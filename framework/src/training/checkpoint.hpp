#pragma once
// Checkpoint files: model, optimizer and RNG state at an epoch boundary, written atomically.
#include <cstdint>
#include <optional>
#include <string>

#include <torch/torch.h>

#include "difflab/denoiser.hpp"

namespace difflab {

struct CheckpointPosition {
  std::int64_t epoch = 0;
  std::int64_t step = 0;
};

/// `model`: the network (a denoiser, an autoencoder). Writes to a temporary name, flushes it to disk and renames it (atomic_file.hpp), so neither a
/// crash nor a power cut leaves a half-written checkpoint under its own name.
/// `ema`, when given, is the moving average of the weights, saved beside the model.
void save_checkpoint(const std::string& path, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                     const torch::Generator& generator, CheckpointPosition position,
                     torch::nn::Module* ema = nullptr);

/// Restores what save_checkpoint wrote; `optimizer`, `generator` and `ema` may be null
/// (evaluation only). Tensors are loaded onto `device`, whatever device wrote them; a random
/// state written by another device type's generator is skipped with a warning. Returns
/// whether the file held an average for `ema` (when not, `ema` is left as it was).
struct LoadedCheckpoint {
  CheckpointPosition position;
  bool has_ema = false;
  bool rng_restored = false;  // false without a generator, or for one of another device type
};
LoadedCheckpoint load_checkpoint(const std::string& path, torch::nn::Module& model,
                                 torch::optim::Optimizer* optimizer, torch::Generator* generator,
                                 torch::Device device, torch::nn::Module* ema = nullptr);

/// Why the checkpoint at `path` cannot be read (empty, truncated, not an archive), or nothing when
/// it reads whole. Reads it on the CPU, without touching any model.
std::optional<std::string> unreadable_checkpoint(const std::string& path);

/// What set_aside appends to an unreadable checkpoint's name.
constexpr const char* kSetAsideSuffix = ".unreadable";

/// Renames `path` to `path + kSetAsideSuffix` (kept for a post-mortem, never read again); returns
/// the new name.
std::string set_aside(const std::string& path);

}  // namespace difflab
