#pragma once
// Pictures of where samples lie against the data, for image runs: generated and real images
// projected to 2-D by the principal components of the real ones (a PNG per checkpoint and
// sampler), and the same points in kDistributionComponents dimensions (a JSON file) from which
// the HTML report computes a UMAP in the page. For an autoencoder run: its latent means by class.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "store/run_store.hpp"

namespace difflab {

constexpr std::int64_t kDistributionComponents = 32;  // what the JSON keeps for UMAP
constexpr std::int64_t kDistributionPoints = 200;     // real and generated rows in the JSON

/// Principal components of `rows` ([N, D], flattened features): the mean and the top `k` unit
/// directions [D, k] by variance (eigenvectors of the covariance, float64, signs fixed so each
/// direction's largest entry is positive).
struct Pca {
  torch::Tensor mean, components;
  torch::Tensor project(const torch::Tensor& rows) const;  // [N, k] float64 on the CPU
};
Pca fit_pca(const torch::Tensor& rows, std::int64_t k);

/// distribution-<name>.png (320 px: generated in blue over real in grey, on the first two of
/// `pca`'s components, fitted on `real`) and distribution-<name>.json ({"method": "pca",
/// "components": K, "real": [[...]], "generated": [[...]], "real_labels": [...]}: the first
/// kDistributionPoints rows of each on K components), with their artifact rows
/// (distribution_png, distribution_json).
std::vector<ArtifactRecord> write_distribution_view(const std::filesystem::path& dir, const std::string& name,
                                                    const Pca& pca, const torch::Tensor& real,
                                                    const torch::Tensor& real_labels, const torch::Tensor& generated,
                                                    std::int64_t checkpoint_id, const std::string& sampler);

/// latent-scatter.png: an autoencoder's latent means of test rows coloured by class, on the latent
/// itself when it has two dimensions, else on its first two principal components.
ArtifactRecord write_latent_scatter(const std::filesystem::path& dir, const torch::Tensor& means,
                                    const torch::Tensor& labels, std::int64_t checkpoint_id);

}  // namespace difflab
