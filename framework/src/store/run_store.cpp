// RunStore: the SQLite store of sweeps, runs, checkpoints, losses, metrics and artifacts.
#include "store/run_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <limits>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "difflab/errors.hpp"

namespace difflab {
namespace {

// PRAGMA application_id of a difflab store ("DFLB"): tells our databases from other SQLite files.
constexpr int kApplicationId = 0x44464c42;

// Migration i takes the schema from version i to i + 1; append, never edit a released one.
constexpr std::array<const char*, RunStore::kSchemaVersion> kMigrations = {
    // 1: the initial schema.
    R"sql(
CREATE TABLE sweeps (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  file       TEXT NOT NULL DEFAULT '',
  file_text  TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL
);
CREATE TABLE runs (
  id                   INTEGER PRIMARY KEY,
  sweep_id             INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
  grid_index           INTEGER NOT NULL,
  config_json          TEXT NOT NULL,
  config_hash          TEXT NOT NULL,
  train_hash           TEXT NOT NULL DEFAULT '',
  axes_json            TEXT NOT NULL DEFAULT '{}',
  seed                 INTEGER NOT NULL DEFAULT 0,
  device               TEXT NOT NULL DEFAULT '',
  status               TEXT NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'running', 'done', 'failed')),
  reason               TEXT NOT NULL DEFAULT '',
  started_at           TEXT,
  finished_at          TEXT,
  train_seconds        REAL NOT NULL DEFAULT 0,
  eval_seconds         REAL NOT NULL DEFAULT 0,
  framework_version    TEXT NOT NULL DEFAULT '',
  plugin_versions_json TEXT NOT NULL DEFAULT '{}',
  pid                  INTEGER NOT NULL DEFAULT 0,
  UNIQUE (sweep_id, config_hash)
);
CREATE INDEX runs_by_grid_index ON runs(sweep_id, grid_index);
CREATE INDEX runs_by_train_hash ON runs(train_hash, status);
CREATE TABLE checkpoints (
  id           INTEGER PRIMARY KEY,
  run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  epoch        INTEGER NOT NULL,
  step         INTEGER NOT NULL,
  file         TEXT NOT NULL DEFAULT '',
  wall_seconds REAL NOT NULL DEFAULT 0,
  created_at   TEXT NOT NULL,
  UNIQUE (run_id, step)
);
CREATE TABLE losses (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step   INTEGER NOT NULL,
  epoch  INTEGER NOT NULL,
  loss   REAL,  -- NULL is a NaN loss: SQLite stores NaN as NULL
  PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
CREATE TABLE metrics (
  id                  INTEGER PRIMARY KEY,
  checkpoint_id       INTEGER NOT NULL REFERENCES checkpoints(id) ON DELETE CASCADE,
  sampler             TEXT NOT NULL DEFAULT '',
  sampler_params_json TEXT NOT NULL DEFAULT '{}',
  metric              TEXT NOT NULL,
  variant             TEXT NOT NULL DEFAULT '',
  value               REAL,  -- NULL is NaN
  UNIQUE (checkpoint_id, sampler, metric, variant)
);
CREATE TABLE artifacts (
  id            INTEGER PRIMARY KEY,
  checkpoint_id INTEGER NOT NULL REFERENCES checkpoints(id) ON DELETE CASCADE,
  sampler       TEXT NOT NULL DEFAULT '',
  kind          TEXT NOT NULL,
  path          TEXT NOT NULL,
  UNIQUE (checkpoint_id, sampler, kind)
);
PRAGMA application_id = 1145457730;
)sql",
    // 2: which weights a checkpoint was evaluated with: 'model', or 'ema(DECAY)' for the moving
    // average of the weights.
    R"sql(
ALTER TABLE checkpoints ADD COLUMN weights TEXT NOT NULL DEFAULT 'model';
)sql",
    // 3: which way each metric value improves, as its plugin declares (values recorded before
    // plugins declared it came from the in-tree metrics: higher is better for inception_score,
    // psnr and lpips among samples (diversity), lower for the rest); and each run's terminal
    // signal alpha bar_T.
    R"sql(
ALTER TABLE metrics ADD COLUMN better TEXT NOT NULL DEFAULT 'lower' CHECK (better IN ('lower', 'higher'));
UPDATE metrics SET better = 'higher'
  WHERE metric IN ('inception_score', 'psnr') OR (metric = 'lpips' AND sampler <> '');
