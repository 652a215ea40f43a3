#include "training/training_schedule.hpp"

#include <cmath>

#include "difflab/errors.hpp"

namespace difflab {

double learning_rate(const TrainConfig& train, std::int64_t step, std::int64_t total_steps) {
  if (step < train.warmup_steps) {
    return train.lr * static_cast<double>(step + 1) / static_cast<double>(train.warmup_steps);
  }
  if (train.lr_schedule != "cosine") return train.lr;
  const auto decay_steps = std::max<std::int64_t>(1, total_steps - train.warmup_steps);
  const double progress =
      std::min(1.0, static_cast<double>(step - train.warmup_steps) / static_cast<double>(decay_steps));
  return train.min_lr + 0.5 * (train.lr - train.min_lr) * (1.0 + std::cos(M_PI * progress));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

WeightAverage::WeightAverage(Denoiser& model, std::shared_ptr<Denoiser> shadow, double decay)
    : model_(model), shadow_(std::move(shadow)), decay_(decay) {
  model_params_ = model_.parameters();
  shadow_params_ = shadow_->parameters();
  model_buffers_ = model_.buffers();
  shadow_buffers_ = shadow_->buffers();
  if (model_params_.size() != shadow_params_.size()) {
    throw RunError("the EMA copy of the model has " + std::to_string(shadow_params_.size()) +
                   " parameters, the model " + std::to_string(model_params_.size()));
  }
  for (auto& p : shadow_params_) p.requires_grad_(false);
  reset();
}

void WeightAverage::update() {
  torch::NoGradGuard no_grad;
  torch::_foreach_mul_(shadow_params_, decay_);
  torch::_foreach_add_(shadow_params_, model_params_, 1.0 - decay_);
  copy_buffers();
}

void WeightAverage::reset() {
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < model_params_.size(); ++i) shadow_params_[i].copy_(model_params_[i]);
  copy_buffers();
}

void WeightAverage::copy_buffers() {
  for (std::size_t i = 0; i < model_buffers_.size(); ++i) shadow_buffers_[i].copy_(model_buffers_[i]);
}

}  // namespace difflab
