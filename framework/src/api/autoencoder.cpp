#include "difflab/autoencoder.hpp"

namespace difflab {

torch::Tensor gaussian_kl(const LatentDistribution& q) {
  const auto terms = q.mean.pow(2) + q.logvar.exp() - 1.0 - q.logvar;
  return 0.5 * terms.flatten(1).sum(1);
}

torch::Tensor sample_latent(const LatentDistribution& q, torch::Generator& generator) {
  return q.mean + (0.5 * q.logvar).exp() * torch::randn(q.mean.sizes(), generator, q.mean.options());
}

}  // namespace difflab