ALTER TABLE runs ADD COLUMN abar_T REAL;
)sql",
};
static_assert(kApplicationId == 1145457730, "migration 1 writes kApplicationId literally");

// What quick reports need besides the schema's indexes: metric values by (metric, variant,
// sampler), then in the order they were recorded. Writers add it when they open a store (no
// version bump: older runners read and write such a store as before); readers check for it.
constexpr const char* kMetricsByKeyIndex = "metrics_by_key";
constexpr const char* kCreateMetricsByKey =
    "CREATE INDEX IF NOT EXISTS metrics_by_key"
    " ON metrics(metric, variant, sampler, id, checkpoint_id, value)";

constexpr const char* kRunColumns =
    "r.id, r.sweep_id, r.grid_index, r.config_json, r.config_hash, r.train_hash, r.axes_json, "
    "r.seed, r.device, r.status, r.reason, r.started_at, r.finished_at, r.train_seconds, "
    "r.eval_seconds, r.framework_version, r.plugin_versions_json, r.pid, r.abar_T";

}  // namespace

const char* run_status_name(RunStatus status) {
  switch (status) {
    case RunStatus::pending:
      return "pending";
    case RunStatus::running:
      return "running";
    case RunStatus::done:
      return "done";
    case RunStatus::failed:
      return "failed";
  }
  return "unknown";
}

RunStatus parse_run_status(const std::string& name) {
  for (auto status : {RunStatus::pending, RunStatus::running, RunStatus::done, RunStatus::failed}) {
    if (name == run_status_name(status)) return status;
  }
  throw InputError("unknown run status '" + name + "' (expected pending, running, done or failed)");
}

struct RunStore::Impl {
  std::string path;
  sqlite3* db = nullptr;
  int transaction_depth = 0;
  // Prepared once per SQL text and reused: add_losses and reports run the same statements often.
  std::unordered_map<const char*, sqlite3_stmt*> statements;

  ~Impl() {
    for (auto& [sql, stmt] : statements) sqlite3_finalize(stmt);
    if (db) sqlite3_close_v2(db);
  }

  [[noreturn]] void fail(int rc, const std::string& what) const {
    const char* message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    throw RunError("SQLite error in " + path + " while " + what + ": " + message);
  }

  // Setup statements map a foreign or damaged file to InputError: the user gave the wrong path.
  void exec_setup(const std::string& sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    if (rc == SQLITE_OK) return;
    const std::string message = error ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT) {
      throw InputError(path + " is not a usable SQLite database (" + message + ")");
    }
    throw RunError("SQLite error in " + path + " while running '" + sql + "': " + message);
  }

  void exec(const char* sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
    if (rc == SQLITE_OK) return;
    const std::string message = error ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    throw RunError("SQLite error in " + path + " while running '" + sql + "': " + message);
  }

  std::int64_t pragma_int(const char* name) {
    std::int64_t value = 0;
    auto read = [](void* out, int, char** values, char**) {
      *static_cast<std::int64_t*>(out) = values[0] ? std::stoll(values[0]) : 0;
      return 0;
    };
    const std::string sql = std::string("PRAGMA ") + name;
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), read, &value, &error);
    if (rc != SQLITE_OK) {
      const std::string message = error ? error : sqlite3_errstr(rc);
      sqlite3_free(error);
      if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT) {
        throw InputError(path + " is not a usable SQLite database (" + message + ")");
      }
      throw RunError("SQLite error in " + path + " while reading PRAGMA " + name + ": " + message);
    }
    return value;
  }

  sqlite3_stmt* prepare(const char* sql) {
    auto it = statements.find(sql);
    if (it != statements.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) fail(rc, std::string("preparing '") + sql + "'");
    statements.emplace(sql, stmt);
    return stmt;
  }

  void migrate() {
    while (pragma_int("user_version") < RunStore::kSchemaVersion) {
      // Re-read under the write lock: another process may have migrated while we waited.
      exec("BEGIN IMMEDIATE");
      try {
        for (auto v = pragma_int("user_version"); v < RunStore::kSchemaVersion; ++v) {
          exec(kMigrations[static_cast<std::size_t>(v)]);
          exec(("PRAGMA user_version = " + std::to_string(v + 1)).c_str());
        }
        exec("COMMIT");
      } catch (...) {
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
    }
  }
};

