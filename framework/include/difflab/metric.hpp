#pragma once
// A metric evaluated at every checkpoint: on a sampler's output or on the model itself.
#include "difflab/export.hpp"
#include <string>
#include <vector>

#include <torch/torch.h>

#include "difflab/dataset.hpp"
#include "difflab/diffusion.hpp"

namespace difflab {

struct MetricValue {
  std::string name;     // e.g. "mmd"
  std::string variant;  // how it was computed, e.g. "rbf(bandwidths=0.5,1,2)"
  double value = 0.0;
};

struct MetricContext {
  Denoiser& model;
  const DiffusionProcess& process;
  const DataSplit& train;    // on the run's device
  const DataSplit& test;     // on the run's device
  torch::Tensor samples;     // a sampler's output; undefined for checkpoint-scope metrics
  torch::Generator generator;
};

class DIFFLAB_API Metric {
 public:
  enum class Scope {
    checkpoint,  // a property of the model (e.g. test loss): once per checkpoint
    samples,     // a property of generated samples: once per checkpoint and sampler
    both         // once per checkpoint without samples, and once per sampler with them
  };
  virtual ~Metric() = default;
  virtual Scope scope() const { return Scope::samples; }
  /// Called under torch::NoGradGuard with the model in eval mode.
  virtual std::vector<MetricValue> evaluate(const MetricContext& ctx) const = 0;
};

}  // namespace difflab
