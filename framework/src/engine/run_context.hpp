#pragma once
// What one run is made of, built once from its config and shared by its trainer and evaluator:
// the plugins' objects, the data on the device, the forward process and the run's folders.
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "engine/engine.hpp"
#include "training/training_schedule.hpp"
#include "accel/cuda_graphs.hpp"

namespace difflab {

using Clock = std::chrono::steady_clock;
constexpr auto kProgressInterval = std::chrono::milliseconds(200);  // between step reports

double seconds_since(Clock::time_point start);
/// A label as a file name: "ddim(steps=50)" -> "ddim-steps-50-".
std::string file_label(const std::string& label);
/// The run's axis values for logs and the progress display, "(no axes)" when it has none.
std::string axes_text(const RunConfig& run);
/// Adam or AdamW over `parameters`, as the run's train section says.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& train,
                                                        const std::vector<torch::Tensor>& parameters);
/// Serialises what draws from torch's global generator (parameter initialisation) across threads.
std::mutex& global_seed_mutex();

struct RunContext {
  const RunConfig& run;
  torch::Device device;
  std::shared_ptr<Dataset> dataset;
  std::shared_ptr<NoiseSchedule> schedule;  // null for an autoencoder run
  std::shared_ptr<Denoiser> model;          // null for an autoencoder run
  std::vector<std::shared_ptr<Sampler>> samplers;
  std::vector<std::shared_ptr<Metric>> metrics;
  DataSplit train, test;
  std::unique_ptr<DiffusionProcess> process;
  std::filesystem::path run_dir;   // checkpoints: shared by every run of the same training
  std::filesystem::path eval_dir;  // samples and pictures: this run's own
  std::unique_ptr<WeightAverage> ema;  // when train.ema_decay > 0
  SamplerGraphs sampler_graphs;        // CUDA graphs of the samplers' loops (cuda_graphs.hpp)
  /// An autoencoder run: the network it trains. A latent diffusion run: the trained autoencoder
  /// that encoded `train` and `test` and decodes samples. Null otherwise.
  std::shared_ptr<Autoencoder> autoencoder;
  /// A latent diffusion run: the dataset's own splits (train and test hold its scaled latents),
  /// what image metrics compare decoded samples with; and the scale (latent = scale x mean).
  DataSplit images_train, images_test;
  double latent_scale = 1.0;

  /// The weights evaluation uses: the moving average when there is one.
  Denoiser& evaluated() { return ema ? ema->weights() : *model; }
  std::string evaluated_name() const;
};

/// Makes every object of the run: dataset, schedule, the model (initialised from the run's seed),
/// its moving average, samplers, metrics, both data splits on the device and the forward process;
/// for an autoencoder run the autoencoder instead of model and schedule. A latent diffusion run
/// (`latent` given) loads its autoencoder's checkpoint and diffuses the dataset's latents, encoded
/// once per checkpoint and cached under `out_dir`/latents (latent_data.hpp).
RunContext make_context(const Registry& registry, const RunConfig& run, const std::filesystem::path& out_dir,
                        const LatentSource* latent = nullptr);

}  // namespace difflab
