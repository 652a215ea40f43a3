// RunStore: round trips through a reopened file, upserts, constraints, transactions, bad files.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <fstream>
#include <set>
#include <map>
#include <stdexcept>

#include "difflab/errors.hpp"
#include "store/run_store.hpp"
#include "store/store_merge.hpp"
#include "support.hpp"

using Catch::Matchers::Contains;
using difflab::ArtifactRecord;
using difflab::CheckpointRecord;
using difflab::LossRecord;
using difflab::MetricRecord;
using difflab::RunRecord;
using difflab::RunStatus;
using difflab::RunStore;

namespace {

std::string store_path(const std::string& name) {
  return (difflab::test::temp_dir(name) / "runs.db").string();
}

RunRecord make_run(std::int64_t sweep_id, std::int64_t grid_index, const std::string& hash,
                   const std::string& train_hash = "") {
  RunRecord run;
  run.sweep_id = sweep_id;
  run.grid_index = grid_index;
  run.config_json = R"({"schedule":{"plugin":"linear"},"seed":)" + std::to_string(grid_index) + "}";
  run.config_hash = hash;
  run.train_hash = train_hash.empty() ? "train-" + hash : train_hash;
  run.axes_json = R"({"schedule.plugin":"linear","seed":)" + std::to_string(grid_index) + "}";
  run.seed = grid_index;
  run.framework_version = "0.1.0";
  run.plugin_versions_json = R"({"schedule/linear":"1.0.0"})";
  return run;
}

// A second, raw connection: checks what the file holds, independent of RunStore.
std::string query_text(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
  std::string out;
  if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0)) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

void exec_raw(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) ==
          SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  INFO((error ? error : ""));
  sqlite3_free(error);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

// Takes a store back to version 4's tables: no latent_scale, no terms_json.
void drop_version_6_columns(const std::string& path) {
  query_text(path, "ALTER TABLE metrics DROP COLUMN protocol_json");
  query_text(path, "ALTER TABLE checkpoints DROP COLUMN images");
}

void drop_version_5_columns(const std::string& path) {
  drop_version_6_columns(path);
  query_text(path, "ALTER TABLE runs DROP COLUMN latent_scale");
  query_text(path, "ALTER TABLE losses DROP COLUMN terms_json");
}

// The message of the InputError that `fn` throws ("" and a failure if it throws none).
template <typename Fn>
std::string input_error(Fn&& fn) {
  try {
    fn();
  } catch (const difflab::InputError& e) {
    return e.what();
  }
  FAIL("expected an InputError");
  return "";
}

}  // namespace

TEST_CASE("run status names round-trip", "[store]") {
  for (auto status : {RunStatus::pending, RunStatus::running, RunStatus::done, RunStatus::failed}) {
    CHECK(difflab::parse_run_status(difflab::run_status_name(status)) == status);
  }
  CHECK_THROWS_AS(difflab::parse_run_status("finished"), difflab::InputError);
}

TEST_CASE("a new store is at schema version 6 in WAL mode", "[store]") {
  const auto path = store_path("store-schema");
  {
    RunStore store(path);
    CHECK(store.schema_version() == 6);
    CHECK(RunStore::kSchemaVersion == 6);
    CHECK(store.path() == path);
  }
  CHECK(query_text(path, "PRAGMA journal_mode") == "wal");
  CHECK(query_text(path, "PRAGMA user_version") == "6");
  // Reopening an up-to-date store migrates nothing and keeps it usable.
  RunStore again(path);
  CHECK(again.schema_version() == 6);
  CHECK(again.sweeps().empty());
}

TEST_CASE("a version 1 store is migrated on open and keeps its rows", "[store]") {
  const auto path = store_path("store-v1");
  std::int64_t checkpoint = 0;
  {
    RunStore store(path);
    const auto sweep = store.add_sweep("old", "old.yaml", "");
    const auto run = store.add_run(make_run(sweep, 0, "hash0"));
    checkpoint = store.add_checkpoint({0, run, 1, 10, "e1.pt", 1.0, "ema(0.9)"});
  }
  // Take it back to what difflab 0.1 wrote: no weights column (nor later ones), user_version 1.
  drop_version_5_columns(path);
  query_text(path, "ALTER TABLE metrics DROP COLUMN nfe");
  query_text(path, "ALTER TABLE checkpoints DROP COLUMN weights");
  query_text(path, "ALTER TABLE metrics DROP COLUMN better");
  query_text(path, "ALTER TABLE runs DROP COLUMN abar_T");
  query_text(path, "PRAGMA user_version = 1");
  CHECK_THROWS_WITH(RunStore(path, RunStore::Access::read_only),
                    Catch::Contains("schema version 1") && Catch::Contains("to upgrade it"));
  {
    RunStore writer(path);  // a writer migrates
    CHECK(writer.schema_version() == 6);
  }
  RunStore store(path, RunStore::Access::read_only);
  const auto runs = store.runs("old");
  REQUIRE(runs.size() == 1);
  const auto checkpoints = store.checkpoints(runs[0].id);
  REQUIRE(checkpoints.size() == 1);
  CHECK(checkpoints[0].id == checkpoint);
  CHECK(checkpoints[0].weights == "model");  // the default for checkpoints of version 1
}

