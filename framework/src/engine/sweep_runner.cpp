// The sweep loop: each grid point is claimed in the store before it runs (so that processes and
// machines sharing a store never run one twice), skipped when done, failed before or run by a
// live process, waited for when another process trains the same model, and executed otherwise.
#include <unistd.h>

#include <chrono>
#include <functional>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "difflab/errors.hpp"
#include "engine/batched_training.hpp"
#include "engine/engine.hpp"
#include "engine/run_context.hpp"
#include "io/atomic_file.hpp"
#include "training/crash_point.hpp"

namespace difflab {

void note_refused_claim(const ClaimResult& claim, const RunConfig& run, SweepSummary& summary,
                        ProgressSink* progress) {
  switch (claim.outcome) {
    case Claim::done:
      ++summary.done;
      ++summary.skipped;
      if (progress) progress->report(ProgressEvent::finished(run.index, "skipped", "done before"));
      break;
    case Claim::running_elsewhere:  // a live process owns it; a dead one's run is taken over by a claim
      spdlog::warn("run {} is being run by process {}; skipped", run.index, claim.other_pid);
      if (progress)
        progress->report(
            ProgressEvent::finished(run.index, "skipped", "run by process " + std::to_string(claim.other_pid)));
      break;
    case Claim::failed_before:
      spdlog::warn("run {} failed before ({}); skipped, use --retry-failed to run it again", run.index,
                   claim.run.reason);
      ++summary.failed;
      if (progress)
        progress->report(ProgressEvent::finished(run.index, "failed", "failed before: " + claim.run.reason));
      break;
    case Claim::claimed:
    case Claim::training_elsewhere:
      break;  // the caller's to handle
  }
}

void fail_with_autoencoder(const RunConfig& run, const RunRecord& autoencoder, RunStore& store, std::int64_t sweep_id,
                           SweepSummary& summary, ProgressSink* progress) {
  const auto reason =
      "its autoencoder (grid point " + std::to_string(autoencoder.grid_index) + ") failed: " + autoencoder.reason;
  spdlog::error("run {} failed: {}", run.index, reason);
  store.mark_failed(store.find_run(sweep_id, run.config_hash)->id, reason);
  ++summary.failed;
  if (progress) progress->report(ProgressEvent::finished(run.index, "failed", reason));
}

namespace {

// Executes a run this process has claimed; a failure is recorded as the run's, never thrown.
void execute_claimed(RunExecutor& executor, RunStore& store, std::int64_t sweep_id, const RunConfig& run,
                     const RunConfig& placed, const torch::Device& device, std::int64_t run_id,
                     std::size_t grid_size, SweepSummary& summary, ProgressSink* progress) {
  spdlog::info("run {}/{} [{}] on {}", run.index + 1, grid_size, axes_text(run), device.str());
  set_crash_run(run.index);
  try {
    executor.execute(placed, run_id);
    ++summary.done;
  } catch (const InputError& e) {  // this run's own input, such as a missing data file
    spdlog::error("run {} failed: {}", run.index, e.what());
    store.mark_failed(run_id, e.what());
    ++summary.failed;
    ++summary.input_failed;
  } catch (const c10::Error& e) {  // torch's own errors: the message without its backtrace
    const std::string what = e.what_without_backtrace();
    const auto reason = what.substr(0, what.find('\n'));
    spdlog::error("run {} failed: {}", run.index, reason);
    store.mark_failed(run_id, reason);
    ++summary.failed;
  } catch (const std::exception& e) {  // NaN loss, a plugin that threw, out of memory
    spdlog::error("run {} failed: {}", run.index, e.what());
    store.mark_failed(run_id, e.what());
    ++summary.failed;
  } catch (...) {
    spdlog::error("run {} failed: a plugin threw something that is not a std::exception", run.index);
    store.mark_failed(run_id, "a plugin threw something that is not a std::exception");
    ++summary.failed;
  }
  if (progress) {  // done or failed, with the reason as recorded
    const auto after = store.find_run(sweep_id, run.config_hash);
    progress->report(ProgressEvent::finished(run.index, after->status == RunStatus::done ? "done" : "failed",
                                             after->reason));
  }
}

}  // namespace

SweepSummary run_sweep(SweepGrid grid, RunStore& store, const Registry& registry,
                       const SweepOptions& options) {
  const auto sweep_id = record_sweep(grid, store, registry, options.grid_change);
  if (options.batch_grid && options.only_indices.empty()) train_batched_groups(grid, store, registry, sweep_id, options);
  SweepSummary summary;
  summary.name = grid.name;
  RunExecutor executor(registry, store, options.engine);
  auto* progress = options.engine.progress;
  if (progress)
    progress->sweep_started(grid.name,
                            options.only_indices.empty() ? static_cast<std::int64_t>(grid.runs.size())
                                                         : static_cast<std::int64_t>(options.only_indices.size()));
  // Runs whose training another live process is doing now: tried again once it has finished,
  // when they reuse its checkpoints (or train themselves, should it have failed).
  std::vector<const RunConfig*> waiting;
  std::set<std::int64_t> announced;  // runs whose wait was logged
  std::function<void(const RunConfig&)> attempt;
  // A latent run needs its autoencoder trained: it trains it here first (its own run, claimed as
  // any other), waits while another process trains it, and fails when it failed.
  const auto autoencoder_ready = [&](const RunConfig& run) {
    if (!is_latent(run) || latent_source(store, run)) return true;
    const auto& autoencoder = grid.runs.at(static_cast<std::size_t>(run.autoencoder_index));
    auto state = store.find_run(sweep_id, autoencoder.config_hash);
    if (state->status != RunStatus::failed || options.retry_failed) {
      if (state->status != RunStatus::running || !process_alive(state->pid)) attempt(autoencoder);
      if (latent_source(store, run)) return true;
      state = store.find_run(sweep_id, autoencoder.config_hash);
    }
    if (state->status == RunStatus::failed) {
      fail_with_autoencoder(run, *state, store, sweep_id, summary, progress);
      return false;
    }
    if (announced.insert(run.index).second) {
      spdlog::info("run {} waits for its autoencoder, grid point {}, trained by process {}", run.index,
                   autoencoder.index, state->pid);
    }
    waiting.push_back(&run);
    return false;
  };
  attempt = [&](const RunConfig& run) {
    if (!autoencoder_ready(run)) return;
    const auto record = store.find_run(sweep_id, run.config_hash);
    RunConfig placed = run;
    if (options.device) placed.device = *options.device;
    const auto device = resolve_device(placed.device);
    const auto claim = store.claim_run(record->id, device.str(), ::getpid(), options.retry_failed, process_alive);
    if (claim.outcome == Claim::training_elsewhere) {
      if (announced.insert(run.index).second) {
        spdlog::info("run {} waits for run id {} (process {}), which trains the same model", run.index,
                     claim.other_run, claim.other_pid);
      }
      waiting.push_back(&run);
      return;
    }
    if (claim.outcome != Claim::claimed) {
      note_refused_claim(claim, run, summary, progress);
      return;
    }
    execute_claimed(executor, store, sweep_id, run, placed, device, record->id, grid.runs.size(), summary,
                    progress);
  };
  if (options.only_indices.empty()) {
    for (const auto& run : grid.runs) attempt(run);
  } else {
    for (const auto index : options.only_indices) attempt(grid.runs.at(static_cast<std::size_t>(index)));
  }
  while (!waiting.empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto again = std::move(waiting);
    waiting.clear();
    for (const auto* run : again) attempt(*run);
  }
  return summary;
}

}  // namespace difflab
