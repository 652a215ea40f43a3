#pragma once
// The training loop of one run, whatever its task (training_task.hpp): it resumes from the last
// readable checkpoint, draws batches in the run's order, steps the task with the scheduled
// learning rate, records losses, refuses a NaN, and writes and records checkpoints, handing each
// to the evaluator.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "config/sweep_grid.hpp"
#include "engine/training_task.hpp"
#include "progress/progress.hpp"
#include "store/run_store.hpp"

namespace difflab {

/// How long a run trains: steps of `batch` rows, the ragged tail of each epoch dropped (static
/// shapes), `train.steps` when set, else `train.epochs` epochs.
struct TrainingLength {
  TrainingLength(const TrainConfig& train, std::int64_t rows);
  std::int64_t rows, batch, steps_per_epoch, total_steps, total_epochs;
};

class Trainer {
 public:
  /// `tag` names the run in log lines ("run 3 [schedule=cosine]").
  Trainer(const RunConfig& run, std::int64_t run_id, RunStore& store, ProgressSink* progress, std::string tag);

  /// Called after each checkpoint is written and recorded (the run evaluates it there).
  using OnCheckpoint = std::function<void(const CheckpointRecord&)>;

  /// Trains `task` to the run's length from the last readable checkpoint among `checkpoints`
  /// (an unreadable one is set aside and the one before it used). `reused`: the checkpoints are
  /// another run's (same training), whose training time is not this run's. Returns the run's
  /// training time in seconds, counting from the checkpoint it resumed from. Throws RunError on
  /// a failed step or a loss that is not finite, after recording the losses before it.
  double train(TrainingTask& task, torch::optim::Optimizer& optimizer, torch::Generator& generator,
               const std::vector<CheckpointRecord>& checkpoints, bool reused,
               const std::filesystem::path& run_dir, const OnCheckpoint& on_checkpoint);

 private:
  const RunConfig& run_;
  std::int64_t run_id_;
  RunStore& store_;
  ProgressSink* progress_;
  std::string tag_;
};

}  // namespace difflab