TEST_CASE("a version 2 store learns which way its metrics improve, and runs their abar_T", "[store]") {
  const auto path = store_path("store-v2");
  {
    RunStore store(path);
    const auto sweep = store.add_sweep("old", "old.yaml", "");
    const auto run = store.add_run(make_run(sweep, 0, "hash0"));
    const auto checkpoint = store.add_checkpoint({0, run, 1, 10, "e1.pt", 1.0});
    for (const char* name : {"psnr", "inception_score", "fid", "mmd", "lpips"}) {
      store.add_metric({checkpoint, "", "{}", name, "", 1.0});
    }
    store.add_metric({checkpoint, "ddpm", "{}", "lpips", "diversity(pairs=256)", 1.0});
  }
  // What difflab wrote before plugins declared a direction: no better, no abar_T, version 2.
  drop_version_5_columns(path);
  query_text(path, "ALTER TABLE metrics DROP COLUMN nfe");
  query_text(path, "ALTER TABLE metrics DROP COLUMN better");
  query_text(path, "ALTER TABLE runs DROP COLUMN abar_T");
  query_text(path, "PRAGMA user_version = 2");
  { RunStore writer(path); }
  RunStore store(path, RunStore::Access::read_only);
  const auto run = store.runs("old").at(0);
  CHECK(std::isnan(run.abar_T));  // not recorded then
  std::map<std::string, std::string> better;
  for (const auto& m : store.metrics(store.checkpoints(run.id).at(0).id)) better[m.metric + "/" + m.sampler] = m.better;
  CHECK(better == std::map<std::string, std::string>{{"psnr/", "higher"},
                                                     {"inception_score/", "higher"},
                                                     {"fid/", "lower"},
                                                     {"mmd/", "lower"},
                                                     {"lpips/", "lower"},           // reconstruction distance
                                                     {"lpips/ddpm", "higher"}});  // diversity among samples
}

TEST_CASE("a version 3 store gains the nfe column on open, NULL in the rows it had", "[store]") {
  const auto path = store_path("store-v3");
  std::int64_t checkpoint = 0;
  {
    RunStore store(path);
    const auto run = store.add_run(make_run(store.add_sweep("old", "old.yaml", ""), 0, "hash0"));
    checkpoint = store.add_checkpoint({0, run, 1, 10, "e1.pt", 1.0});
    store.add_metric({checkpoint, "", "{}", "test_loss", "", 0.25});
    store.add_metric({checkpoint, "ddim(steps=10)", "{}", "mmd", "rbf", 0.125});
  }
  // What a version 3 runner wrote: no nfe column.
  drop_version_5_columns(path);
  query_text(path, "ALTER TABLE metrics DROP COLUMN nfe");
  query_text(path, "PRAGMA user_version = 3");
  CHECK_THROWS_WITH(RunStore(path, RunStore::Access::read_only),
                    Catch::Contains("schema version 3") && Catch::Contains("to upgrade it"));
  {
    RunStore writer(path);
    CHECK(writer.schema_version() == 6);
    // A value measured after the upgrade records its NFE beside the old ones.
    MetricRecord fresh{checkpoint, "ddim(steps=20)", "{}", "mmd", "rbf", 0.0625};
    fresh.nfe = 20;
    writer.add_metric(fresh);
  }
  RunStore store(path, RunStore::Access::read_only);
  const auto metrics = store.metrics(checkpoint);
  REQUIRE(metrics.size() == 3);
  CHECK(metrics[0].metric == "test_loss");
  CHECK(metrics[0].value == 0.25);
  CHECK(metrics[0].nfe == 0);
  CHECK(metrics[1].sampler == "ddim(steps=10)");
  CHECK(metrics[1].value == 0.125);
  CHECK(metrics[1].nfe == 0);  // recorded before version 4: not known
  CHECK(metrics[2].nfe == 20);
  CHECK(query_text(path, "SELECT COUNT(*) FROM metrics WHERE nfe IS NULL") == "2");
}

