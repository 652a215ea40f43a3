// RunStore: opening a store, transactions, claims and every write (sweeps, runs and their
// states, checkpoints, losses, metric values, artifacts). Schema: schema.cpp; reads: store_reads.cpp.
#include "store/run_store.hpp"

#include <ctime>
#include <filesystem>

#include "difflab/errors.hpp"
#include "store/sqlite_statement.hpp"

namespace difflab {

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

RunStore::Impl::~Impl() {
  for (auto& [sql, stmt] : statements) sqlite3_finalize(stmt);
  if (db) sqlite3_close_v2(db);
}

void RunStore::Impl::fail(int rc, const std::string& what) const {
  const char* message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  throw RunError("SQLite error in " + path + " while " + what + ": " + message);
}

void RunStore::Impl::exec_setup(const std::string& sql) {
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

void RunStore::Impl::exec(const char* sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return;
  const std::string message = error ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  throw RunError("SQLite error in " + path + " while running '" + sql + "': " + message);
}

std::int64_t RunStore::Impl::pragma_int(const char* name) {
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

sqlite3_stmt* RunStore::Impl::prepare(const char* sql) {
  auto it = statements.find(sql);
  if (it != statements.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) fail(rc, std::string("preparing '") + sql + "'");
  statements.emplace(sql, stmt);
  return stmt;
}

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
  impl_->open_schema(access);
}

RunStore::~RunStore() = default;

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

void RunStore::set_latent_scale(std::int64_t run_id, double scale) {
  Statement s(*impl_, "UPDATE runs SET latent_scale = ?2 WHERE id = ?1");
  if (s.bind(1, run_id).bind(2, scale).run() != 1) {
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

void RunStore::continue_run(std::int64_t run_id, const RunRecord& longer) {
  Statement s(*impl_,
              "UPDATE runs SET grid_index = ?2, config_json = ?3, config_hash = ?4, train_hash = ?5, axes_json = ?6,"
              " status = CASE status WHEN 'done' THEN 'pending' ELSE status END,"
              " finished_at = CASE status WHEN 'done' THEN NULL ELSE finished_at END WHERE id = ?1");
  s.bind(1, run_id)
      .bind(2, longer.grid_index)
      .bind(3, longer.config_json)
      .bind(4, longer.config_hash)
      .bind(5, longer.train_hash)
      .bind(6, longer.axes_json);
  if (s.run() != 1) {
    throw RunError("no run with id " + std::to_string(run_id) + " in " + path_);
  }
}

void RunStore::set_run_state(std::int64_t run_id, const RunRecord& state) {
  Statement s(*impl_,
              "UPDATE runs SET status = ?2, reason = ?3, device = ?4, started_at = ?5,"
              " finished_at = ?6, train_seconds = ?7, eval_seconds = ?8, framework_version = ?9,"
              " plugin_versions_json = ?10, latent_scale = ?11, pid = 0 WHERE id = ?1");
  s.bind(1, run_id)
      .bind(2, std::string(run_status_name(state.status)))
      .bind(3, state.reason)
      .bind(4, state.device)
      .bind_or_null(5, state.started_at)
      .bind_or_null(6, state.finished_at)
      .bind(7, state.train_seconds)
      .bind(8, state.eval_seconds)
      .bind(9, state.framework_version)
      .bind(10, state.plugin_versions_json.empty() ? std::string("{}") : state.plugin_versions_json)
      .bind(11, state.latent_scale);
  if (s.run() != 1) throw RunError("no run with id " + std::to_string(run_id) + " in " + path_);
}

std::int64_t RunStore::add_checkpoint(const CheckpointRecord& checkpoint) {
  std::int64_t id = 0;
  transaction([&] {
    // DO UPDATE (not INSERT OR REPLACE) keeps the row id, so its metrics stay attached.
    Statement upsert(*impl_,
                     "INSERT INTO checkpoints (run_id, epoch, step, file, wall_seconds, created_at,"
                     " weights, images) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                     " ON CONFLICT (run_id, step) DO UPDATE SET epoch = excluded.epoch,"
                     " file = excluded.file, wall_seconds = excluded.wall_seconds,"
                     " created_at = excluded.created_at, weights = excluded.weights,"
                     " images = excluded.images");
    upsert.bind(1, checkpoint.run_id)
        .bind(2, checkpoint.epoch)
        .bind(3, checkpoint.step)
        .bind(4, checkpoint.file)
        .bind(5, checkpoint.wall_seconds)
        .bind(6, utc_now())
        .bind(7, checkpoint.weights)
        .bind_or_null(8, checkpoint.images)
        .run();
    Statement select(*impl_, "SELECT id FROM checkpoints WHERE run_id = ?1 AND step = ?2");
    select.bind(1, checkpoint.run_id).bind(2, checkpoint.step);
    if (!select.step()) throw RunError("checkpoint vanished from " + path_ + " while adding it");
    id = select.integer(0);
  });
  return id;
}

void RunStore::add_losses(std::int64_t run_id, const std::vector<LossRecord>& losses) {
  if (losses.empty()) return;
  transaction([&] {
    Statement upsert(*impl_,
                     "INSERT INTO losses (run_id, step, epoch, loss, terms_json) VALUES (?1, ?2, ?3, ?4, ?5)"
                     " ON CONFLICT (run_id, step) DO UPDATE SET epoch = excluded.epoch,"
                     " loss = excluded.loss, terms_json = excluded.terms_json");
    for (const auto& loss : losses) {
      upsert.bind(1, run_id).bind(2, loss.step).bind(3, loss.epoch).bind(4, loss.loss);
      upsert.bind_or_null(5, loss.terms_json).run();
      upsert.reset();
    }
  });
}

void RunStore::add_metric(const MetricRecord& metric) {
  Statement s(
      *impl_,
      "INSERT INTO metrics (checkpoint_id, sampler, sampler_params_json, metric, variant, value, better, nfe,"
      " protocol_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
      " ON CONFLICT (checkpoint_id, sampler, metric, variant) DO UPDATE SET"
      " sampler_params_json = excluded.sampler_params_json, value = excluded.value, better = excluded.better,"
      " nfe = excluded.nfe, protocol_json = excluded.protocol_json");
  s.bind(1, metric.checkpoint_id)
      .bind(2, metric.sampler)
      .bind(3, metric.sampler_params_json.empty() ? std::string("{}") : metric.sampler_params_json)
      .bind(4, metric.metric)
      .bind(5, metric.variant)
      .bind(6, metric.value)
      .bind(7, metric.better)
      .bind_or_null(8, metric.nfe)
      .bind(9, metric.protocol_json.empty() ? std::string("{}") : metric.protocol_json)
      .run();
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

std::string utc_now(const char* format) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[64];
  std::strftime(text, sizeof text, format, &tm);
  return text;
}

}  // namespace difflab