namespace {

// One use of a cached prepared statement: binds by position (1-based), resets on destruction.
class Statement {
 public:
  Statement(RunStore::Impl& impl, const char* sql)
      : impl_(impl), sql_(sql), stmt_(impl.prepare(sql)) {}
  ~Statement() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, std::int64_t value) {
    check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  Statement& bind(int index, double value) {
    check(sqlite3_bind_double(stmt_, index, value));
    return *this;
  }
  Statement& bind(int index, const std::string& value) {
    check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                            SQLITE_TRANSIENT));
    return *this;
  }
  // An empty timestamp is stored as NULL ("not yet").
  Statement& bind_or_null(int index, const std::string& value) {
    if (value.empty()) {
      check(sqlite3_bind_null(stmt_, index));
      return *this;
    }
    return bind(index, value);
  }

  /// Advances to the next row; false when done.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    impl_.fail(rc, std::string("running '") + sql_ + "'");
  }
  /// Runs a statement that returns no rows; the number of rows it changed.
  int run() {
    while (step()) {
    }
    return sqlite3_changes(impl_.db);
  }
  sqlite3_stmt* handle() const { return stmt_; }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  double real(int column) const {
    if (sqlite3_column_type(stmt_, column) == SQLITE_NULL)
      return std::numeric_limits<double>::quiet_NaN();
    return sqlite3_column_double(stmt_, column);
  }
  std::string text(int column) const {
    const auto* data = sqlite3_column_text(stmt_, column);
    if (!data) return {};
    return std::string(reinterpret_cast<const char*>(data),
                       static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) impl_.fail(rc, std::string("binding a parameter of '") + sql_ + "'");
  }

  RunStore::Impl& impl_;
  const char* sql_;
  sqlite3_stmt* stmt_;
};

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
  return r;
}

SweepRecord read_sweep(const Statement& s) {
  SweepRecord r;
  r.id = s.integer(0);
  r.name = s.text(1);
  r.file = s.text(2);
  r.file_text = s.text(3);
  r.created_at = s.text(4);
  return r;
}

CheckpointRecord read_checkpoint(const Statement& s) {
  CheckpointRecord r;
  r.id = s.integer(0);
  r.run_id = s.integer(1);
  r.epoch = s.integer(2);
  r.step = s.integer(3);
  r.file = s.text(4);
  r.wall_seconds = s.real(5);
  r.weights = s.text(6);
  return r;
}

MetricRecord read_metric(const Statement& s) {
  MetricRecord r;
  r.checkpoint_id = s.integer(0);
  r.sampler = s.text(1);
  r.sampler_params_json = s.text(2);
  r.metric = s.text(3);
  r.variant = s.text(4);
  r.value = s.real(5);
  r.better = s.text(6);
  return r;
}

// Statements are cached by the address of their text, so each SQL string is a named constant.
const std::string kSelectRunById =
    std::string("SELECT ") + kRunColumns + " FROM runs r WHERE r.id = ?1";
const std::string kSelectRunByHash = std::string("SELECT ") + kRunColumns +
                                     " FROM runs r WHERE r.sweep_id = ?1 AND r.config_hash = ?2";
const std::string kSelectTrained = std::string("SELECT ") + kRunColumns +
                                   " FROM runs r WHERE r.train_hash = ?1 AND r.status = 'done'"
                                   " ORDER BY r.id LIMIT 1";
// metric_keys: the first key of metrics_by_key, and the next one after a given key.
const std::string kKeyScan = "SELECT metric, variant, sampler FROM metrics INDEXED BY metrics_by_key ";
const std::string kKeyOrder = " ORDER BY metric, variant, sampler LIMIT 1";
const std::string kFirstKey = kKeyScan + kKeyOrder;
const std::string kNextSampler =
    kKeyScan + "WHERE metric = ?1 AND variant = ?2 AND sampler > ?3" + kKeyOrder;
const std::string kNextVariant = kKeyScan + "WHERE metric = ?1 AND variant > ?2" + kKeyOrder;
const std::string kNextMetric = kKeyScan + "WHERE metric > ?1" + kKeyOrder;
const std::string kSelectRuns = std::string("SELECT ") + kRunColumns +
                                " FROM runs r JOIN sweeps s ON s.id = r.sweep_id"
                                " WHERE ?1 = '' OR s.name = ?1 ORDER BY s.name, r.grid_index, r.id";

}  // namespace