TEST_CASE("a version 4 store gains latent_scale and terms_json on open; both round-trip", "[store]") {
  const auto path = store_path("store-v4");
  std::int64_t run = 0;
  {
    RunStore store(path);
    run = store.add_run(make_run(store.add_sweep("old", "old.yaml", ""), 0, "hash0"));
    store.add_losses(run, {{10, 1, 0.5, ""}});
  }
  drop_version_5_columns(path);
  query_text(path, "PRAGMA user_version = 4");
  {
    RunStore writer(path);
    CHECK(writer.schema_version() == 6);
    CHECK(std::isnan(writer.run(run)->latent_scale));  // NULL in the rows it had
    CHECK(writer.losses(run).at(0).terms_json.empty());
    writer.set_latent_scale(run, 0.8125);
    writer.add_losses(run, {{20, 2, 0.25, R"({"kl":12.5,"reconstruction":0.125})"}});
  }
  RunStore store(path, RunStore::Access::read_only);
  CHECK(store.run(run)->latent_scale == 0.8125);
  const auto losses = store.losses(run);
  REQUIRE(losses.size() == 2);
  CHECK(losses[1].terms_json == R"({"kl":12.5,"reconstruction":0.125})");
  CHECK(store.sweep_losses("old").at(1).second.terms_json == losses[1].terms_json);
  CHECK(query_text(path, "SELECT COUNT(*) FROM losses WHERE terms_json IS NULL") == "1");
}

TEST_CASE("a version 5 store gains protocol_json and images on open; both round-trip through a merge", "[store]") {
  const auto dir = difflab::test::temp_dir("store-v5");
  const auto path = (dir / "runs.db").string();
  std::int64_t old_checkpoint = 0, no_batch = 0;
  {
    RunStore store(path);
    const auto sweep = store.add_sweep("old", "old.yaml", "");
    auto run = make_run(sweep, 0, "hash0");
    run.config_json = R"({"train":{"batch_size":128,"epochs":4},"seed":0})";
    old_checkpoint = store.add_checkpoint({0, store.add_run(run), 2, 8, "e2.pt", 1.0});
    store.add_metric({old_checkpoint, "ddpm", "{}", "mmd", "rbf", 0.5});
    no_batch = store.add_checkpoint({0, store.add_run(make_run(sweep, 1, "hash1")), 1, 10, "e1.pt", 1.0});
  }
  drop_version_6_columns(path);
  query_text(path, "PRAGMA user_version = 5");
  {
    RunStore writer(path);
    CHECK(writer.schema_version() == 6);
    const auto checkpoints = writer.sweep_checkpoints("old");
    REQUIRE(checkpoints.size() == 2);
    CHECK(checkpoints[0].images == 8 * 128);  // step x the run's train.batch_size
    CHECK(checkpoints[1].id == no_batch);
    CHECK(checkpoints[1].images == 0);  // no batch size in its config: not known
    CHECK(writer.metrics(old_checkpoint).at(0).protocol_json == "{}");
    MetricRecord fresh{old_checkpoint, "ddim(steps=10)", "{}", "mmd", "rbf", 0.25};
    fresh.protocol_json = R"({"nfe":10,"reference":"test","reference_size":256,"samples":64})";
    writer.add_metric(fresh);
    writer.add_checkpoint({0, checkpoints[0].run_id, 4, 16, "e4.pt", 2.0, "model", 16 * 128});
  }
  const auto merged_path = (dir / "merged.db").string();
  {
    const RunStore from(path, RunStore::Access::read_only);
    RunStore into(merged_path);
    difflab::merge_store(from, into);
  }
  for (const auto& p : {path, merged_path}) {
    INFO(p);
    RunStore store(p, RunStore::Access::read_only);
    const auto metrics = store.sweep_metrics("old");
    REQUIRE(metrics.size() == 2);
    CHECK(metrics[0].protocol_json == "{}");
    CHECK(metrics[1].protocol_json == R"({"nfe":10,"reference":"test","reference_size":256,"samples":64})");
    const auto checkpoints = store.sweep_checkpoints("old");
    REQUIRE(checkpoints.size() == 3);
    CHECK(checkpoints[1].images == 16 * 128);
  }
}

