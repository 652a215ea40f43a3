#pragma once
// Evaluation of one checkpoint (of a diffusion run; an autoencoder run's: evaluate_autoencoder): the checkpoint-scope metrics on the evaluated weights, then for
// each sampler the samples (from the run's seed and the checkpoint's step), its pictures and the
// sample-scope metrics, recorded together in one transaction.
#include <optional>

#include "engine/distribution_view.hpp"
#include "engine/run_context.hpp"
#include "store/run_store.hpp"

namespace difflab {

class Evaluator {
 public:
  Evaluator(RunContext& ctx, RunStore& store) : ctx_(ctx), store_(store) {}

  /// Evaluates the weights loaded now (ctx.evaluated()) as `checkpoint`; samples and pictures go
  /// to the run's own evaluation folder. Throws RunError when a sampler fails.
  void evaluate(const CheckpointRecord& checkpoint);

 private:
  /// An autoencoder run: its reconstructions of the test split measured by every metric that
  /// measures reconstructions, a grid of originals and reconstructions, and its latent means.
  void evaluate_autoencoder(const CheckpointRecord& checkpoint);

  RunContext& ctx_;
  RunStore& store_;
  std::optional<Pca> distribution_pca_;  // of the test images, for the distribution views
};

}  // namespace difflab
