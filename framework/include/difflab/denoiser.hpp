#pragma once
// The network a diffusion model trains: maps (x_t, t, conditioning) to its prediction.
#include "difflab/export.hpp"
#include <torch/torch.h>

namespace difflab {

/// What the network outputs; samplers and losses convert between them via DiffusionProcess.
enum class Prediction { epsilon, x0, v };

DIFFLAB_API Prediction parse_prediction(const std::string& name);  // "epsilon" | "x0" | "v"
DIFFLAB_API const char* prediction_name(Prediction prediction);

/// Sinusoidal features of timesteps (Vaswani et al. 2017, sec. 3.5, as Ho et al. 2020 use them):
/// [sin(t w_k), cos(t w_k)] with w_k = 10000^(-k / half), k = 0..half-1, half = dim / 2; [B, 2 half].
DIFFLAB_API torch::Tensor timestep_embedding(const torch::Tensor& t, std::int64_t dim);

/// Optional conditioning; an undefined `labels` tensor means unconditional.
struct Conditioning {
  torch::Tensor labels;         // int64 [B] class labels
  double guidance_scale = 1.0;  // classifier-free guidance weight (1: plain conditional)
};

/// A denoising network. `t` holds timestep indices 0..T-1 as a float tensor [B] (fractional
/// values are allowed for samplers that work in continuous time).
class DIFFLAB_API Denoiser : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x_t, const torch::Tensor& t,
                                const Conditioning& cond) = 0;
  virtual Prediction prediction() const { return Prediction::epsilon; }
};

}  // namespace difflab
