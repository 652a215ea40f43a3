#include "store/store_merge.hpp"

#include <algorithm>
#include <map>

#include "difflab/errors.hpp"

namespace difflab {
namespace fs = std::filesystem;

namespace {

bool wanted(const MergeFilter& filter, const std::string& config_hash) {
  if (!filter.config_hashes) return true;
  const auto& h = *filter.config_hashes;
  return std::find(h.begin(), h.end(), config_hash) != h.end();
}

// Folds one run's results and state into `target_id`; returns whether its status changed to a
// final one.
bool merge_run(const RunStore& from, const RunRecord& run, RunStore& into, std::int64_t target_id) {
  into.add_losses(target_id, from.losses(run.id));
  for (auto c : from.checkpoints(run.id)) {
    const auto source_id = c.id;
    c.id = 0;
    c.run_id = target_id;
    const auto checkpoint_id = into.add_checkpoint(c);
    for (auto m : from.metrics(source_id)) {
      m.checkpoint_id = checkpoint_id;
      into.add_metric(m);
    }
    for (auto a : from.artifacts(source_id)) {
      a.checkpoint_id = checkpoint_id;
      into.add_artifact(a);
    }
  }
  const auto target = into.run(target_id);
  const bool finishes = run.status == RunStatus::done ||
                        (run.status == RunStatus::failed && target->status != RunStatus::failed);
  const bool changes = run.status == RunStatus::done || run.status == RunStatus::failed;
  if (changes) into.set_run_state(target_id, run);
  return finishes && target->status != run.status;
}

}  // namespace

MergeSummary merge_store(const RunStore& from, RunStore& into, const MergeFilter& filter) {
  MergeSummary summary;
  for (const auto& sweep : from.sweeps()) {
    if (filter.sweep && *filter.sweep != sweep.name) continue;
    ++summary.sweeps;
    const auto sweep_id = into.add_sweep(sweep.name, sweep.file, sweep.file_text);
    for (auto run : from.runs(sweep.name)) {
      const bool with_results = wanted(filter, run.config_hash);
      into.transaction([&] {
        auto target = into.find_run(sweep_id, run.config_hash);
        if (!target) {
          RunRecord fresh = run;
          fresh.id = 0;
          fresh.sweep_id = sweep_id;
          fresh.pid = 0;
          fresh.status = RunStatus::pending;  // merge_run below copies a final state
          fresh.reason.clear();
          fresh.started_at.clear();
          fresh.finished_at.clear();
          fresh.train_seconds = fresh.eval_seconds = 0;
          into.add_run(fresh);
          target = into.find_run(sweep_id, run.config_hash);
        }
        if (!with_results) return;
        if (target->status == RunStatus::done && run.status != RunStatus::done) {
          ++summary.kept;  // never downgrade a done run, nor mix an unfinished try into its results
          return;
        }
        ++summary.runs;
        if (merge_run(from, run, into, target->id)) ++summary.finished;
      });
    }
  }
  return summary;
}

std::vector<fs::path> find_shards(const std::vector<std::string>& paths) {
  std::vector<fs::path> out;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> found;
      for (const auto& e : fs::recursive_directory_iterator(p, ec)) {
        if (e.is_regular_file(ec) && e.path().extension() == ".sqlite") found.push_back(e.path());
      }
      if (ec) throw InputError(p + ": cannot list the folder: " + ec.message());
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (fs::exists(p, ec)) {
      out.emplace_back(p);
    } else {
      throw InputError(p + ": no such file or folder");
    }
  }
  return out;
}

MergeSummary merge_shards(const std::vector<fs::path>& shards, RunStore& into) {
  MergeSummary total;
  for (const auto& shard : shards) {
    if (fs::weakly_canonical(shard) == fs::weakly_canonical(into.path())) continue;
    const RunStore from(shard.string(), RunStore::Access::read_only);
    const auto s = merge_store(from, into);
    total.sweeps += s.sweeps;
    total.runs += s.runs;
    total.finished += s.finished;
    total.kept += s.kept;
  }
  return total;
}

}  // namespace difflab
