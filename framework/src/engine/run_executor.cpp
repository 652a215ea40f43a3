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

std::optional<LatentSource> latent_source(const RunStore& store, const RunConfig& run) {
  const auto trained = store.find_trained(run.autoencoder_hash);
  if (!trained) return std::nullopt;
  const auto checkpoints = store.checkpoints(trained->id);
  if (checkpoints.empty()) return std::nullopt;
  return LatentSource{checkpoints.back().file, checkpoints.back().step, trained->id};
}

void RunExecutor::execute(const RunConfig& run, std::int64_t run_id) {
  std::optional<LatentSource> latent;
  if (is_latent(run)) {
    latent = latent_source(store_, run);
    if (!latent) {
      throw RunError("its autoencoder (grid point " + std::to_string(run.autoencoder_index) +
                     ") has not finished training");
    }
    if (!fs::exists(latent->checkpoint)) {
      throw RunError("the autoencoder checkpoint " + latent->checkpoint + " is missing; delete the autoencoder run to retrain it");
    }
  }
  RunContext ctx = make_context(registry_, run, options_.out_dir, latent ? &*latent : nullptr);
  if (latent) store_.set_latent_scale(run_id, ctx.latent_scale);
  remove_dead_temporaries(ctx.run_dir);
  remove_dead_temporaries(ctx.eval_dir);
  const auto tag = "run " + std::to_string(run.index) + " [" + axes_text(run) + "]";
  std::unique_ptr<TrainingTask> task_owner;
  if (run.task == Task::autoencoder) {
    task_owner = std::make_unique<AutoencoderTask>(ctx);
  } else {
    task_owner = std::make_unique<DenoisingTask>(ctx);
  }
  TrainingTask& task = *task_owner;
  auto optimizer = make_optimizer(run.train, task.parameters());
  auto gen = make_generator(ctx.device, derive_seed(run.seed, "train"));
  double eval_seconds = store_.run(run_id)->eval_seconds;
  bool reused = false;

  // Resume from our own last readable checkpoint, or reuse an identical training's checkpoints:
  // all of them, or (a continued run whose twin has trained on already) those beyond our last.
  auto checkpoints = store_.checkpoints(run_id);
  if (auto trained = store_.find_trained(run.train_hash); trained && trained->id != run_id) {
    const auto theirs = store_.checkpoints(trained->id);
    const std::int64_t ours = checkpoints.empty() ? -1 : checkpoints.back().step;
    if (!theirs.empty() && theirs.back().step > ours) {
      spdlog::info("{}: reusing the checkpoints of run {} (same training config)", tag, trained->id);
      store_.transaction([&] {
        store_.add_losses(run_id, store_.losses(trained->id));
        for (auto c : theirs) {
          if (c.step <= ours) continue;
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
