#pragma once
// A dataset in an autoencoder's latent space, for latent diffusion (Rombach et al. 2022): the
// encoder's means of both splits, scaled to unit variance, computed once per autoencoder
// checkpoint and cached on disk under a key of the autoencoder's identity and checkpoint.
#include <cstdint>
#include <filesystem>
#include <string>

#include <torch/torch.h>

#include "difflab/autoencoder.hpp"
#include "difflab/dataset.hpp"

namespace difflab {

struct LatentData {
  DataSplit train, test;  // scale x mean of q(z|x) of each row; the dataset's labels
  /// 1 / std of the train split's latents (every element), so the diffused data has unit
  /// variance as the forward process assumes (Rombach et al. 2022, sec. 4.3.2 and appendix G).
  double scale = 1.0;
  std::filesystem::path file;  // the cache file
  bool reused = false;         // read from the cache rather than computed
};

/// The cache key of an autoencoder's checkpoint: its run's training identity (train_hash, which
/// covers the dataset and seed it was trained on) and the checkpoint's step.
std::string latent_cache_key(const std::string& autoencoder_hash, std::int64_t step);

/// The latents of `train` and `test` under `autoencoder` (weights loaded, any device): read from
/// `cache_dir`/<key>.pt when it holds them for splits of these sizes, else encoded in batches and
/// written there atomically. Returned on `device`.
LatentData encode_dataset(Autoencoder& autoencoder, const DataSplit& train, const DataSplit& test,
                          const std::filesystem::path& cache_dir, const std::string& key, torch::Device device);

/// The means of q(z|x) of the rows of `x`, encoded in batches.
torch::Tensor encode_means(Autoencoder& autoencoder, const torch::Tensor& x);

/// decode(latents / scale) in batches, clamped to the data's range [-1, 1].
torch::Tensor decode_latents(Autoencoder& autoencoder, const torch::Tensor& latents, double scale);

}  // namespace difflab
