#pragma once
// The accel layer: what makes the same arithmetic faster on a machine: BLAS set-up (blas.hpp),
// oneDNN linear layers (linear.cpp, behind difflab/linear.hpp) and CUDA graphs (this header).
// It uses the training layer (the step it captures) and those below it.
//
// CUDA graphs for launch-bound runs: the training step and a sampler's whole reverse loop are
// captured once and replayed, so a step costs one graph launch instead of ~100 kernel launches.
//
// What a capture needs, and how it is met here:
// - static shapes and addresses: the batch is copied into a buffer the graph reads; the model's
//   parameters, the optimizer's moments and the gradients stay where the capture saw them;
// - no host reads or host-side numbers that change: DeviceAdam keeps Adam's step count, bias
//   corrections and learning rate in device tensors (torch::optim::Adam keeps its step count on
//   the host, so a captured step would replay the capture-time correction forever);
// - graph-safe random numbers: draws come from the run's CUDA generator, registered with the graph,
//   so each replay advances its Philox offset as the eager draws would.
// Only built against a CUDA LibTorch (2.4 or later, for registering generators); everywhere else
// the graph-safe step runs eagerly, which is how the CPU tests check its arithmetic.
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <torch/torch.h>

#include "difflab/diffusion.hpp"
#include "difflab/sampler.hpp"
#include "training/train_step.hpp"

namespace difflab {

/// Whether this build can capture CUDA graphs (a CUDA LibTorch 2.4 or later).
bool cuda_graphs_built();
/// Whether runs on CUDA use them: built, and not turned off by `runner --no-cuda-graphs` or
/// DIFFLAB_CUDA_GRAPHS=0.
bool cuda_graphs_enabled();
void set_cuda_graphs_enabled(bool enabled);

/// Captures made to fail on purpose, so that the eager fallback is tested on every machine (the
/// CPU included, where nothing is captured otherwise): DIFFLAB_FORCE_CAPTURE_FAILURE=train,
/// =sample or =train,sample, read once, or set_forced_capture_failures. A forced capture throws
/// before it touches the device, and then the work runs eagerly as after a real failure.
struct CaptureFailures {
  bool train = false;   // training steps (ReplayedWork: GraphedTrainStep, batched training)
  bool sample = false;  // samplers' reverse loops (SamplerGraphs)
};
/// Throws InputError for another value of DIFFLAB_FORCE_CAPTURE_FAILURE.
CaptureFailures forced_capture_failures();
void set_forced_capture_failures(CaptureFailures failures);

/// Whether training steps on `device` go through ReplayedWork's capture: on CUDA with graphs
/// enabled, or anywhere when a training-step capture failure is forced.
bool captures_training_steps(torch::Device device);

/// Adam or AdamW, with the arithmetic of torch::optim's, whose step count, bias corrections and
/// learning rate are device tensors: a step launches kernels only, so it can be captured. It
/// updates the wrapped optimizer's own state tensors in place and keeps its host step count
/// current, so checkpoints keep torch::optim's format and resume either way.
class DeviceAdam {
 public:
  /// Throws std::invalid_argument for another optimizer, several parameter groups or amsgrad.
  explicit DeviceAdam(torch::optim::Optimizer& optimizer);
  static bool supports(torch::optim::Optimizer& optimizer);

  /// Copies the wrapped optimizer's current learning rate to the device (outside a capture).
  void sync_learning_rate();
  /// The update of every parameter from its .grad(): device work only.
  void step();
  /// Host bookkeeping after each step or replay: the wrapped optimizer's step counts.
  void count_step();

 private:
  struct Slot {
    torch::Tensor param, exp_avg, exp_avg_sq;
    torch::optim::OptimizerParamState* state;
    bool stepped = false;  // had a gradient at the last step (torch::optim skips those without)
  };
  torch::optim::Optimizer& optimizer_;
  std::vector<Slot> slots_;
  bool decoupled_;  // AdamW
  double beta1_, beta2_, eps_, weight_decay_;
  double host_lr_ = -1;
  torch::Tensor step_, lr_;  // float64 device scalars
};

/// Runs one piece of device work again and again (a training step): where captures_training_steps,
/// `warmup` times eagerly (on CUDA on a side stream, where lazy initialisation such as cuBLAS
/// workspaces happens), then captured once and replayed; elsewhere eagerly every time. A capture
/// that throws (the work reads a value back to the host, say) logs one warning, and the work runs
/// eagerly from then on, the generators as they were before the capture. The work must read and
/// write the same tensors on every call (copy inputs into buffers first) and draw its random
/// numbers only from the generators passed in, which are registered with the graph.
class ReplayedWork {
 public:
  explicit ReplayedWork(std::function<void()> work, int warmup = 3);
  ~ReplayedWork();
  void operator()(const std::vector<torch::Generator>& generators, torch::Device device);
  bool captured() const;
  /// Forgets the capture: the next call captures again (new buffers, other generators). After a
  /// failed capture the work stays eager.
  void reset();

 private:
  std::function<void()> work_;
  int warmup_left_;
  bool eager_only_ = false;  // its capture failed
  struct Graph;
  std::unique_ptr<Graph> graph_;
};

/// One training step like TrainStep's (same draws, loss, clipping, Adam/AdamW), graph-safe: on
/// CUDA with graphs enabled it is captured once and replayed (ReplayedWork); if that capture
/// fails, it warns once and steps eagerly.
class GraphedTrainStep {
 public:
  GraphedTrainStep(Denoiser& model, const DiffusionProcess& process, torch::optim::Optimizer& optimizer,
                   double grad_clip, LossSettings loss = {}, int warmup = 3);
  GraphedTrainStep(const GraphedTrainStep&) = delete;  // its work refers to this object
  GraphedTrainStep& operator=(const GraphedTrainStep&) = delete;

  /// The batch's loss, on the device.
  torch::Tensor operator()(const torch::Tensor& x0, const torch::Tensor& labels, torch::Generator& generator);
  bool captured() const { return replay_.captured(); }

 private:
  Denoiser& model_;
  const DiffusionProcess& process_;
  DeviceAdam adam_;
  double grad_clip_;
  LossSettings loss_settings_;
  std::vector<torch::Tensor> parameters_;
  torch::Tensor x0_, labels_, loss_;  // the graph's input and output buffers
  std::optional<torch::Generator> generator_;
  ReplayedWork replay_;
};

/// Runs samplers through CUDA graphs on CUDA: the first call with a given sampler and shape runs
/// eagerly (warming up), the second captures the whole reverse loop, later ones replay it; a
/// sampler whose capture fails warns once and runs eagerly from then on. The graph is redone when
/// the model's weights move to new storage. Calls with a step callback, or off CUDA, or with
/// graphs disabled, just call the sampler (unless a sampler capture failure is forced).
class SamplerGraphs {
 public:
  SamplerGraphs();
  SamplerGraphs(SamplerGraphs&&) noexcept;
  SamplerGraphs& operator=(SamplerGraphs&&) noexcept;
  ~SamplerGraphs();
  torch::Tensor sample(const Sampler& sampler, const SamplingContext& ctx, const torch::Tensor& x_T);

 private:
  struct Entry;
  std::vector<std::unique_ptr<Entry>> entries_;
};

}  // namespace difflab
