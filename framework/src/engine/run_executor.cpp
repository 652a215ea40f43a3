// RunExecutor: one run from start to done, composing its parts: the context (run_context.hpp),
// reuse of an identical training's checkpoints, the trainer with the run's task (trainer.hpp),
// and the evaluator (evaluator.hpp) for every checkpoint that has no metrics yet.
#include <spdlog/spdlog.h>

#include "difflab/errors.hpp"
#include "engine/engine.hpp"
#include "engine/evaluator.hpp"
#include "engine/run_context.hpp"
#include "engine/trainer.hpp"
#include "engine/training_task.hpp"
#include "training/crash_point.hpp"

namespace difflab {
namespace fs = std::filesystem;

RunExecutor::RunExecutor(const Registry& registry, RunStore& store, EngineOptions options)
    : registry_(registry), store_(store), options_(std::move(options)) {}

void RunExecutor::execute(const RunConfig& run, std::int64_t run_id) {
  RunContext ctx = make_context(registry_, run, options_.out_dir);
  remove_dead_temporaries(ctx.run_dir);
  remove_dead_temporaries(ctx.eval_dir);
  const auto tag = "run " + std::to_string(run.index) + " [" + axes_text(run) + "]";
  DenoisingTask task(ctx);
  auto optimizer = make_optimizer(run.train, task.parameters());
  auto gen = make_generator(ctx.device, derive_seed(run.seed, "train"));
  double eval_seconds = store_.run(run_id)->eval_seconds;
  bool reused = false;

  // Resume from our own last readable checkpoint, or reuse an identical training's checkpoints.
  auto checkpoints = store_.checkpoints(run_id);
  if (checkpoints.empty()) {
    if (auto trained = store_.find_trained(run.train_hash); trained && trained->id != run_id) {
      spdlog::info("{}: reusing the checkpoints of run {} (same training config)", tag, trained->id);
      store_.transaction([&] {
        store_.add_losses(run_id, store_.losses(trained->id));
        for (auto c : store_.checkpoints(trained->id)) {
          c.id = 0;
          c.run_id = run_id;
          store_.add_checkpoint(c);
        }
      });
      checkpoints = store_.checkpoints(run_id);
      reused = true;
    }
  }

  Evaluator evaluator(ctx, store_);
  auto* progress = options_.progress;
  const auto evaluate = [&](const CheckpointRecord& c) {
    const auto eval_start = Clock::now();
    if (progress) progress->report(ProgressEvent::evaluating(run.index, c.epoch));
    evaluator.evaluate(c);
    if (progress) progress->report(ProgressEvent::evaluated(run.index, c.epoch));
    eval_seconds += seconds_since(eval_start);
  };
  Trainer trainer(run, run_id, store_, progress, tag);
  const double train_seconds = trainer.train(task, *optimizer, gen, checkpoints, reused, ctx.run_dir, evaluate);

  // Checkpoints written but not evaluated (a crash mid-evaluation, or reused ones).
  for (const auto& c : store_.checkpoints(run_id)) {
    if (store_.metric_count(c.id) > 0 || run.evaluation.metrics.empty()) continue;
    if (!fs::exists(c.file) && fs::exists(c.file + kSetAsideSuffix)) {
      throw RunError("checkpoint file " + c.file + " could not be read and was set aside; delete the run to retrain");
    }
    if (!fs::exists(c.file)) throw RunError("checkpoint file " + c.file + " is missing; delete the run to retrain");
    task.load(c.file, nullptr, nullptr);
    evaluate(c);
    spdlog::info("{}: evaluated epoch {}", tag, c.epoch);
  }
  crash_point("run-done");
  store_.mark_done(run_id, train_seconds, eval_seconds);
}

}  // namespace difflab