TEST_CASE("nfe round-trips, NULL for checkpoint-scope values, through every read and a merge",
          "[store]") {
  const auto dir = difflab::test::temp_dir("store-nfe");
  const auto path = (dir / "runs.db").string();
  std::int64_t checkpoint = 0;
  {
    RunStore store(path);
    const auto run = store.add_run(make_run(store.add_sweep("s", "s.yaml", ""), 0, "hash0"));
    checkpoint = store.add_checkpoint({0, run, 1, 10, "e1.pt", 1.0});
    store.add_metric({checkpoint, "", "{}", "test_loss", "", 0.5});  // checkpoint scope: nfe 0
    MetricRecord ddim{checkpoint, "ddim(steps=50)", "{}", "mmd", "rbf", 0.25};
    ddim.nfe = 50;
    store.add_metric(ddim);
    MetricRecord heun{checkpoint, "heun(S_churn=1,steps=10)", "{}", "mmd", "rbf", 0.125};
    heun.nfe = 19;  // 2 steps - 1 model calls
    store.add_metric(heun);
    heun.value = 0.0625;  // an upsert replaces the value and keeps the NFE it is given
    heun.nfe = 20;
    store.add_metric(heun);
  }
  CHECK(query_text(path, "SELECT quote(nfe) FROM metrics WHERE metric = 'test_loss'") == "NULL");
  CHECK(query_text(path, "SELECT nfe FROM metrics WHERE sampler = 'ddim(steps=50)'") == "50");
  CHECK(query_text(path, "SELECT nfe FROM metrics WHERE sampler LIKE 'heun%'") == "20");
  CHECK(query_text(path, "SELECT COUNT(*) FROM metrics WHERE nfe <= 0") == "0");  // 0 is NULL

  auto nfe_by_sampler = [](const std::vector<MetricRecord>& metrics) {
    std::map<std::string, std::int64_t> out;
    for (const auto& m : metrics) out[m.sampler] = m.nfe;
    return out;
  };
  const std::map<std::string, std::int64_t> expected = {
      {"", 0}, {"ddim(steps=50)", 50}, {"heun(S_churn=1,steps=10)", 20}};
  {
    RunStore store(path, RunStore::Access::read_only);
    CHECK(nfe_by_sampler(store.metrics(checkpoint)) == expected);
    CHECK(nfe_by_sampler(store.sweep_metrics("s")) == expected);
    CHECK(nfe_by_sampler(store.metrics_of_checkpoints({checkpoint})) == expected);
  }
  // runner merge carries it into another store.
  const auto merged_path = (dir / "merged.db").string();
  {
    const RunStore from(path, RunStore::Access::read_only);
    RunStore into(merged_path);
    difflab::merge_store(from, into);
  }
  RunStore merged(merged_path, RunStore::Access::read_only);
  CHECK(nfe_by_sampler(merged.sweep_metrics("s")) == expected);
  CHECK(query_text(merged_path, "SELECT COUNT(*) FROM metrics WHERE nfe IS NULL") == "1");
}

TEST_CASE("best checkpoints follow the direction each metric declares, not its name", "[store]") {
  const auto path = store_path("store-best");
  RunStore store(path);
  const auto sweep = store.add_sweep("s", "s.yaml", "");
  const auto run = store.add_run(make_run(sweep, 0, "hash0"));
  std::vector<std::int64_t> checkpoints;
  for (int k = 1; k <= 3; ++k) checkpoints.push_back(store.add_checkpoint({0, run, k, 10 * k, "e.pt", 1.0 * k}));
  // "agreement" rises 0.2, 0.9, 0.5 and declares higher is better; "gap" the same values, lower.
  const double values[] = {0.2, 0.9, 0.5};
  for (int k = 0; k < 3; ++k) {
    MetricRecord up{checkpoints[k], "", "{}", "agreement", "", values[k]};
    up.better = "higher";
    store.add_metric(up);
    store.add_metric({checkpoints[k], "", "{}", "gap", "", values[k]});
  }
  const auto keys = store.metric_keys("s");
  REQUIRE(keys.size() == 2);
  CHECK(keys[0].metric == "agreement");
  CHECK(keys[0].better == "higher");
  CHECK(keys[1].better == "lower");
  CHECK(store.best_checkpoints(keys[0]) == std::vector<std::pair<std::int64_t, std::int64_t>>{{run, checkpoints[1]}});
  CHECK(store.best_checkpoints(keys[1]) == std::vector<std::pair<std::int64_t, std::int64_t>>{{run, checkpoints[0]}});
  query_text(path, "UPDATE metrics SET better = 'sideways'");  // refused: only lower or higher
  CHECK(query_text(path, "SELECT COUNT(*) FROM metrics WHERE better = 'sideways'") == "0");
}

