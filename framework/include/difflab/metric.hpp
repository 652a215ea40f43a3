#pragma once
// A metric evaluated at every checkpoint: on a sampler's output or on the model itself.
#include "difflab/export.hpp"
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "difflab/dataset.hpp"
#include "difflab/diffusion.hpp"

namespace difflab {

/// Which way a metric improves, so a report can rank runs without knowing the metric.
enum class Better { lower, higher };

struct MetricValue {
  /// `better` has no default: every metric says which way it improves.
  MetricValue(std::string name, std::string variant, double value, Better better)
      : name(std::move(name)), variant(std::move(variant)), value(value), better(better) {}

  std::string name;     // e.g. "mmd"
  std::string variant;  // how it was computed, e.g. "rbf(bandwidths=0.5,1,2)"
  double value;
  Better better;
  /// What the value was measured against, as the metric knows it (key, value): "reference" and
  /// "reference_size" (the data split compared against and how many of its rows), "extractor"
  /// and "extractor_weights" (the feature network and a hash of its weights). The framework adds
  /// "samples", "common_noise" and "nfe" and records it all with the value, so that reports never
  /// set values measured under different protocols side by side silently. Numbers as decimal text.
  std::vector<std::pair<std::string, std::string>> protocol;
};

/// Adds (key, value) to the protocol of each of `values`.
inline void add_protocol(std::vector<MetricValue>& values, const std::string& key, const std::string& value) {
  for (auto& v : values) v.protocol.emplace_back(key, value);
}

/// Adds the data split a metric compared against and how many of its rows it used.
inline void add_reference(std::vector<MetricValue>& values, const std::string& split, std::int64_t rows) {
  add_protocol(values, "reference", split);
  add_protocol(values, "reference_size", std::to_string(rows));
}

struct MetricContext {
  Denoiser& model;
  const DiffusionProcess& process;
  const DataSplit& train;    // on the run's device
  const DataSplit& test;     // on the run's device
  torch::Tensor samples;     // a sampler's output; undefined for checkpoint-scope metrics
  torch::Generator generator;
  Conditioning sampling = {};      // labels and guidance the samples were drawn with; empty: none
  bool class_conditional = false;  // the run evaluates its model with class labels
};

/// How a metric calls the model on rows of a data split: with their labels (plain conditional,
/// no guidance) when the run is class-conditional, else unconditionally.
inline Conditioning data_conditioning(const MetricContext& ctx, const torch::Tensor& labels) {
  return ctx.class_conditional ? Conditioning{labels, 1.0} : Conditioning{};
}

/// An autoencoder's reconstructions of test rows (runs with `task: autoencoder`).
struct ReconstructionContext {
  const DataSplit& train;          // on the run's device
  const DataSplit& test;           // on the run's device
  torch::Tensor originals;         // the test rows that were encoded [N, ...]
  torch::Tensor reconstructions;   // decode(mean of q(z|x)) of each row of `originals`
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

  /// Whether the metric measures an autoencoder's reconstructions (evaluate_reconstructions).
  virtual bool measures_reconstructions() const { return false; }
  /// Called once per checkpoint of an autoencoder run, under torch::NoGradGuard, when
  /// measures_reconstructions() says so. The default returns nothing.
  virtual std::vector<MetricValue> evaluate_reconstructions(const ReconstructionContext& ctx) const {
    (void)ctx;
    return {};
  }
};

}  // namespace difflab
