#include "engine/trainer.hpp"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "difflab/errors.hpp"
#include "engine/run_context.hpp"
#include "training/crash_point.hpp"
#include "training/training_schedule.hpp"

namespace difflab {
namespace fs = std::filesystem;

TrainingLength::TrainingLength(const TrainConfig& train, std::int64_t n)
    : rows(n),
      batch(std::min(train.batch_size, n)),
      steps_per_epoch(n / batch),  // drop the ragged tail: static shapes
      total_steps(train.steps > 0 ? train.steps : train.epochs * steps_per_epoch),
      total_epochs((total_steps + steps_per_epoch - 1) / steps_per_epoch) {}

Trainer::Trainer(const RunConfig& run, std::int64_t run_id, RunStore& store, ProgressSink* progress,
                 std::string tag)
    : run_(run), run_id_(run_id), store_(store), progress_(progress), tag_(std::move(tag)) {}

double Trainer::train(TrainingTask& task, torch::optim::Optimizer& optimizer, torch::Generator& gen,
                      const std::vector<CheckpointRecord>& checkpoints, bool reused, const fs::path& run_dir,
                      const OnCheckpoint& on_checkpoint) {
  const auto& data = task.training_data();
  const TrainingLength length(run_.train, data.x.size(0));
  const auto& [n, batch, steps_per_epoch, total_steps, total_epochs] = length;
  // Training time goes on from the checkpoint a resume starts from; a run that reuses another's
  // checkpoints has trained nothing (their records keep the time that training took).
  double train_seconds = 0;

  CheckpointPosition position;
  bool fully_trained = false;
  for (auto it = checkpoints.rbegin(); it != checkpoints.rend(); ++it) {
    if (!fs::exists(it->file)) continue;
    // A file cut short by a crash of the machine (zero bytes, a truncated archive) is set aside:
    // the run goes on from the checkpoint before it, or from the start.
    if (const auto why = unreadable_checkpoint(it->file)) {
      const auto aside = set_aside(it->file);
      spdlog::warn("{}: checkpoint {} cannot be read ({}); moved to {}, resuming from the one before", tag_,
                   it->file, *why, aside);
      continue;
    }
    position = task.load(it->file, &optimizer, &gen);
    if (!reused) train_seconds = it->wall_seconds;
    fully_trained = position.step >= total_steps;
    if (position.step > 0) spdlog::info("{}: resuming from epoch {} (step {})", tag_, position.epoch, position.step);
    break;
  }

  task.prepare(optimizer, tag_);
  std::vector<LossRecord> pending_losses;
  std::int64_t global_step = position.step;
  const bool scheduled_lr = run_.train.warmup_steps > 0 || run_.train.lr_schedule != "constant";
  auto last_report = Clock::now();
  std::int64_t steps_since_report = 0;
  if (progress_)
    progress_->report(ProgressEvent::started(run_.index, axes_text(run_), total_steps, total_epochs,
                                             position.step));
  auto next_progress = Clock::now() + kProgressInterval;
  for (std::int64_t epoch = position.epoch + 1; !fully_trained && epoch <= total_epochs; ++epoch) {
    const auto start = Clock::now();
    const auto order = torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kLong).device(data.x.device()));
    torch::Tensor loss_sum = torch::zeros({}, data.x.options());
    std::int64_t steps_this_epoch = 0;
    for (std::int64_t b = 0; b < steps_per_epoch && global_step < total_steps; ++b) {
      const auto rows = order.slice(0, b * batch, (b + 1) * batch);
      const auto x0 = data.x.index_select(0, rows);
      const auto labels = data.labels.defined() ? data.labels.index_select(0, rows) : torch::Tensor();
      if (scheduled_lr) set_learning_rate(optimizer, learning_rate(run_.train, global_step, total_steps));
      try {
        loss_sum += task.step(x0, labels, gen);
        task.after_step();
      } catch (const c10::Error& e) {
        throw RunError("training step failed at epoch " + std::to_string(epoch) + ": " +
                       e.what_without_backtrace());
      }
      ++global_step;
      ++steps_this_epoch;
      crash_point("train-step");
      if (progress_ && Clock::now() >= next_progress) {  // a host read at most every 0.2 s
        next_progress = Clock::now() + kProgressInterval;
        progress_->report(ProgressEvent::stepped(run_.index, epoch, global_step,
                                                 loss_sum.item<double>() / steps_this_epoch));
      }
    }
    const double loss = loss_sum.item<double>() / static_cast<double>(std::max<std::int64_t>(1, steps_this_epoch));
    train_seconds += seconds_since(start);
    steps_since_report += steps_this_epoch;
    if (!std::isfinite(loss)) {
      store_.add_losses(run_id_, pending_losses);
      throw RunError("the training loss became " + std::string(std::isnan(loss) ? "NaN" : "infinite") +
                     " at epoch " + std::to_string(epoch) + " (step " + std::to_string(global_step) +
                     "); lower train.lr or set train.grad_clip");
    }
    pending_losses.push_back({global_step, epoch, loss, task.take_loss_terms()});
    spdlog::debug("{}: epoch {}/{} step {} loss {:.4f}", tag_, epoch, total_epochs, global_step, loss);
    const bool last = epoch == total_epochs;
    if (epoch % run_.train.checkpoint_every != 0 && !last) continue;

    const auto dir = run_dir / fmt::format("epoch-{:06d}", epoch);
    fs::create_directories(dir);
    const auto file = (dir / "checkpoint.pt").string();
    task.save(file, optimizer, gen, {epoch, global_step});
    CheckpointRecord record{0,    run_id_, epoch, global_step, file, train_seconds, task.evaluated_name(),
                            global_step * batch};
    crash_point("checkpoint-record");
    store_.transaction([&] {
      store_.add_losses(run_id_, pending_losses);
      record.id = store_.add_checkpoint(record);
    });
    pending_losses.clear();
    const double rate = steps_since_report / std::max(1e-9, seconds_since(last_report));
    spdlog::info("{}: epoch {}/{} step {} loss {:.4f} ({:.0f} steps/s)", tag_, epoch, total_epochs,
                 global_step, loss, rate);
    if (progress_) progress_->report(ProgressEvent::stepped(run_.index, epoch, global_step, loss));
    on_checkpoint(record);
    last_report = Clock::now();
    steps_since_report = 0;
  }
  return train_seconds;
}

}  // namespace difflab