TEST_CASE("a claim takes a run for one process only, and waits for a live twin's training", "[store]") {
  const auto path = store_path("store-claim");
  RunStore store(path);
  const auto sweep = store.add_sweep("s", "s.yaml", "");
  const auto a = store.add_run(make_run(sweep, 0, "a", "shared"));
  const auto b = store.add_run(make_run(sweep, 1, "b", "shared"));
  const auto c = store.add_run(make_run(sweep, 2, "c"));
  std::set<std::int64_t> live = {100, 200};
  const auto alive = [&](std::int64_t pid) { return live.count(pid) > 0; };
  using difflab::Claim;
  CHECK(store.claim_run(a, "cpu", 100, false, alive).outcome == Claim::claimed);
  CHECK(store.run(a)->pid == 100);
  CHECK(store.run(a)->status == RunStatus::running);
  // Another process: a is its owner's; b trains the same model as a, so it waits.
  const auto other = store.claim_run(a, "cpu", 200, false, alive);
  CHECK(other.outcome == Claim::running_elsewhere);
  CHECK(other.other_pid == 100);
  const auto twin = store.claim_run(b, "cpu", 200, false, alive);
  CHECK(twin.outcome == Claim::training_elsewhere);
  CHECK(twin.other_run == a);
  CHECK(store.run(b)->status == RunStatus::pending);
  CHECK(store.claim_run(c, "cpu", 200, false, alive).outcome == Claim::claimed);
  // The owner may claim again (a resumed loop); once it dies, anyone takes its runs over.
  CHECK(store.claim_run(a, "cpu", 100, false, alive).outcome == Claim::claimed);
  live.erase(100);
  CHECK(store.claim_run(b, "cpu", 200, false, alive).outcome == Claim::claimed);
  CHECK(store.claim_run(a, "cpu", 200, false, alive).outcome == Claim::claimed);
  store.mark_done(a, 1.0, 2.0);
  store.mark_failed(b, "boom");
  CHECK(store.claim_run(a, "cpu", 200, false, alive).outcome == Claim::done);
  CHECK(store.claim_run(b, "cpu", 200, false, alive).outcome == Claim::failed_before);
  CHECK(store.claim_run(b, "cpu", 200, true, alive).outcome == Claim::claimed);
}