RunStore::RunStore(const std::string& path, Access access)
    : path_(path), impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw InputError(path + " is a folder, not a run database");
  if (access == Access::read_only && !std::filesystem::exists(path, ec)) {
    throw InputError(path + ": no such run database");
  }
  // A reader is used by one thread (see the class comment): it skips SQLite's per-call mutex.
  const int flags = access == Access::read_only ? SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX
                                                : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  const int rc = sqlite3_open_v2(path.c_str(), &impl_->db, flags, nullptr);
  if (rc != SQLITE_OK) {
    const std::string message = impl_->db ? sqlite3_errmsg(impl_->db) : sqlite3_errstr(rc);
    throw InputError("cannot open run database " + path + ": " + message);
  }
  impl_->exec_setup("PRAGMA busy_timeout = 10000");

  // Check what the file is before changing it (WAL rewrites the header).
  const auto version = impl_->pragma_int("user_version");
  const auto application = impl_->pragma_int("application_id");
  if (application != 0 && application != kApplicationId) {
    throw InputError(path +
                     " is a SQLite database of another application, not a difflab run store");
  }
  if (version > kSchemaVersion) {
    throw InputError(path + " has run-store schema version " + std::to_string(version) +
                     ", newer than this difflab build understands (" +
                     std::to_string(kSchemaVersion) + "): use a newer runner");
  }
  if (version == 0) {
    std::int64_t tables = 0;
    {
      Statement count(*impl_, "SELECT COUNT(*) FROM sqlite_master");
      if (count.step()) tables = count.integer(0);
    }
    if (tables > 0) throw InputError(path + " is a SQLite database but not a difflab run store");
  }
  if (access == Access::read_only) {
    if (version < kSchemaVersion) {
      throw InputError(path + " has run-store schema version " + std::to_string(version) +
                       "; run a sweep into it with this runner to upgrade it before reading");
    }
    impl_->exec_setup("PRAGMA query_only = ON");
    return;  // a reader changes nothing: the writer set WAL mode when it created the file
  }

  impl_->exec_setup("PRAGMA journal_mode = WAL");
  impl_->exec_setup("PRAGMA foreign_keys = ON");
  impl_->exec_setup("PRAGMA synchronous = NORMAL");
  impl_->migrate();
  impl_->exec_setup(kCreateMetricsByKey);
}

RunStore::~RunStore() = default;

int RunStore::schema_version() const { return static_cast<int>(impl_->pragma_int("user_version")); }

