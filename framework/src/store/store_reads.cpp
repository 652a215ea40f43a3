// RunStore's reads: sweeps, runs, checkpoints, losses, metric values and artifacts, and the
// bulk and index-driven reads that reports use. Each record has one row reader below, beside
// the column list that its queries select.
#include <algorithm>
#include <cmath>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "store/run_store.hpp"
#include "store/sqlite_statement.hpp"

namespace difflab {
namespace {

constexpr const char* kSweepColumns = "w.id, w.name, w.file, w.file_text, w.created_at";

SweepRecord read_sweep(const Statement& s) {
  SweepRecord r;
  r.id = s.integer(0);
  r.name = s.text(1);
  r.file = s.text(2);
  r.file_text = s.text(3);
  r.created_at = s.text(4);
  return r;
}

constexpr const char* kRunColumns =
    "r.id, r.sweep_id, r.grid_index, r.config_json, r.config_hash, r.train_hash, r.axes_json, "
    "r.seed, r.device, r.status, r.reason, r.started_at, r.finished_at, r.train_seconds, "
    "r.eval_seconds, r.framework_version, r.plugin_versions_json, r.pid, r.abar_T, r.latent_scale";

RunRecord read_run(const Statement& s) {
  RunRecord r;
  r.id = s.integer(0);
  r.sweep_id = s.integer(1);
  r.grid_index = s.integer(2);
  r.config_json = s.text(3);
  r.config_hash = s.text(4);
  r.train_hash = s.text(5);
  r.axes_json = s.text(6);
  r.seed = s.integer(7);
  r.device = s.text(8);
  r.status = parse_run_status(s.text(9));
  r.reason = s.text(10);
  r.started_at = s.text(11);
  r.finished_at = s.text(12);
  r.train_seconds = s.real(13);
  r.eval_seconds = s.real(14);
  r.framework_version = s.text(15);
  r.plugin_versions_json = s.text(16);
  r.pid = s.integer(17);
  r.abar_T = s.real(18);
  r.latent_scale = s.real(19);
  return r;
}

constexpr const char* kCheckpointColumns =
    "c.id, c.run_id, c.epoch, c.step, c.file, c.wall_seconds, c.weights, c.images";

CheckpointRecord read_checkpoint(const Statement& s) {
  CheckpointRecord r;
  r.id = s.integer(0);
  r.run_id = s.integer(1);
  r.epoch = s.integer(2);
  r.step = s.integer(3);
  r.file = s.text(4);
  r.wall_seconds = s.real(5);
  r.weights = s.text(6);
  r.images = s.integer(7);  // NULL (not recorded) reads as 0
  return r;
}

// A loss row's columns from `first` on: step, epoch, loss.
LossRecord read_loss(const Statement& s, int first = 0) {
  return {s.integer(first), s.integer(first + 1), s.real(first + 2), s.text(first + 3)};
}

constexpr const char* kMetricColumns =
    "m.checkpoint_id, m.sampler, m.sampler_params_json, m.metric, m.variant, m.value, m.better,"
    " m.nfe, m.protocol_json";

MetricRecord read_metric(const Statement& s) {
  MetricRecord r;
  r.checkpoint_id = s.integer(0);
  r.sampler = s.text(1);
  r.sampler_params_json = s.text(2);
  r.metric = s.text(3);
  r.variant = s.text(4);
  r.value = s.real(5);
  r.better = s.text(6);
  r.nfe = s.integer(7);  // NULL (checkpoint scope, or recorded before version 4) reads as 0
  r.protocol_json = s.text(8);
  return r;
}

constexpr const char* kArtifactColumns = "a.checkpoint_id, a.sampler, a.kind, a.path";

ArtifactRecord read_artifact(const Statement& s) {
  return {s.integer(0), s.text(1), s.text(2), s.text(3)};
}

// Statements are cached by the address of their text, so each SQL string is a named constant.
const std::string kSelectSweepByName =
    std::string("SELECT ") + kSweepColumns + " FROM sweeps w WHERE w.name = ?1";
const std::string kSelectSweeps = std::string("SELECT ") + kSweepColumns + " FROM sweeps w ORDER BY w.name";
const std::string kSelectRunById =
    std::string("SELECT ") + kRunColumns + " FROM runs r WHERE r.id = ?1";
const std::string kSelectRunByHash = std::string("SELECT ") + kRunColumns +
                                     " FROM runs r WHERE r.sweep_id = ?1 AND r.config_hash = ?2";
const std::string kSelectTrained = std::string("SELECT ") + kRunColumns +
                                   " FROM runs r WHERE r.train_hash = ?1 AND r.status = 'done'"
                                   " ORDER BY r.id LIMIT 1";
const std::string kSelectRuns = std::string("SELECT ") + kRunColumns +
                                " FROM runs r JOIN sweeps s ON s.id = r.sweep_id"
                                " WHERE ?1 = '' OR s.name = ?1 ORDER BY s.name, r.grid_index, r.id";
const std::string kSelectCheckpointsOfRun = std::string("SELECT ") + kCheckpointColumns +
                                            " FROM checkpoints c WHERE c.run_id = ?1 ORDER BY c.step";
const std::string kSelectSweepCheckpoints =
    std::string("SELECT ") + kCheckpointColumns +
    " FROM checkpoints c JOIN runs r ON r.id = c.run_id JOIN sweeps w ON w.id = r.sweep_id"
    " WHERE ?1 = '' OR w.name = ?1 ORDER BY c.run_id, c.step";
const std::string kSelectCheckpointsWithIds =
    std::string("SELECT ") + kCheckpointColumns +
    " FROM checkpoints c WHERE c.id IN (SELECT value FROM json_each(?1)) ORDER BY c.run_id, c.step";
const std::string kSelectMetricsOfCheckpoint = std::string("SELECT ") + kMetricColumns +
                                               " FROM metrics m WHERE m.checkpoint_id = ?1 ORDER BY m.id";
const std::string kSelectSweepMetrics =
    std::string("SELECT ") + kMetricColumns +
    " FROM metrics m JOIN checkpoints c ON c.id = m.checkpoint_id"
    " JOIN runs r ON r.id = c.run_id JOIN sweeps w ON w.id = r.sweep_id"
    " WHERE ?1 = '' OR w.name = ?1 ORDER BY m.id";
const std::string kSelectMetricsOfCheckpoints =
    std::string("SELECT ") + kMetricColumns +
    " FROM metrics m WHERE m.checkpoint_id IN (SELECT value FROM json_each(?1)) ORDER BY m.id";
const std::string kSelectArtifactsOfCheckpoint = std::string("SELECT ") + kArtifactColumns +
                                                 " FROM artifacts a WHERE a.checkpoint_id = ?1 ORDER BY a.id";
const std::string kSelectSweepArtifacts =
    std::string("SELECT ") + kArtifactColumns +
    " FROM artifacts a JOIN checkpoints c ON c.id = a.checkpoint_id JOIN runs r ON r.id = c.run_id"
    " JOIN sweeps w ON w.id = r.sweep_id WHERE ?1 = '' OR w.name = ?1 ORDER BY a.id";
// metric_keys: the first key of metrics_by_key, and the next one after a given key.
const std::string kKeyScan = "SELECT metric, variant, sampler FROM metrics INDEXED BY metrics_by_key ";
const std::string kKeyOrder = " ORDER BY metric, variant, sampler LIMIT 1";
const std::string kFirstKey = kKeyScan + kKeyOrder;
const std::string kNextSampler =
    kKeyScan + "WHERE metric = ?1 AND variant = ?2 AND sampler > ?3" + kKeyOrder;
const std::string kNextVariant = kKeyScan + "WHERE metric = ?1 AND variant > ?2" + kKeyOrder;
const std::string kNextMetric = kKeyScan + "WHERE metric > ?1" + kKeyOrder;

// The rows of `sql` (a named constant: see above) with `params` bound to ?1, ?2, ..., each read
// with `read`.
template <typename Record, typename... Params>
std::vector<Record> rows(RunStore::Impl& impl, const std::string& sql, Record (*read)(const Statement&),
                         const Params&... params) {
  Statement s(impl, sql.c_str());
  [[maybe_unused]] int index = 0;
  (s.bind(++index, params), ...);
  std::vector<Record> out;
  while (s.step()) out.push_back(read(s));
  return out;
}

// The first of those rows, if any.
template <typename Record, typename... Params>
std::optional<Record> first_row(RunStore::Impl& impl, const std::string& sql,
                                Record (*read)(const Statement&), const Params&... params) {
  Statement s(impl, sql.c_str());
  [[maybe_unused]] int index = 0;
  (s.bind(++index, params), ...);
  if (!s.step()) return std::nullopt;
  return read(s);
}

// The rows of `sql`, whose ?1 is a JSON array of ids, read with `read`.
template <typename Record>
std::vector<Record> rows_for_ids(RunStore::Impl& impl, const std::string& sql,
                                 const std::vector<std::int64_t>& ids, Record (*read)(const Statement&)) {
  std::string text = "[";
  for (const auto id : ids) text += (text.size() > 1 ? "," : "") + std::to_string(id);
  return rows(impl, sql, read, text + "]");
}

}  // namespace

std::optional<SweepRecord> RunStore::find_sweep(const std::string& name) const {
  return first_row(*impl_, kSelectSweepByName, read_sweep, name);
}

std::vector<SweepRecord> RunStore::sweeps() const {
  return rows(*impl_, kSelectSweeps, read_sweep);
}

std::optional<RunRecord> RunStore::find_run(std::int64_t sweep_id,
                                            const std::string& config_hash) const {
  return first_row(*impl_, kSelectRunByHash, read_run, sweep_id, config_hash);
}

std::optional<RunRecord> RunStore::run(std::int64_t run_id) const {
  return first_row(*impl_, kSelectRunById, read_run, run_id);
}

std::vector<RunRecord> RunStore::runs(const std::string& sweep) const {
  return rows(*impl_, kSelectRuns, read_run, sweep);
}

std::optional<RunRecord> RunStore::find_trained(const std::string& train_hash) const {
  if (train_hash.empty()) return std::nullopt;  // "" means "not recorded", not a shared identity
  return first_row(*impl_, kSelectTrained, read_run, train_hash);
}

std::vector<CheckpointRecord> RunStore::checkpoints(std::int64_t run_id) const {
  return rows(*impl_, kSelectCheckpointsOfRun, read_checkpoint, run_id);
}

std::vector<LossRecord> RunStore::losses(std::int64_t run_id) const {
  Statement s(*impl_, "SELECT step, epoch, loss, terms_json FROM losses WHERE run_id = ?1 ORDER BY step");
  s.bind(1, run_id);
  std::vector<LossRecord> out;
  while (s.step()) out.push_back(read_loss(s));
  return out;
}

std::vector<std::pair<std::int64_t, LossRecord>> RunStore::sweep_losses(const std::string& sweep) const {
  Statement s(*impl_,
              "SELECT l.run_id, l.step, l.epoch, l.loss, l.terms_json FROM losses l JOIN runs r ON r.id = l.run_id"
              " JOIN sweeps w ON w.id = r.sweep_id WHERE ?1 = '' OR w.name = ?1"
              " ORDER BY l.run_id, l.step");
  s.bind(1, sweep);
  std::vector<std::pair<std::int64_t, LossRecord>> out;
  while (s.step()) out.push_back({s.integer(0), read_loss(s, 1)});
  return out;
}

std::vector<MetricRecord> RunStore::metrics(std::int64_t checkpoint_id) const {
  return rows(*impl_, kSelectMetricsOfCheckpoint, read_metric, checkpoint_id);
}

std::int64_t RunStore::metric_count(std::int64_t checkpoint_id) const {
  Statement s(*impl_, "SELECT COUNT(*) FROM metrics WHERE checkpoint_id = ?1");
  s.bind(1, checkpoint_id);
  return s.step() ? s.integer(0) : 0;
}

std::vector<ArtifactRecord> RunStore::artifacts(std::int64_t checkpoint_id) const {
  return rows(*impl_, kSelectArtifactsOfCheckpoint, read_artifact, checkpoint_id);
}

std::vector<ArtifactRecord> RunStore::sweep_artifacts(const std::string& sweep) const {
  return rows(*impl_, kSelectSweepArtifacts, read_artifact, sweep);
}

std::vector<CheckpointRecord> RunStore::sweep_checkpoints(const std::string& sweep) const {
  return rows(*impl_, kSelectSweepCheckpoints, read_checkpoint, sweep);
}

std::vector<MetricRecord> RunStore::sweep_metrics(const std::string& sweep) const {
  return rows(*impl_, kSelectSweepMetrics, read_metric, sweep);
}

bool MetricKey::operator<(const MetricKey& o) const {
  return std::tie(metric, variant, sampler) < std::tie(o.metric, o.variant, o.sampler);
}

bool MetricKey::operator==(const MetricKey& o) const {
  return metric == o.metric && variant == o.variant && sampler == o.sampler;
}

std::vector<MetricKey> RunStore::metric_keys(const std::string& sweep) const {
  std::vector<std::pair<std::int64_t, MetricKey>> first;  // (first id, key)
  if (!has_report_index()) {
    Statement s(*impl_,
                "SELECT MIN(m.id), m.metric, m.variant, m.sampler FROM metrics m"
                " JOIN checkpoints c ON c.id = m.checkpoint_id JOIN runs r ON r.id = c.run_id"
                " JOIN sweeps w ON w.id = r.sweep_id WHERE ?1 = '' OR w.name = ?1"
                " GROUP BY m.metric, m.variant, m.sampler");
    s.bind(1, sweep);
    while (s.step()) first.push_back({s.integer(0), {s.text(1), s.text(2), s.text(3)}});
  } else {
    // Skip from key to key through the index (SQLite skips only with ANALYZE statistics), then
    // find each key's first value: a few index searches however many values each key has.
    std::vector<MetricKey> keys;
    auto next = [&](const char* sql, int bound) {
      Statement s(*impl_, sql);
      const auto& last = keys.back();
      if (bound >= 1) s.bind(1, last.metric);
      if (bound >= 2) s.bind(2, last.variant);
      if (bound >= 3) s.bind(3, last.sampler);
      if (!s.step()) return false;
      keys.push_back({s.text(0), s.text(1), s.text(2)});
      return true;
    };
    {
      Statement s(*impl_, kFirstKey.c_str());
      if (s.step()) keys.push_back({s.text(0), s.text(1), s.text(2)});
    }
    while (!keys.empty() &&
           (next(kNextSampler.c_str(), 3) || next(kNextVariant.c_str(), 2) ||
            next(kNextMetric.c_str(), 1))) {
    }
    for (const auto& key : keys) {
      Statement s(*impl_, sweep.empty()
                              ? "SELECT MIN(id) FROM metrics INDEXED BY metrics_by_key"
                                " WHERE metric = ?1 AND variant = ?2 AND sampler = ?3"
                              : "SELECT m.id FROM metrics m INDEXED BY metrics_by_key"
                                " JOIN checkpoints c ON c.id = m.checkpoint_id"
                                " JOIN runs r ON r.id = c.run_id JOIN sweeps w ON w.id = r.sweep_id"
                                " WHERE m.metric = ?1 AND m.variant = ?2 AND m.sampler = ?3"
                                " AND w.name = ?4 ORDER BY m.id LIMIT 1");
      s.bind(1, key.metric).bind(2, key.variant).bind(3, key.sampler);
      if (!sweep.empty()) s.bind(4, sweep);
      if (s.step() && sqlite3_column_type(s.handle(), 0) != SQLITE_NULL)
        first.push_back({s.integer(0), key});
    }
  }
  std::sort(first.begin(), first.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<MetricKey> out;
  Statement better(*impl_, "SELECT better FROM metrics WHERE id = ?1");
  for (auto& [id, key] : first) {
    better.bind(1, id);
    if (better.step()) key.better = better.text(0);
    better.reset();
    out.push_back(std::move(key));
  }
  return out;
}

std::vector<std::pair<std::int64_t, std::int64_t>> RunStore::final_checkpoints(
    const std::string& sweep) const {
  // Per run: its checkpoints from the last step back, until one has a value (both by index).
  Statement s(*impl_,
              "SELECT r.id, COALESCE("
              " (SELECT c.id FROM checkpoints c WHERE c.run_id = r.id AND EXISTS"
              "   (SELECT 1 FROM metrics m WHERE m.checkpoint_id = c.id) ORDER BY c.step DESC LIMIT 1),"
              " (SELECT c.id FROM checkpoints c WHERE c.run_id = r.id ORDER BY c.step DESC LIMIT 1))"
              " FROM runs r JOIN sweeps w ON w.id = r.sweep_id WHERE ?1 = '' OR w.name = ?1");
  s.bind(1, sweep);
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  while (s.step()) {
    if (sqlite3_column_type(s.handle(), 1) != SQLITE_NULL) out.push_back({s.integer(0), s.integer(1)});
  }
  return out;
}

std::vector<std::pair<std::int64_t, std::int64_t>> RunStore::best_checkpoints(
    const MetricKey& key) const {
  // One pass over the key's values (a range of metrics_by_key); the best per run is kept here,
  // which is quicker than SQLite sorting them for a window function.
  const bool higher = key.better == "higher";
  Statement s(*impl_,
              "SELECT c.run_id, c.id, c.step, m.value FROM metrics m"
              " JOIN checkpoints c ON c.id = m.checkpoint_id"
              " WHERE m.metric = ?1 AND m.variant = ?2 AND m.sampler = ?3 AND m.value IS NOT NULL");
  s.bind(1, key.metric).bind(2, key.variant).bind(3, key.sampler);
  struct Best {
    std::int64_t checkpoint, step;
    double value;
  };
  std::unordered_map<std::int64_t, Best> best;
  std::vector<std::int64_t> order;  // runs in the order first seen
  while (s.step()) {
    const double value = s.real(3);
    if (!std::isfinite(value)) continue;
    const Best candidate{s.integer(1), s.integer(2), value};
    auto [it, added] = best.try_emplace(s.integer(0), candidate);
    if (added) {
      order.push_back(it->first);
    } else if (improves(higher, value, it->second.value) ||
               (value == it->second.value && candidate.step < it->second.step)) {
      it->second = candidate;
    }
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (const auto run : order) out.push_back({run, best[run].checkpoint});
  return out;
}

std::vector<CheckpointRecord> RunStore::checkpoints_with_ids(const std::vector<std::int64_t>& ids) const {
  return rows_for_ids(*impl_, kSelectCheckpointsWithIds, ids, read_checkpoint);
}

std::vector<MetricRecord> RunStore::metrics_of_checkpoints(const std::vector<std::int64_t>& ids) const {
  return rows_for_ids(*impl_, kSelectMetricsOfCheckpoints, ids, read_metric);
}

}  // namespace difflab