TEST_CASE("everything written reads back equal from a reopened file", "[store]") {
  const auto path = store_path("store-roundtrip");
  std::int64_t sweep_id = 0, run_id = 0, first_checkpoint = 0, second_checkpoint = 0;
  const std::string sweep_text = "name: gmm\naxes:\n  schedule.plugin: [linear, cosine_beta]\n";
  const std::vector<LossRecord> losses = {{1, 0, 0.9}, {2, 0, 0.5}, {3, 1, 0.25}};
  {
    RunStore store(path);
    sweep_id = store.add_sweep("gmm", "experiments/gmm.yaml", sweep_text);
    run_id = store.add_run(make_run(sweep_id, 0, "hash0"));
    store.mark_running(run_id, "cuda:0", 4242);
    first_checkpoint = store.add_checkpoint({0, run_id, 5, 500, "ckpt/e5.pt", 12.5});
    second_checkpoint = store.add_checkpoint({0, run_id, 10, 1000, "ckpt/e10.pt", 25.25});
    store.add_losses(run_id, losses);
    store.add_metric({first_checkpoint, "", "{}", "test_loss", "", 0.125});
    store.add_metric({second_checkpoint, "ddim(eta=0,steps=50)",
                      R"({"plugin":"ddim","steps":50,"eta":0.0})", "mmd",
                      "rbf(bandwidths=0.2,0.5,1,2,5)", 0.0123456789012345});
    store.add_artifact(
        {second_checkpoint, "ddim(eta=0,steps=50)", "samples_npy", "samples/e10.npy"});
    store.mark_done(run_id, 30.5, 4.25);
  }

  RunStore store(path);
  const auto sweep = store.find_sweep("gmm");
  REQUIRE(sweep);
  CHECK(sweep->id == sweep_id);
  CHECK(sweep->file == "experiments/gmm.yaml");
  CHECK(sweep->file_text == sweep_text);
  CHECK(sweep->created_at.size() == 20);  // 2024-01-02T03:04:05Z
  CHECK(sweep->created_at.back() == 'Z');
  CHECK_FALSE(store.find_sweep("gmn"));
  REQUIRE(store.sweeps().size() == 1);

  const auto run = store.run(run_id);
  REQUIRE(run);
  const auto expected = make_run(sweep_id, 0, "hash0");
  CHECK(run->sweep_id == sweep_id);
  CHECK(run->grid_index == 0);
  CHECK(run->config_json == expected.config_json);
  CHECK(run->config_hash == "hash0");
  CHECK(run->train_hash == "train-hash0");
  CHECK(run->axes_json == expected.axes_json);
  CHECK(run->device == "cuda:0");
  CHECK(run->status == RunStatus::done);
  CHECK(run->reason.empty());
  CHECK(run->started_at.size() == 20);
  CHECK(run->finished_at.size() == 20);
  CHECK(run->started_at <= run->finished_at);
  CHECK(run->train_seconds == 30.5);
  CHECK(run->eval_seconds == 4.25);
  CHECK(run->framework_version == "0.1.0");
  CHECK(run->plugin_versions_json == expected.plugin_versions_json);
  CHECK(run->pid == 0);
  REQUIRE(store.find_run(sweep_id, "hash0"));
  CHECK(store.find_run(sweep_id, "hash0")->id == run_id);
  CHECK_FALSE(store.find_run(sweep_id, "nope"));
  CHECK(store.runs("gmm").size() == 1);
  CHECK(store.runs().size() == 1);
  CHECK(store.runs("other").empty());

  const auto checkpoints = store.checkpoints(run_id);
  REQUIRE(checkpoints.size() == 2);
  CHECK(checkpoints[0].id == first_checkpoint);
  CHECK(checkpoints[0].epoch == 5);
  CHECK(checkpoints[0].step == 500);
  CHECK(checkpoints[0].file == "ckpt/e5.pt");
  CHECK(checkpoints[0].wall_seconds == 12.5);
  CHECK(checkpoints[1].id == second_checkpoint);
  CHECK(checkpoints[1].wall_seconds == 25.25);

  const auto read_losses = store.losses(run_id);
  REQUIRE(read_losses.size() == losses.size());
  for (std::size_t i = 0; i < losses.size(); ++i) {
    CHECK(read_losses[i].step == losses[i].step);
    CHECK(read_losses[i].epoch == losses[i].epoch);
    CHECK(read_losses[i].loss == losses[i].loss);
  }

  const auto metrics = store.metrics(second_checkpoint);
  REQUIRE(metrics.size() == 1);
  CHECK(metrics[0].checkpoint_id == second_checkpoint);
  CHECK(metrics[0].sampler == "ddim(eta=0,steps=50)");
  CHECK(metrics[0].sampler_params_json == R"({"plugin":"ddim","steps":50,"eta":0.0})");
  CHECK(metrics[0].metric == "mmd");
  CHECK(metrics[0].variant == "rbf(bandwidths=0.2,0.5,1,2,5)");
  CHECK(metrics[0].value == 0.0123456789012345);
  CHECK(store.metric_count(first_checkpoint) == 1);
  CHECK(store.metric_count(second_checkpoint) == 1);
  CHECK(store.metrics(first_checkpoint)[0].sampler_params_json == "{}");

  const auto artifacts = store.artifacts(second_checkpoint);
  REQUIRE(artifacts.size() == 1);
  CHECK(artifacts[0].sampler == "ddim(eta=0,steps=50)");
  CHECK(artifacts[0].kind == "samples_npy");
  CHECK(artifacts[0].path == "samples/e10.npy");
  CHECK(store.artifacts(first_checkpoint).empty());

  CHECK(store.sweep_checkpoints("gmm").size() == 2);
  CHECK(store.sweep_metrics().size() == 2);
  CHECK(store.sweep_metrics("other").empty());
}

TEST_CASE("status transitions record device, pid, times and reason", "[store]") {
  RunStore store(store_path("store-status"));
  const auto sweep_id = store.add_sweep("s", "s.yaml", "");
  const auto run_id = store.add_run(make_run(sweep_id, 0, "h"));
  CHECK(store.run(run_id)->status == RunStatus::pending);
  CHECK(store.run(run_id)->started_at.empty());

  store.mark_running(run_id, "cpu", 77);
  auto run = store.run(run_id);
  CHECK(run->status == RunStatus::running);
  CHECK(run->device == "cpu");
  CHECK(run->pid == 77);
  CHECK_FALSE(run->started_at.empty());

  store.mark_failed(run_id, "loss became NaN at step 12");
  run = store.run(run_id);
  CHECK(run->status == RunStatus::failed);
  CHECK(run->reason == "loss became NaN at step 12");
  CHECK_FALSE(run->finished_at.empty());

  store.mark_running(run_id, "cuda:1", 78);  // a retry clears the old failure
  run = store.run(run_id);
  CHECK(run->status == RunStatus::running);
  CHECK(run->reason.empty());
  CHECK(run->finished_at.empty());
  CHECK(run->device == "cuda:1");

  CHECK_THROWS_AS(store.mark_done(999, 1, 1), difflab::RunError);
}