void RunStore::transaction(const std::function<void()>& fn) {
  if (impl_->transaction_depth > 0) {
    fn();
    return;
  }
  impl_->exec("BEGIN IMMEDIATE");
  impl_->transaction_depth = 1;
  try {
    fn();
    impl_->exec("COMMIT");
    impl_->transaction_depth = 0;
  } catch (...) {
    impl_->transaction_depth = 0;
    // A failed COMMIT may already have ended the transaction; ROLLBACK is then a harmless no-op.
    if (!sqlite3_get_autocommit(impl_->db))
      sqlite3_exec(impl_->db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void RunStore::snapshot(const std::function<void()>& fn) const {
  if (impl_->transaction_depth > 0 || !sqlite3_get_autocommit(impl_->db)) {
    fn();
    return;
  }
  // A deferred transaction takes no lock until its first read, then sees one WAL snapshot to
  // its end, while the writer goes on appending to the log.
  impl_->exec("BEGIN DEFERRED");
  impl_->transaction_depth = 1;
  try {
    fn();
    impl_->transaction_depth = 0;
    impl_->exec("COMMIT");
  } catch (...) {
    impl_->transaction_depth = 0;
    if (!sqlite3_get_autocommit(impl_->db))
      sqlite3_exec(impl_->db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::optional<SweepRecord> RunStore::find_sweep(const std::string& name) const {
  Statement s(*impl_, "SELECT id, name, file, file_text, created_at FROM sweeps WHERE name = ?1");
  s.bind(1, name);
  if (!s.step()) return std::nullopt;
  return read_sweep(s);
}

std::int64_t RunStore::add_sweep(const std::string& name, const std::string& file,
                                 const std::string& file_text) {
  std::int64_t id = 0;
  transaction([&] {
    Statement insert(
        *impl_,
        "INSERT INTO sweeps (name, file, file_text, created_at) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (name) DO NOTHING");
    insert.bind(1, name).bind(2, file).bind(3, file_text).bind(4, utc_now()).run();
    Statement select(*impl_, "SELECT id FROM sweeps WHERE name = ?1");
    select.bind(1, name);
    if (!select.step())
      throw RunError("sweep '" + name + "' vanished from " + path_ + " while adding it");
    id = select.integer(0);
  });
  return id;
}

void RunStore::update_sweep_file(std::int64_t sweep_id, const std::string& file,
                                 const std::string& file_text) {
  Statement s(*impl_, "UPDATE sweeps SET file = ?2, file_text = ?3 WHERE id = ?1");
  if (s.bind(1, sweep_id).bind(2, file).bind(3, file_text).run() != 1) {
    throw RunError("no sweep with id " + std::to_string(sweep_id) + " in " + path_);
  }
}

std::vector<SweepRecord> RunStore::sweeps() const {
  Statement s(*impl_, "SELECT id, name, file, file_text, created_at FROM sweeps ORDER BY name");
  std::vector<SweepRecord> out;
  while (s.step()) out.push_back(read_sweep(s));
  return out;
}

std::int64_t RunStore::add_run(const RunRecord& run) {
  std::int64_t id = 0;
  transaction([&] {
    Statement insert(
        *impl_,
        "INSERT INTO runs (sweep_id, grid_index, config_json, config_hash, train_hash,"
        " axes_json, seed, device, status, reason, started_at, finished_at, train_seconds,"
        " eval_seconds, framework_version, plugin_versions_json, pid, abar_T)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
        " ON CONFLICT (sweep_id, config_hash) DO UPDATE SET abar_T = coalesce(abar_T, excluded.abar_T)");
    insert.bind(1, run.sweep_id)
        .bind(2, run.grid_index)
        .bind(3, run.config_json)
        .bind(4, run.config_hash)
        .bind(5, run.train_hash)
        .bind(6, run.axes_json.empty() ? std::string("{}") : run.axes_json)
        .bind(7, run.seed)
        .bind(8, run.device)
        .bind(9, std::string(run_status_name(run.status)))
        .bind(10, run.reason)
        .bind_or_null(11, run.started_at)
        .bind_or_null(12, run.finished_at)
        .bind(13, run.train_seconds)
        .bind(14, run.eval_seconds)
        .bind(15, run.framework_version)
        .bind(16, run.plugin_versions_json.empty() ? std::string("{}") : run.plugin_versions_json)
        .bind(17, run.pid)
        .bind(18, run.abar_T)
        .run();
    Statement select(*impl_, "SELECT id FROM runs WHERE sweep_id = ?1 AND config_hash = ?2");
    select.bind(1, run.sweep_id).bind(2, run.config_hash);
    if (!select.step())
      throw RunError("run " + run.config_hash + " vanished from " + path_ + " while adding it");
    id = select.integer(0);
  });
  return id;
}

std::optional<RunRecord> RunStore::find_run(std::int64_t sweep_id,
                                            const std::string& config_hash) const {
  Statement s(*impl_, kSelectRunByHash.c_str());
  s.bind(1, sweep_id).bind(2, config_hash);
  if (!s.step()) return std::nullopt;
  return read_run(s);
}

std::optional<RunRecord> RunStore::run(std::int64_t run_id) const {
  Statement s(*impl_, kSelectRunById.c_str());
  s.bind(1, run_id);
  if (!s.step()) return std::nullopt;
  return read_run(s);
}

std::vector<RunRecord> RunStore::runs(const std::string& sweep) const {
  Statement s(*impl_, kSelectRuns.c_str());
  s.bind(1, sweep);
  std::vector<RunRecord> out;
  while (s.step()) out.push_back(read_run(s));
  return out;
}

std::optional<RunRecord> RunStore::find_trained(const std::string& train_hash) const {
  if (train_hash.empty()) return std::nullopt;  // "" means "not recorded", not a shared identity
  Statement s(*impl_, kSelectTrained.c_str());
  s.bind(1, train_hash);
  if (!s.step()) return std::nullopt;
  return read_run(s);
}

void RunStore::mark_running(std::int64_t run_id, const std::string& device, std::int64_t pid) {
  Statement s(*impl_,
              "UPDATE runs SET status = 'running', device = ?2, pid = ?3, started_at = ?4,"
              " finished_at = NULL, reason = '' WHERE id = ?1");
  if (s.bind(1, run_id).bind(2, device).bind(3, pid).bind(4, utc_now()).run() != 1) {
    throw RunError("no run with id " + std::to_string(run_id) + " in " + path_);
  }
}

ClaimResult RunStore::claim_run(std::int64_t run_id, const std::string& device, std::int64_t pid,
                               bool retry_failed, const std::function<bool(std::int64_t)>& alive) {
  ClaimResult result;
  transaction([&] {
    const auto current = run(run_id);
    if (!current) throw RunError("no run with id " + std::to_string(run_id) + " in " + path_);
    result.run = *current;
    if (current->status == RunStatus::done) {
      result.outcome = Claim::done;
      return;
    }
    if (current->status == RunStatus::failed && !retry_failed) {
      result.outcome = Claim::failed_before;
      return;
    }
    if (current->status == RunStatus::running && current->pid != pid && alive(current->pid)) {
      result.outcome = Claim::running_elsewhere;
      result.other_run = current->id;
      result.other_pid = current->pid;
      return;
    }
    if (!current->train_hash.empty()) {
      Statement s(*impl_,
                  "SELECT id, pid FROM runs WHERE train_hash = ?1 AND status = 'running' AND id <> ?2"
                  " AND pid <> ?3 ORDER BY id");
      s.bind(1, current->train_hash).bind(2, run_id).bind(3, pid);
      while (s.step()) {
        if (!alive(s.integer(1))) continue;
        result.outcome = Claim::training_elsewhere;
        result.other_run = s.integer(0);
        result.other_pid = s.integer(1);
        return;
      }
    }
    mark_running(run_id, device, pid);
    result.outcome = Claim::claimed;
  });
  return result;
}

void RunStore::mark_done(std::int64_t run_id, double train_seconds, double eval_seconds) {
  Statement s(*impl_,
              "UPDATE runs SET status = 'done', finished_at = ?2, train_seconds = ?3,"
              " eval_seconds = ?4, pid = 0, reason = '' WHERE id = ?1");
  s.bind(1, run_id).bind(2, utc_now()).bind(3, train_seconds).bind(4, eval_seconds);
  if (s.run() != 1) {
    throw RunError("no run with id " + std::to_string(run_id) + " in " + path_);
  }
}

void RunStore::mark_failed(std::int64_t run_id, const std::string& reason) {
  Statement s(
      *impl_,
      "UPDATE runs SET status = 'failed', reason = ?2, finished_at = ?3, pid = 0 WHERE id = ?1");
  if (s.bind(1, run_id).bind(2, reason).bind(3, utc_now()).run() != 1) {
    throw RunError("no run with id " + std::to_string(run_id) + " in " + path_);
  }
}

void RunStore::set_run_state(std::int64_t run_id, const RunRecord& state) {
  Statement s(*impl_,
              "UPDATE runs SET status = ?2, reason = ?3, device = ?4, started_at = ?5,"
              " finished_at = ?6, train_seconds = ?7, eval_seconds = ?8, framework_version = ?9,"
              " plugin_versions_json = ?10, pid = 0 WHERE id = ?1");
  s.bind(1, run_id)
      .bind(2, std::string(run_status_name(state.status)))
      .bind(3, state.reason)
      .bind(4, state.device)
      .bind_or_null(5, state.started_at)
      .bind_or_null(6, state.finished_at)
      .bind(7, state.train_seconds)
      .bind(8, state.eval_seconds)
      .bind(9, state.framework_version)
      .bind(10, state.plugin_versions_json.empty() ? std::string("{}") : state.plugin_versions_json);
  if (s.run() != 1) throw RunError("no run with id " + std::to_string(run_id) + " in " + path_);
}

std::int64_t RunStore::add_checkpoint(const CheckpointRecord& checkpoint) {
  std::int64_t id = 0;
  transaction([&] {
    // DO UPDATE (not INSERT OR REPLACE) keeps the row id, so its metrics stay attached.
    Statement upsert(*impl_,
                     "INSERT INTO checkpoints (run_id, epoch, step, file, wall_seconds, created_at,"
                     " weights) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                     " ON CONFLICT (run_id, step) DO UPDATE SET epoch = excluded.epoch,"
                     " file = excluded.file, wall_seconds = excluded.wall_seconds,"
                     " created_at = excluded.created_at, weights = excluded.weights");
    upsert.bind(1, checkpoint.run_id)
        .bind(2, checkpoint.epoch)
        .bind(3, checkpoint.step)
        .bind(4, checkpoint.file)
        .bind(5, checkpoint.wall_seconds)
        .bind(6, utc_now())
        .bind(7, checkpoint.weights)
        .run();
    Statement select(*impl_, "SELECT id FROM checkpoints WHERE run_id = ?1 AND step = ?2");
    select.bind(1, checkpoint.run_id).bind(2, checkpoint.step);
    if (!select.step()) throw RunError("checkpoint vanished from " + path_ + " while adding it");
    id = select.integer(0);
  });
  return id;
}

std::vector<CheckpointRecord> RunStore::checkpoints(std::int64_t run_id) const {
  Statement s(*impl_,
              "SELECT id, run_id, epoch, step, file, wall_seconds, weights FROM checkpoints"
              " WHERE run_id = ?1 ORDER BY step");
  s.bind(1, run_id);
  std::vector<CheckpointRecord> out;
  while (s.step()) out.push_back(read_checkpoint(s));
  return out;
}

void RunStore::add_losses(std::int64_t run_id, const std::vector<LossRecord>& losses) {
  if (losses.empty()) return;
  transaction([&] {
    Statement upsert(*impl_,
                     "INSERT INTO losses (run_id, step, epoch, loss) VALUES (?1, ?2, ?3, ?4)"
                     " ON CONFLICT (run_id, step) DO UPDATE SET epoch = excluded.epoch,"
                     " loss = excluded.loss");
    for (const auto& loss : losses) {
      upsert.bind(1, run_id).bind(2, loss.step).bind(3, loss.epoch).bind(4, loss.loss).run();
      upsert.reset();
    }
  });
}

std::vector<LossRecord> RunStore::losses(std::int64_t run_id) const {
  Statement s(*impl_, "SELECT step, epoch, loss FROM losses WHERE run_id = ?1 ORDER BY step");
  s.bind(1, run_id);
  std::vector<LossRecord> out;
  while (s.step()) out.push_back({s.integer(0), s.integer(1), s.real(2)});
  return out;
}

std::vector<std::pair<std::int64_t, LossRecord>> RunStore::sweep_losses(const std::string& sweep) const {
  Statement s(*impl_,
              "SELECT l.run_id, l.step, l.epoch, l.loss FROM losses l JOIN runs r ON r.id = l.run_id"
              " JOIN sweeps w ON w.id = r.sweep_id WHERE ?1 = '' OR w.name = ?1"
              " ORDER BY l.run_id, l.step");
  s.bind(1, sweep);
  std::vector<std::pair<std::int64_t, LossRecord>> out;
  while (s.step()) out.push_back({s.integer(0), {s.integer(1), s.integer(2), s.real(3)}});
  return out;
}

void RunStore::add_metric(const MetricRecord& metric) {
  Statement s(
      *impl_,
      "INSERT INTO metrics (checkpoint_id, sampler, sampler_params_json, metric, variant, value, better)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
      " ON CONFLICT (checkpoint_id, sampler, metric, variant) DO UPDATE SET"
      " sampler_params_json = excluded.sampler_params_json, value = excluded.value, better = excluded.better");
  s.bind(1, metric.checkpoint_id)
      .bind(2, metric.sampler)
      .bind(3, metric.sampler_params_json.empty() ? std::string("{}") : metric.sampler_params_json)
      .bind(4, metric.metric)
      .bind(5, metric.variant)
      .bind(6, metric.value)
      .bind(7, metric.better)
      .run();
}

std::vector<MetricRecord> RunStore::metrics(std::int64_t checkpoint_id) const {
  Statement s(
      *impl_,
      "SELECT checkpoint_id, sampler, sampler_params_json, metric, variant, value, better FROM metrics"
      " WHERE checkpoint_id = ?1 ORDER BY id");
  s.bind(1, checkpoint_id);
  std::vector<MetricRecord> out;
  while (s.step()) out.push_back(read_metric(s));
  return out;
}

std::int64_t RunStore::metric_count(std::int64_t checkpoint_id) const {
  Statement s(*impl_, "SELECT COUNT(*) FROM metrics WHERE checkpoint_id = ?1");
  s.bind(1, checkpoint_id);
  return s.step() ? s.integer(0) : 0;
}

void RunStore::add_artifact(const ArtifactRecord& artifact) {
  Statement s(*impl_,
              "INSERT INTO artifacts (checkpoint_id, sampler, kind, path) VALUES (?1, ?2, ?3, ?4)"
              " ON CONFLICT (checkpoint_id, sampler, kind) DO UPDATE SET path = excluded.path");
  s.bind(1, artifact.checkpoint_id)
      .bind(2, artifact.sampler)
      .bind(3, artifact.kind)
      .bind(4, artifact.path)
      .run();
}

std::vector<ArtifactRecord> RunStore::artifacts(std::int64_t checkpoint_id) const {
  Statement s(*impl_,
              "SELECT checkpoint_id, sampler, kind, path FROM artifacts WHERE checkpoint_id = ?1 "
              "ORDER BY id");
  s.bind(1, checkpoint_id);
  std::vector<ArtifactRecord> out;
  while (s.step()) out.push_back({s.integer(0), s.text(1), s.text(2), s.text(3)});
  return out;
}

std::vector<ArtifactRecord> RunStore::sweep_artifacts(const std::string& sweep) const {
  Statement s(*impl_,
              "SELECT a.checkpoint_id, a.sampler, a.kind, a.path FROM artifacts a"
              " JOIN checkpoints c ON c.id = a.checkpoint_id JOIN runs r ON r.id = c.run_id"
              " JOIN sweeps w ON w.id = r.sweep_id WHERE ?1 = '' OR w.name = ?1 ORDER BY a.id");
  s.bind(1, sweep);
  std::vector<ArtifactRecord> out;
  while (s.step()) out.push_back({s.integer(0), s.text(1), s.text(2), s.text(3)});
  return out;
}

std::vector<CheckpointRecord> RunStore::sweep_checkpoints(const std::string& sweep) const {
  Statement s(*impl_,
              "SELECT c.id, c.run_id, c.epoch, c.step, c.file, c.wall_seconds, c.weights FROM checkpoints c"
              " JOIN runs r ON r.id = c.run_id JOIN sweeps w ON w.id = r.sweep_id"
              " WHERE ?1 = '' OR w.name = ?1 ORDER BY c.run_id, c.step");
  s.bind(1, sweep);
  std::vector<CheckpointRecord> out;
  while (s.step()) out.push_back(read_checkpoint(s));
  return out;
}

std::vector<MetricRecord> RunStore::sweep_metrics(const std::string& sweep) const {
  Statement s(
      *impl_,
      "SELECT m.checkpoint_id, m.sampler, m.sampler_params_json, m.metric, m.variant, m.value, m.better"
      " FROM metrics m JOIN checkpoints c ON c.id = m.checkpoint_id"
      " JOIN runs r ON r.id = c.run_id JOIN sweeps w ON w.id = r.sweep_id"
      " WHERE ?1 = '' OR w.name = ?1 ORDER BY m.id");
  s.bind(1, sweep);
  std::vector<MetricRecord> out;
  while (s.step()) out.push_back(read_metric(s));
  return out;
}

bool MetricKey::operator<(const MetricKey& o) const {
  return std::tie(metric, variant, sampler) < std::tie(o.metric, o.variant, o.sampler);
}

bool MetricKey::operator==(const MetricKey& o) const {
  return metric == o.metric && variant == o.variant && sampler == o.sampler;
}

bool RunStore::has_report_index() const {
  Statement s(*impl_, "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1");
  s.bind(1, std::string(kMetricsByKeyIndex));
  return s.step();
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

namespace {
// The rows of `sql`, whose ?1 is a JSON array of ids, read with `read`.
template <typename Record>
std::vector<Record> rows_for_ids(RunStore::Impl& impl, const char* sql, const std::vector<std::int64_t>& ids,
                                 Record (*read)(const Statement&)) {
  std::string text = "[";
  for (const auto id : ids) text += (text.size() > 1 ? "," : "") + std::to_string(id);
  Statement s(impl, sql);
  s.bind(1, text + "]");
  std::vector<Record> out;
  while (s.step()) out.push_back(read(s));
  return out;
}
}  // namespace

std::vector<CheckpointRecord> RunStore::checkpoints_with_ids(const std::vector<std::int64_t>& ids) const {
  return rows_for_ids(*impl_,
                      "SELECT id, run_id, epoch, step, file, wall_seconds, weights FROM checkpoints"
                      " WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY run_id, step",
                      ids, read_checkpoint);
}

std::vector<MetricRecord> RunStore::metrics_of_checkpoints(const std::vector<std::int64_t>& ids) const {
  return rows_for_ids(*impl_,
                      "SELECT checkpoint_id, sampler, sampler_params_json, metric, variant, value, better FROM metrics"
                      " WHERE checkpoint_id IN (SELECT value FROM json_each(?1)) ORDER BY id",
                      ids, read_metric);
}

std::string utc_now(const char* format) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[64];
  std::strftime(text, sizeof text, format, &tm);
  return text;
}

}  // namespace difflab
