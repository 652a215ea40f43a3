#pragma once
// What the trainer trains. The trainer owns the loop every kind of training shares (epochs and
// steps, resume from the last readable checkpoint, the learning-rate schedule, losses, the NaN
// check, checkpoint files and records, progress); a task owns its networks and says what differs:
// the loss of one step, the data its batches are drawn from, and what a checkpoint holds.
// Two tasks train: denoising (Ho et al. 2020) and an autoencoder (a VAE for latent diffusion).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "difflab/dataset.hpp"
#include "training/checkpoint.hpp"

namespace difflab {

struct RunContext;

class TrainingTask {
 public:
  virtual ~TrainingTask() = default;

  /// The rows batches are drawn from (x and, where the data has them, labels), on the device.
  virtual const DataSplit& training_data() const = 0;
  /// What the optimizer updates, in a fixed order (its state in a checkpoint follows it).
  virtual std::vector<torch::Tensor> parameters() = 0;
  /// Called once the optimizer holds its (resumed) state, before the first step: puts the
  /// networks in training mode and builds the step (eager, or captured in a CUDA graph).
  virtual void prepare(torch::optim::Optimizer& optimizer, const std::string& tag) = 0;
  /// One optimizer step on a batch; the loss stays on the device. Every random number comes from
  /// `generator`, in an order fixed by the task, so a resumed run draws what it would have.
  virtual torch::Tensor step(const torch::Tensor& x, const torch::Tensor& labels,
                             torch::Generator& generator) = 0;
  /// After each step (a moving average of the weights).
  virtual void after_step() {}
  /// The mean of each part of the loss over the steps since the last call, as a JSON object
  /// ({"reconstruction": 0.012, "kl": 31.5}), then starts again; "" when the loss has no parts.
  /// The trainer records it with each epoch's loss.
  virtual std::string take_loss_terms() { return ""; }

  /// Writes a checkpoint: the networks, the optimizer's state, the generator's and the position.
  virtual void save(const std::string& file, torch::optim::Optimizer& optimizer,
                    const torch::Generator& generator, CheckpointPosition position) = 0;
  /// Restores what save wrote; `optimizer` and `generator` are null when only the weights are
  /// wanted (evaluating a written checkpoint).
  virtual CheckpointPosition load(const std::string& file, torch::optim::Optimizer* optimizer,
                                  torch::Generator* generator) = 0;
  /// Which weights evaluation reads in a checkpoint ("model", "ema(0.999)"), as recorded.
  virtual std::string evaluated_name() const = 0;
};

/// Denoising: ||model(x_t, t, labels) - target||^2 with t ~ U{0..T-1} and eps ~ N(0, I) (Ho et
/// al. 2020, eq. 14), label dropout for classifier-free guidance, the model's moving average;
/// on CUDA the step runs as a CUDA graph (cuda_graphs.hpp).
class DenoisingTask final : public TrainingTask {
 public:
  explicit DenoisingTask(RunContext& ctx);
  const DataSplit& training_data() const override;
  std::vector<torch::Tensor> parameters() override;
  void prepare(torch::optim::Optimizer& optimizer, const std::string& tag) override;
  torch::Tensor step(const torch::Tensor& x, const torch::Tensor& labels, torch::Generator& generator) override;
  void after_step() override;
  void save(const std::string& file, torch::optim::Optimizer& optimizer, const torch::Generator& generator,
            CheckpointPosition position) override;
  CheckpointPosition load(const std::string& file, torch::optim::Optimizer* optimizer,
                          torch::Generator* generator) override;
  std::string evaluated_name() const override;

 private:
  RunContext& ctx_;
  std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, torch::Generator&)> step_;
};

}  // namespace difflab

namespace difflab {

/// An autoencoder (Kingma & Welling 2014): ||decode(z) - x||^2 per pixel with z ~ q(z|x) drawn by
/// the reparameterisation trick, plus kl_weight x KL(q(z|x) || N(0, I)) per image. Both parts
/// are reported per epoch (take_loss_terms).
class AutoencoderTask final : public TrainingTask {
 public:
  explicit AutoencoderTask(RunContext& ctx);
  const DataSplit& training_data() const override;
  std::vector<torch::Tensor> parameters() override;
  void prepare(torch::optim::Optimizer& optimizer, const std::string& tag) override;
  torch::Tensor step(const torch::Tensor& x, const torch::Tensor& labels, torch::Generator& generator) override;
  std::string take_loss_terms() override;
  void save(const std::string& file, torch::optim::Optimizer& optimizer, const torch::Generator& generator,
            CheckpointPosition position) override;
  CheckpointPosition load(const std::string& file, torch::optim::Optimizer* optimizer,
                          torch::Generator* generator) override;
  std::string evaluated_name() const override { return "model"; }

 private:
  RunContext& ctx_;
  torch::optim::Optimizer* optimizer_ = nullptr;
  double kl_weight_;
  torch::Tensor reconstruction_sum_, kl_sum_;  // on the device: no host read per step
  std::int64_t steps_ = 0;
};

}  // namespace difflab
