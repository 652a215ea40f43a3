#pragma once
// The SQLite store of sweeps, runs, checkpoints, losses and metric values (docs/database.md).
// The store layer owns the database: its schema and migrations (schema.cpp), every write with its
// transactions and claims (run_store.cpp), every read, the reports' bulk reads among them
// (store_reads.cpp), and folding one store into another (store_merge.cpp); SQLite stays inside
// it (sqlite_statement.hpp). It may use only the public API's errors.hpp and SQLite: nothing
// above it, so any layer can read or write runs without pulling in reports or training.
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace difflab {

/// The time now in UTC, as strftime `format` writes it; the default is how the store records times.
std::string utc_now(const char* format = "%Y-%m-%dT%H:%M:%SZ");

enum class RunStatus { pending, running, done, failed };
const char* run_status_name(RunStatus status);
RunStatus parse_run_status(const std::string& name);

struct SweepRecord {
  std::int64_t id = 0;
  std::string name;
  std::string file;       // path of the sweep file as given
  std::string file_text;  // its contents
  std::string created_at;  // ISO 8601 UTC
};

struct RunRecord {
  std::int64_t id = 0;
  std::int64_t sweep_id = 0;
  std::int64_t grid_index = 0;
  std::string config_json;  // the fully resolved config of this grid point
  std::string config_hash;  // hash of config_json: the run's stable identity
  std::string train_hash;   // hash of the training-relevant part: runs sharing it share checkpoints
  std::string axes_json;    // {"schedule.plugin": "linear", "seed": 0}
  std::int64_t seed = 0;
  std::string device;
  RunStatus status = RunStatus::pending;
  std::string reason;  // why it failed
  std::string started_at;   // ISO 8601 UTC or ""
  std::string finished_at;  // ISO 8601 UTC or ""
  double train_seconds = 0;
  double eval_seconds = 0;
  std::string framework_version;
  std::string plugin_versions_json;  // {"schedule/linear": "1.0.0 (libdifflab_schedule_linear.so)"}
  std::int64_t pid = 0;  // process that runs it, while running
  /// The schedule's terminal signal, alpha bar at t = T: how much of the data survives into the
  /// x_T that sampling draws from N(0, I); NaN when not recorded (stores before version 3).
  double abar_T = std::numeric_limits<double>::quiet_NaN();
  /// A latent diffusion run: the factor its autoencoder's latents were scaled by to unit variance
  /// (Rombach et al. 2022, sec. 4.3.2); NaN otherwise (and in stores before version 5).
  double latent_scale = std::numeric_limits<double>::quiet_NaN();
};

/// What claim_run found.
enum class Claim {
  claimed,             // it was pending, failed (with retry), or owned by a dead process: now ours
  done,                // finished before
  failed_before,       // failed, and the caller does not retry failed runs
  running_elsewhere,   // a live process runs it
  training_elsewhere,  // a live process runs another run of the same training: wait, then reuse
};

struct ClaimResult {
  Claim outcome = Claim::claimed;
  RunRecord run;              // the run as it was before the claim
  std::int64_t other_run = 0;  // running_elsewhere, training_elsewhere: the run and its process
  std::int64_t other_pid = 0;
};

struct CheckpointRecord {
  std::int64_t id = 0;
  std::int64_t run_id = 0;
  std::int64_t epoch = 0;
  std::int64_t step = 0;
  std::string file;
  double wall_seconds = 0;  // training wall time when it was written
  std::string weights = "model";  // evaluated with: "model", or "ema(0.999)" for the EMA weights
  std::int64_t images = 0;  // training images seen (steps x batch rows); 0 when not recorded
};

struct LossRecord {
  std::int64_t step = 0;
  std::int64_t epoch = 0;
  double loss = 0;
  /// The loss's parts where it has several, as a JSON object ({"reconstruction": 0.012, "kl":
  /// 31.5} for an autoencoder); "" when it has none.
  std::string terms_json;
};

struct MetricRecord {
  std::int64_t checkpoint_id = 0;
  std::string sampler;              // label such as "ddim(eta=0,steps=50)"; "" for checkpoint-scope
  std::string sampler_params_json;  // {"plugin":"ddim","steps":50,"eta":0.0}; "{}" when none
  std::string metric;               // e.g. "mmd"
  std::string variant;              // e.g. "rbf(bandwidths=0.2,0.5,1,2,5)"
  double value = 0;  // NaN round-trips (stored as NULL)
  std::string better = "lower";  // "lower" or "higher": which way the metric improves, as it declares
  std::int64_t nfe = 0;  // the sampler's model calls per sample; 0 for checkpoint-scope metrics
  /// How the value was measured, as a JSON object: "samples" (generated rows measured),
  /// "reference" and "reference_size" (the data split compared against and its rows),
  /// "extractor" and "extractor_weights" (feature network and a hash of its weights),
  /// "common_noise", "nfe"; only the keys that apply. "{}" when not recorded (before version 6).
  std::string protocol_json = "{}";
};

/// Whether `candidate` beats `incumbent` for a metric whose values improve upwards
/// (`higher_is_better`, a MetricRecord's better == "higher") or downwards.
inline bool improves(bool higher_is_better, double candidate, double incumbent) {
  return higher_is_better ? candidate > incumbent : candidate < incumbent;
}

/// What a report's metric column holds: one metric, in one variant, from one sampler ("" for
/// checkpoint-scope metrics such as test_loss).
struct MetricKey {
  std::string metric, variant, sampler;
  std::string better = "lower";  // as its values declare; not part of the key's identity
  bool operator<(const MetricKey& o) const;
  bool operator==(const MetricKey& o) const;
};

struct ArtifactRecord {
  std::int64_t checkpoint_id = 0;
  std::string sampler;  // "" when not tied to a sampler
  std::string kind;     // "samples_npy", ...
  std::string path;
};

/// One SQLite database (WAL, foreign keys on, schema version in PRAGMA user_version with
/// migrations applied on open). Not thread-safe: one RunStore per thread.
class RunStore {
 public:
  static constexpr int kSchemaVersion = 6;

  enum class Access {
    read_write,  // creates the file if needed and applies migrations
    read_only,   // for readers such as reports: never writes, never blocks the writer
  };

  /// InputError when the file is not a difflab store (or, read-only, does not exist).
  explicit RunStore(const std::string& path, Access access = Access::read_write);
  ~RunStore();
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;

  int schema_version() const;
  const std::string& path() const { return path_; }

  /// Runs `fn` in one transaction (BEGIN IMMEDIATE ... COMMIT; ROLLBACK and rethrow on error).
  /// Nested calls join the outermost transaction: an exception rolls all of it back.
  void transaction(const std::function<void()>& fn);

  /// Runs `fn`'s reads in one read transaction: they all see the store as it was at the first
  /// read, however the writer goes on (WAL). Joins an enclosing transaction.
  void snapshot(const std::function<void()>& fn) const;

  std::optional<SweepRecord> find_sweep(const std::string& name) const;
  /// Inserts a sweep, or returns the id of the sweep of that name (its file is left as is).
  std::int64_t add_sweep(const std::string& name, const std::string& file,
                         const std::string& file_text);
  void update_sweep_file(std::int64_t sweep_id, const std::string& file, const std::string& file_text);
  std::vector<SweepRecord> sweeps() const;

  /// Inserts a run, or returns the id of the run with the same (sweep_id, config_hash).
  std::int64_t add_run(const RunRecord& run);
  std::optional<RunRecord> find_run(std::int64_t sweep_id, const std::string& config_hash) const;
  std::optional<RunRecord> run(std::int64_t run_id) const;
  /// Runs of one sweep by grid index, or of all sweeps when `sweep` is empty.
  std::vector<RunRecord> runs(const std::string& sweep = "") const;
  /// A done run with this train_hash whose checkpoints can be reused, if any.
  std::optional<RunRecord> find_trained(const std::string& train_hash) const;

  /// Status transitions with UTC ISO 8601 times; RunError if the run does not exist. Running
  /// clears the reason and finished_at of an earlier try; done and failed set pid to 0.
  void mark_running(std::int64_t run_id, const std::string& device, std::int64_t pid);
  /// Takes the run for process `pid` in one BEGIN IMMEDIATE transaction, so two processes on one
  /// store never both run it: checks its status and the runs that share its train_hash, and marks
  /// it running only when no live process (`alive`, for pids other than `pid`) owns it or trains
  /// the same model.
  ClaimResult claim_run(std::int64_t run_id, const std::string& device, std::int64_t pid, bool retry_failed,
                        const std::function<bool(std::int64_t pid)>& alive);
  void mark_done(std::int64_t run_id, double train_seconds, double eval_seconds);
  /// Records the scale a latent diffusion run's latents were multiplied by.
  void set_latent_scale(std::int64_t run_id, double scale);
  void mark_failed(std::int64_t run_id, const std::string& reason);
  /// Continues a run with a longer training (train.epochs or train.steps raised, nothing else in
  /// training changed): its grid index, config, hashes and axes become `longer`'s, and a done run
  /// is pending again; its checkpoints, losses and metric values stay, and training goes on from
  /// the last checkpoint.
  void continue_run(std::int64_t run_id, const RunRecord& longer);
  /// Copies another store's state of the same run (status, reason, device, times, versions);
  /// what `runner merge` uses. pid becomes 0: the process belonged to the other store.
  void set_run_state(std::int64_t run_id, const RunRecord& state);

  /// Inserts or replaces the checkpoint of (run_id, step); returns its id.
  std::int64_t add_checkpoint(const CheckpointRecord& checkpoint);
  std::vector<CheckpointRecord> checkpoints(std::int64_t run_id) const;  // by step

  /// Inserts or replaces losses keyed by (run_id, step).
  void add_losses(std::int64_t run_id, const std::vector<LossRecord>& losses);
  std::vector<LossRecord> losses(std::int64_t run_id) const;  // by step
  /// (run id, loss) of a sweep's runs (every sweep's when `sweep` is empty), by run id then step.
  std::vector<std::pair<std::int64_t, LossRecord>> sweep_losses(const std::string& sweep = "") const;

  /// Inserts or replaces the value keyed by (checkpoint, sampler, metric, variant).
  void add_metric(const MetricRecord& metric);
  std::vector<MetricRecord> metrics(std::int64_t checkpoint_id) const;
  /// Number of metric rows recorded for a checkpoint (to skip re-evaluating it).
  std::int64_t metric_count(std::int64_t checkpoint_id) const;

  void add_artifact(const ArtifactRecord& artifact);
  std::vector<ArtifactRecord> artifacts(std::int64_t checkpoint_id) const;
  /// Artifacts of a sweep's checkpoints (every sweep's when `sweep` is empty), as recorded.
  std::vector<ArtifactRecord> sweep_artifacts(const std::string& sweep = "") const;

  /// Bulk reads for reports (one query each, whatever the store's size).
  /// Checkpoints of a sweep's runs (every sweep's when `sweep` is empty), by run id then step.
  std::vector<CheckpointRecord> sweep_checkpoints(const std::string& sweep = "") const;
  /// Metric values of those checkpoints, in the order they were first recorded.
  std::vector<MetricRecord> sweep_metrics(const std::string& sweep = "") const;

  /// Reads that let a report show one checkpoint per run without reading every metric value:
  /// index searches per metric key and per run, given the metrics_by_key index that a writer of
  /// this version adds when it opens the store. Without it they are right but scan the metrics.
  bool has_report_index() const;
  /// The distinct keys of a sweep's metric values (every sweep's when `sweep` is empty), in the
  /// order each was first recorded.
  std::vector<MetricKey> metric_keys(const std::string& sweep = "") const;
  /// (run id, checkpoint id) for each run of a sweep that has checkpoints: its last checkpoint
  /// that has metric values, else its last checkpoint.
  std::vector<std::pair<std::int64_t, std::int64_t>> final_checkpoints(const std::string& sweep = "") const;
  /// (run id, checkpoint id) for each run of any sweep that has a finite value of `key`: the
  /// checkpoint with the best value (lowest, or highest when key.better is "higher"), the
  /// earliest (by step) on ties.
  std::vector<std::pair<std::int64_t, std::int64_t>> best_checkpoints(const MetricKey& key) const;
  /// The checkpoints with these ids, by run id then step; their metric values, as recorded.
  std::vector<CheckpointRecord> checkpoints_with_ids(const std::vector<std::int64_t>& ids) const;
  std::vector<MetricRecord> metrics_of_checkpoints(const std::vector<std::int64_t>& ids) const;

  struct Impl;

 private:
  std::string path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace difflab
