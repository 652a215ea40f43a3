#pragma once
// An autoencoder for latent diffusion (Rombach et al. 2022): an encoder to a diagonal Gaussian
// q(z|x) and a decoder back to data space. A latent run trains its denoiser on the encoder's means
// and decodes the denoiser's samples before image metrics and pictures.
#include "difflab/export.hpp"
#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace difflab {

/// A diagonal Gaussian q(z|x) = N(mean, exp(logvar)), both [B, ...latent shape].
struct LatentDistribution {
  torch::Tensor mean;
  torch::Tensor logvar;
};

class DIFFLAB_API Autoencoder : public torch::nn::Module {
 public:
  /// x [B, ...input shape] (images in [-1, 1]) -> q(z|x).
  virtual LatentDistribution encode(const torch::Tensor& x) = 0;
  /// z [B, ...latent shape] -> [B, ...input shape].
  virtual torch::Tensor decode(const torch::Tensor& z) = 0;
  /// The latent shape of one input of shape `input` ([C, H, W]); throws InputError saying why
  /// when the network cannot take that shape (a size its downsamplings do not divide).
  virtual std::vector<std::int64_t> latent_shape(const std::vector<std::int64_t>& input) const = 0;
};

/// KL(q || N(0, I)) of each row, summed over the latent dimensions (Kingma & Welling 2014,
/// appendix B): 0.5 sum(mean^2 + exp(logvar) - 1 - logvar); [B].
DIFFLAB_API torch::Tensor gaussian_kl(const LatentDistribution& q);

/// z = mean + exp(logvar / 2) eps with eps ~ N(0, I) from `generator` (the reparameterisation
/// trick, Kingma & Welling 2014, sec. 2.4).
DIFFLAB_API torch::Tensor sample_latent(const LatentDistribution& q, torch::Generator& generator);

}  // namespace difflab
