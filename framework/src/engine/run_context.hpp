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
  std::shared_ptr<NoiseSchedule> schedule;
  std::shared_ptr<Denoiser> model;
  std::vector<std::shared_ptr<Sampler>> samplers;
  std::vector<std::shared_ptr<Metric>> metrics;
  DataSplit train, test;
  std::unique_ptr<DiffusionProcess> process;
  std::filesystem::path run_dir;   // checkpoints: shared by every run of the same training
  std::filesystem::path eval_dir;  // samples and pictures: this run's own
  std::unique_ptr<WeightAverage> ema;  // when train.ema_decay > 0
  SamplerGraphs sampler_graphs;        // CUDA graphs of the samplers' loops (cuda_graphs.hpp)

  /// The weights evaluation uses: the moving average when there is one.
  Denoiser& evaluated() { return ema ? ema->weights() : *model; }
  std::string evaluated_name() const;
};

/// Makes every object of the run: dataset, schedule, the model (initialised from the run's seed),
/// its moving average, samplers, metrics, both data splits on the device and the forward process.
RunContext make_context(const Registry& registry, const RunConfig& run, const std::filesystem::path& out_dir);

}  // namespace difflab
