#include "engine/distribution_view.hpp"

#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/point_pictures.hpp"
#include "io/atomic_file.hpp"
#include "io/image_io.hpp"

namespace difflab {
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kPixels = 320;

nlohmann::json rows_json(const torch::Tensor& rows) {
  const auto r = rows.to(torch::kCPU, torch::kDouble).contiguous();
  nlohmann::json out = nlohmann::json::array();
  const auto* p = r.data_ptr<double>();
  for (std::int64_t i = 0; i < r.size(0); ++i) {
    nlohmann::json row = nlohmann::json::array();
    for (std::int64_t j = 0; j < r.size(1); ++j) row.push_back(static_cast<float>(p[i * r.size(1) + j]));
    out.push_back(std::move(row));
  }
  return out;
}

void write_text(const std::string& path, const std::string& text) {
  const auto temporary = temporary_path(path);
  {
    std::ofstream out(temporary, std::ios::binary);
    out << text;
  }
  publish_file(temporary, path);
}

}  // namespace

torch::Tensor Pca::project(const torch::Tensor& rows) const {
  return torch::matmul(rows.flatten(1).to(torch::kCPU, torch::kDouble) - mean, components);
}

Pca fit_pca(const torch::Tensor& rows, std::int64_t k) {
  const auto x = rows.flatten(1).to(torch::kCPU, torch::kDouble);
  const auto mean = x.mean(0);
  const auto centred = x - mean;
  const auto cov = torch::matmul(centred.t(), centred) / std::max<std::int64_t>(x.size(0) - 1, 1);
  const auto vectors = std::get<1>(torch::linalg_eigh(cov));  // by ascending eigenvalue
  const auto kept = std::min<std::int64_t>(k, x.size(1));
  auto components = vectors.flip({1}).slice(1, 0, kept).contiguous();
  // An eigenvector's sign is arbitrary: fix it so pictures of two checkpoints agree.
  const auto largest = components.abs().argmax(0);
  const auto signs = components.gather(0, largest.unsqueeze(0)).sign();
  components = components * torch::where(signs == 0, torch::ones_like(signs), signs);
  return {mean, components};
}

std::vector<ArtifactRecord> write_distribution_view(const fs::path& dir, const std::string& name, const Pca& pca,
                                                    const torch::Tensor& real, const torch::Tensor& real_labels,
                                                    const torch::Tensor& generated, std::int64_t checkpoint_id,
                                                    const std::string& sampler) {
  const auto real_points = pca.project(real);
  const auto generated_points = pca.project(generated);
  const auto window = plot_window(real_points.slice(1, 0, 2));
  const auto png = (dir / ("distribution-" + name + ".png")).string();
  write_png(png, palette_rgb(scatter_indices(real_points.slice(1, 0, 2), generated_points.slice(1, 0, 2), window,
                                             kPixels)));
  nlohmann::json view = {{"method", "pca"},
                         {"components", pca.components.size(1)},
                         {"real", rows_json(real_points.slice(0, 0, kDistributionPoints))},
                         {"generated", rows_json(generated_points.slice(0, 0, kDistributionPoints))}};
  if (real_labels.defined()) {
    const auto labels = real_labels.slice(0, 0, kDistributionPoints).to(torch::kCPU, torch::kLong).contiguous();
    view["real_labels"] = std::vector<std::int64_t>(labels.data_ptr<std::int64_t>(),
                                                    labels.data_ptr<std::int64_t>() + labels.numel());
  }
  const auto json_file = (dir / ("distribution-" + name + ".json")).string();
  write_text(json_file, view.dump());
  return {{checkpoint_id, sampler, "distribution_png", png}, {checkpoint_id, sampler, "distribution_json", json_file}};
}

ArtifactRecord write_latent_scatter(const fs::path& dir, const torch::Tensor& means, const torch::Tensor& labels,
                                    std::int64_t checkpoint_id) {
  const auto flat = means.flatten(1).to(torch::kCPU, torch::kDouble);
  const auto points = flat.size(1) == 2 ? flat : fit_pca(flat, 2).project(flat);
  const auto png = (dir / "latent-scatter.png").string();
  write_png(png, class_scatter_rgb(points, labels, plot_window(points), kPixels));
  return {checkpoint_id, "", "latent_scatter_png", png};
}

}  // namespace difflab
