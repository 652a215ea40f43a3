#pragma once
// The training layer: the training step and its loss (this header), the learning-rate schedule
// and the weights' moving average, optimizer state keys, checkpoint files and crash points. It
// uses io, config and the api layer; the loop that drives it is the engine's.
//
// One optimizer step of the denoising loss, written without host synchronisation (the loss
// stays on the device) and with static shapes, so it can be captured in a CUDA graph and
// later vectorised over several models trained as one.
#include <torch/torch.h>

#include "difflab/diffusion.hpp"

namespace difflab {

/// Global gradient norm clipping that never reads the norm back to the host.
void clip_grad_norm_on_device(const std::vector<torch::Tensor>& parameters, double max_norm);

/// What the denoising loss adds to the plain one.
struct LossSettings {
  /// Probability that a label is replaced by -1 (no label), so the model also learns the
  /// unconditional output that classifier-free guidance extrapolates from.
  double label_dropout = 0.0;
  /// > 0: weight each example by min(SNR_t, gamma) in the prediction type's units (Hang et al.
  /// 2023, min-SNR-gamma); 0: the plain mean squared error.
  double min_snr_gamma = 0.0;
};

/// Hang et al. 2023, sec. 3.4: min(SNR, gamma) is the weight on the x0 error; as the losses of
/// the other parametrisations are the x0 error times SNR (epsilon) or SNR + 1 (v), their weights
/// are min(SNR, gamma) / SNR and min(SNR, gamma) / (SNR + 1). `snr` = abar / (1 - abar) [B].
torch::Tensor min_snr_weights(Prediction prediction, const torch::Tensor& snr, double gamma);

/// The denoising loss of one batch, its draws from `generator` in a fixed order: t ~ U{0..T-1},
/// eps ~ N(0, I), then the label dropout mask (Ho et al. 2020, eq. 14). Shared by the eager and
/// the graphed step, so both draw the same numbers. The model's forward runs inside the graphed
/// step's capture, so it reads no value back to the host (label ranges are checked beforehand).
torch::Tensor denoising_loss(Denoiser& model, const DiffusionProcess& process, const torch::Tensor& x0,
                             const torch::Tensor& labels, torch::Generator& generator,
                             const LossSettings& loss);

class TrainStep {
 public:
  TrainStep(Denoiser& model, const DiffusionProcess& process, torch::optim::Optimizer& optimizer,
            double grad_clip, LossSettings loss = {});

  /// Draws t ~ U{0..T-1} and eps ~ N(0, I) from `generator`, takes one step of
  /// ||model(x_t, t, labels) - target||^2 (Ho et al. 2020, eq. 14) and returns the loss (on the
  /// device). `labels` may be undefined (unconditional); models without classes ignore them.
  torch::Tensor operator()(const torch::Tensor& x0, const torch::Tensor& labels, torch::Generator& generator);

 private:
  Denoiser& model_;
  const DiffusionProcess& process_;
  torch::optim::Optimizer& optimizer_;
  double grad_clip_;
  LossSettings loss_;
  std::vector<torch::Tensor> parameters_;
};

}  // namespace difflab