TEST_CASE("upserting a checkpoint keeps its id and its metrics", "[store]") {
  RunStore store(store_path("store-upsert"));
  const auto sweep_id = store.add_sweep("s", "s.yaml", "");
  const auto run_id = store.add_run(make_run(sweep_id, 0, "h"));
  const auto id = store.add_checkpoint({0, run_id, 1, 100, "old.pt", 1.0});
  store.add_metric({id, "ddpm", "{}", "mmd", "", 0.5});
  store.add_artifact({id, "ddpm", "samples_npy", "old.npy"});

  const auto again = store.add_checkpoint({0, run_id, 2, 100, "new.pt", 2.0});
  CHECK(again == id);
  const auto checkpoints = store.checkpoints(run_id);
  REQUIRE(checkpoints.size() == 1);
  CHECK(checkpoints[0].file == "new.pt");
  CHECK(checkpoints[0].epoch == 2);
  CHECK(checkpoints[0].wall_seconds == 2.0);
  REQUIRE(store.metric_count(id) == 1);
  CHECK(store.metrics(id)[0].value == 0.5);

  // Metrics, artifacts and losses upsert by their keys too.
  store.add_metric({id, "ddpm", R"({"steps":10})", "mmd", "", 0.25});
  store.add_metric({id, "ddpm", "{}", "mmd", "other-variant", 0.75});
  REQUIRE(store.metric_count(id) == 2);
  CHECK(store.metrics(id)[0].value == 0.25);
  CHECK(store.metrics(id)[0].sampler_params_json == R"({"steps":10})");
  store.add_artifact({id, "ddpm", "samples_npy", "new.npy"});
  REQUIRE(store.artifacts(id).size() == 1);
  CHECK(store.artifacts(id)[0].path == "new.npy");
  store.add_losses(run_id, {{1, 0, 1.0}, {2, 0, 0.5}});
  store.add_losses(run_id, {{2, 1, 0.4}, {3, 1, 0.3}});
  const auto losses = store.losses(run_id);
  REQUIRE(losses.size() == 3);
  CHECK(losses[1].loss == 0.4);
  CHECK(losses[1].epoch == 1);
}

TEST_CASE("NaN losses and metric values round-trip", "[store]") {
  RunStore store(store_path("store-nan"));
  const auto run_id = store.add_run(make_run(store.add_sweep("s", "", ""), 0, "h"));
  store.add_losses(run_id, {{1, 0, std::nan("")}});
  const auto id = store.add_checkpoint({0, run_id, 1, 1, "", 0});
  store.add_metric({id, "", "{}", "test_loss", "", std::nan("")});
  CHECK(std::isnan(store.losses(run_id).at(0).loss));
  CHECK(std::isnan(store.metrics(id).at(0).value));
}

TEST_CASE("unique keys return existing rows and foreign keys cascade", "[store]") {
  const auto path = store_path("store-keys");
  RunStore store(path);
  const auto sweep_id = store.add_sweep("s", "s.yaml", "a");
  CHECK(store.add_sweep("s", "t.yaml", "b") == sweep_id);
  CHECK(store.find_sweep("s")->file == "s.yaml");  // add_sweep never overwrites
  store.update_sweep_file(sweep_id, "t.yaml", "b");
  CHECK(store.find_sweep("s")->file_text == "b");

  const auto run_id = store.add_run(make_run(sweep_id, 0, "h"));
  CHECK(store.add_run(make_run(sweep_id, 0, "h")) == run_id);
  CHECK(store.add_run(make_run(sweep_id, 1, "h2")) != run_id);
  CHECK(store.runs("s").size() == 2);

  // The same config in another sweep is another run.
  const auto other = store.add_sweep("t", "t.yaml", "");
  CHECK(store.add_run(make_run(other, 0, "h")) != run_id);

  CHECK_THROWS_AS(store.add_checkpoint({0, 9999, 1, 1, "", 0}), difflab::RunError);
  CHECK_THROWS_AS(store.add_metric({9999, "", "{}", "mmd", "", 1}), difflab::RunError);
  CHECK_THROWS_AS(store.add_losses(9999, {{1, 0, 1}}), difflab::RunError);

  const auto checkpoint = store.add_checkpoint({0, run_id, 1, 1, "", 0});
  store.add_metric({checkpoint, "", "{}", "test_loss", "", 1});
  store.add_losses(run_id, {{1, 0, 1}});
  exec_raw(path, "PRAGMA foreign_keys = ON; DELETE FROM sweeps WHERE name = 's'");
  CHECK(store.runs("s").empty());
  CHECK(store.checkpoints(run_id).empty());
  CHECK(store.metric_count(checkpoint) == 0);
  CHECK(store.losses(run_id).empty());
  CHECK(store.runs("t").size() == 1);
}

