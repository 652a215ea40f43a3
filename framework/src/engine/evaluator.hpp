#pragma once
// Evaluation of one checkpoint: the checkpoint-scope metrics on the evaluated weights, then for
// each sampler the samples (from the run's seed and the checkpoint's step), its pictures and the
// sample-scope metrics, recorded together in one transaction.
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
  RunContext& ctx_;
  RunStore& store_;
};

}  // namespace difflab
