#pragma once
// One optimizer step of the denoising loss, written without host synchronisation (the loss
// stays on the device) and with static shapes, so it can be captured in a CUDA graph and
// later vectorised over several models trained as one.
#include <torch/torch.h>

#include "difflab/diffusion.hpp"

namespace difflab {

/// Global gradient norm clipping that never reads the norm back to the host.
void clip_grad_norm_on_device(const std::vector<torch::Tensor>& parameters, double max_norm);

class TrainStep {
 public:
  TrainStep(Denoiser& model, const DiffusionProcess& process, torch::optim::Optimizer& optimizer,
            double grad_clip);

  /// Draws t ~ U{0..T-1} and eps ~ N(0, I) from `generator`, takes one step of
  /// ||model(x_t, t) - target||^2 (Ho et al. 2020, eq. 14) and returns the loss (on the device).
  torch::Tensor operator()(const torch::Tensor& x0, torch::Generator& generator);

 private:
  Denoiser& model_;
  const DiffusionProcess& process_;
  torch::optim::Optimizer& optimizer_;
  double grad_clip_;
  std::vector<torch::Tensor> parameters_;
};

}  // namespace difflab
