#include "engine/latent_data.hpp"

#include <cmath>

#include <spdlog/spdlog.h>

#include "config/sweep_grid.hpp"
#include "difflab/errors.hpp"
#include "io/atomic_file.hpp"

namespace difflab {
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kBatch = 500;  // rows per encoder or decoder call

}  // namespace

torch::Tensor encode_means(Autoencoder& autoencoder, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (std::int64_t i = 0; i < x.size(0); i += kBatch) {
    parts.push_back(autoencoder.encode(x.slice(0, i, i + kBatch)).mean);
  }
  return torch::cat(parts, 0);
}

std::string latent_cache_key(const std::string& autoencoder_hash, std::int64_t step) {
  return stable_hash(autoencoder_hash + "/step-" + std::to_string(step));
}

LatentData encode_dataset(Autoencoder& autoencoder, const DataSplit& train, const DataSplit& test,
                          const fs::path& cache_dir, const std::string& key, torch::Device device) {
  torch::NoGradGuard no_grad;
  LatentData out;
  out.file = cache_dir / (key + ".pt");
  torch::Tensor train_latents, test_latents, scale;
  if (fs::exists(out.file)) {
    try {
      torch::serialize::InputArchive archive;
      archive.load_from(out.file.string(), torch::kCPU);
      archive.read("train", train_latents);
      archive.read("test", test_latents);
      archive.read("scale", scale);
      out.reused = train_latents.size(0) == train.x.size(0) && test_latents.size(0) == test.x.size(0);
    } catch (const c10::Error& e) {  // a cache file cut short: encode again
      spdlog::warn("latent cache {} cannot be read ({}); encoding again", out.file.string(),
                   e.what_without_backtrace());
    }
  }
  if (!out.reused) {
    const bool training = autoencoder.is_training();
    autoencoder.eval();
    const auto train_means = encode_means(autoencoder, train.x);
    const auto test_means = encode_means(autoencoder, test.x);
    if (training) autoencoder.train();
    const auto std = train_means.to(torch::kFloat64).std().item<double>();
    if (!(std > 0) || !std::isfinite(std)) {
      throw RunError("the autoencoder's latents of the train split have standard deviation " +
                     std::to_string(std) + "; cannot scale them to unit variance");
    }
    scale = torch::tensor(1.0 / std, torch::kFloat64);
    train_latents = (train_means * (1.0 / std)).to(torch::kCPU);
    test_latents = (test_means * (1.0 / std)).to(torch::kCPU);
    fs::create_directories(cache_dir);
    torch::serialize::OutputArchive archive;
    archive.write("train", train_latents);
    archive.write("test", test_latents);
    archive.write("scale", scale);
    const auto temporary = temporary_path(out.file.string());
    archive.save_to(temporary);
    publish_file(temporary, out.file.string());
  }
  out.scale = scale.item<double>();
  out.train = {train_latents.to(device), train.labels};
  out.test = {test_latents.to(device), test.labels};
  return out;
}

torch::Tensor decode_latents(Autoencoder& autoencoder, const torch::Tensor& latents, double scale) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (std::int64_t i = 0; i < latents.size(0); i += kBatch) {
    parts.push_back(autoencoder.decode(latents.slice(0, i, i + kBatch) / scale).clamp(-1.0, 1.0));
  }
  return torch::cat(parts, 0);
}

}  // namespace difflab
