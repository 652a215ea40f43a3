#pragma once
// What changes along training besides the weights: the learning rate (warm-up, cosine decay)
// and the exponential moving average of the weights that evaluation uses.
#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "difflab/denoiser.hpp"
#include "config/sweep_grid.hpp"

namespace difflab {

/// The learning rate before optimizer step `step` (0-based) of `total_steps`: linear warm-up from
/// lr / warmup_steps to lr, then constant or a cosine decay to min_lr (Loshchilov & Hutter 2017,
/// as the improved-DDPM and EDM trainers use).
double learning_rate(const TrainConfig& train, std::int64_t step, std::int64_t total_steps);

/// Sets every parameter group's learning rate.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

/// EMA of a model's parameters, kept in a second instance of the same network:
/// shadow <- decay * shadow + (1 - decay) * model after each step, on the device, no host sync.
/// Buffers are copied as they are.
class WeightAverage {
 public:
  WeightAverage(Denoiser& model, std::shared_ptr<Denoiser> shadow, double decay);

  void update();
  /// Sets the average to the model's current weights (start of training, or a checkpoint
  /// written without an average).
  void reset();
  Denoiser& weights() { return *shadow_; }
  double decay() const { return decay_; }

 private:
  void copy_buffers();

  Denoiser& model_;
  std::shared_ptr<Denoiser> shadow_;
  double decay_;
  std::vector<torch::Tensor> model_params_, shadow_params_, model_buffers_, shadow_buffers_;
};

}  // namespace difflab