TEST_CASE("find_trained returns the lowest done run with that train hash", "[store]") {
  RunStore store(store_path("store-trained"));
  const auto sweep_id = store.add_sweep("s", "", "");
  const auto a = store.add_run(make_run(sweep_id, 0, "a", "shared"));
  const auto b = store.add_run(make_run(sweep_id, 1, "b", "shared"));
  const auto c = store.add_run(make_run(sweep_id, 2, "c", "shared"));
  CHECK_FALSE(store.find_trained("shared"));
  store.mark_done(c, 1, 1);
  store.mark_done(b, 1, 1);
  store.mark_failed(a, "oom");
  REQUIRE(store.find_trained("shared"));
  CHECK(store.find_trained("shared")->id == b);
  CHECK_FALSE(store.find_trained("other"));
  CHECK_FALSE(store.find_trained(""));
}

TEST_CASE("a transaction that throws leaves nothing behind", "[store]") {
  const auto path = store_path("store-rollback");
  {
    RunStore store(path);
    CHECK_THROWS_WITH(store.transaction([&] {
      const auto sweep_id = store.add_sweep("s", "", "");
      store.transaction([&] {  // nested: joins the outer transaction
        const auto run_id = store.add_run(make_run(sweep_id, 0, "h"));
        store.add_checkpoint({0, run_id, 1, 1, "", 0});
      });
      throw std::runtime_error("boom");
    }),
                      "boom");
    CHECK(store.sweeps().empty());
    CHECK(store.runs().empty());

    // Usable afterwards, and a transaction that succeeds commits.
    store.transaction([&] { store.add_sweep("kept", "", ""); });
  }
  RunStore store(path);
  CHECK(store.sweeps().size() == 1);
  CHECK(store.runs().empty());
}

TEST_CASE("many losses are written quickly", "[store]") {
  RunStore store(store_path("store-losses"));
  const auto run_id = store.add_run(make_run(store.add_sweep("s", "", ""), 0, "h"));
  std::vector<LossRecord> losses;
  for (std::int64_t step = 0; step < 100000; ++step)
    losses.push_back({step, step / 1000, 1.0 / (1 + step), ""});
  const auto start = std::chrono::steady_clock::now();
  store.add_losses(run_id, losses);
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed.count() < 10.0);  // one transaction: ~0.2 s; a commit per row would take minutes
  const auto read = store.losses(run_id);
  REQUIRE(read.size() == losses.size());
  CHECK(read.back().loss == losses.back().loss);
}

TEST_CASE("a file that is not a run store is an InputError naming it", "[store]") {
  const auto dir = difflab::test::temp_dir("store-bad");
  SECTION("not SQLite") {
    const auto path = (dir / "notes.db").string();
    std::ofstream(path) << std::string(2048, 'x') << "\nthis is not a database\n";
    CHECK_THAT(input_error([&] { RunStore store(path); }), Contains(path));
  }
  SECTION("a newer schema") {
    const auto path = (dir / "future.db").string();
    exec_raw(path, "PRAGMA user_version = 99");
    CHECK_THAT(input_error([&] { RunStore store(path); }), Contains(path) && Contains("99"));
  }
  SECTION("another application's SQLite database") {
    const auto path = (dir / "other.db").string();
    exec_raw(path, "CREATE TABLE runs (x TEXT)");
    CHECK_THAT(input_error([&] { RunStore store(path); }),
               Contains(path) && Contains("not a difflab"));
  }
  SECTION("a folder that does not exist") {
    const auto path = (dir / "missing" / "runs.db").string();
    CHECK_THAT(input_error([&] { RunStore store(path); }), Contains(path));
  }
}
