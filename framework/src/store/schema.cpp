// The store's schema: the migrations that build it version by version, the checks that a file is
// a difflab store this build can read, and the index that quick reports use.
#include <array>
#include <string>

#include "difflab/errors.hpp"
#include "store/sqlite_statement.hpp"

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
    // 4: the number of model calls per sample (NFE) of the sampler a metric value was measured
    // with, so reports can set quality against cost; NULL for checkpoint-scope values and for
    // values recorded before this version.
    R"sql(
ALTER TABLE metrics ADD COLUMN nfe INTEGER CHECK (nfe IS NULL OR nfe > 0);
)sql",
    // 5: the factor a latent diffusion run scaled its autoencoder's latents by (unit variance,
    // Rombach et al. 2022), NULL for other runs; and the parts of a loss that has several (an
    // autoencoder's reconstruction and KL terms) as a JSON object, NULL for the others.
    R"sql(
ALTER TABLE runs ADD COLUMN latent_scale REAL;
ALTER TABLE losses ADD COLUMN terms_json TEXT;
)sql",
    // 6: the evaluation protocol of each metric value (samples, reference split and size,
    // feature extractor and its weights' hash, common noise, NFE) as a JSON object, '{}' for
    // values recorded before this version; and the training images a checkpoint has seen
    // (steps x batch), filled in for older checkpoints from their run's train.batch_size.
    R"sql(
ALTER TABLE metrics ADD COLUMN protocol_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE checkpoints ADD COLUMN images INTEGER;
UPDATE checkpoints SET images = step * (
  SELECT json_extract(r.config_json, '$.train.batch_size') FROM runs r WHERE r.id = checkpoints.run_id);
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

}  // namespace

void RunStore::Impl::migrate() {
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

void RunStore::Impl::open_schema(RunStore::Access access) {
  // Check what the file is before changing it (WAL rewrites the header).
  const auto version = pragma_int("user_version");
  const auto application = pragma_int("application_id");
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
      Statement count(*this, "SELECT COUNT(*) FROM sqlite_master");
      if (count.step()) tables = count.integer(0);
    }
    if (tables > 0) throw InputError(path + " is a SQLite database but not a difflab run store");
  }
  if (access == Access::read_only) {
    if (version < kSchemaVersion) {
      throw InputError(path + " has run-store schema version " + std::to_string(version) +
                       "; run a sweep into it with this runner to upgrade it before reading");
    }
    exec_setup("PRAGMA query_only = ON");
    return;  // a reader changes nothing: the writer set WAL mode when it created the file
  }

  exec_setup("PRAGMA journal_mode = WAL");
  exec_setup("PRAGMA foreign_keys = ON");
  exec_setup("PRAGMA synchronous = NORMAL");
  migrate();
  exec_setup(kCreateMetricsByKey);
}

int RunStore::schema_version() const { return static_cast<int>(impl_->pragma_int("user_version")); }

bool RunStore::has_report_index() const {
  Statement s(*impl_, "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1");
  s.bind(1, std::string(kMetricsByKeyIndex));
  return s.step();
}

}  // namespace difflab
