// render_report: columns, checkpoint choices (final, best, all) and the four formats.
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "difflab/errors.hpp"
#include "report/report.hpp"
#include "support.hpp"
#include "framework/report/text_lines.hpp"

using Catch::Matchers::Contains;
using difflab::CheckpointChoice;
using difflab::ReportFormat;
using difflab::ReportOptions;
using difflab::RunStore;

namespace {

const std::string kDdim = "ddim(eta=0,steps=50)";
const std::vector<std::string> kSamplers = {"ddpm", kDdim};
const std::string kReason =
    "loss became NaN at step 1234 (epoch 3): lower the learning rate or clip gradients";
// wasserstein[ddpm] per run and checkpoint: run 0 is best at epoch 20, run 1 at its final epoch 30.
const double kWasserstein[2][3] = {{0.5, 0.123456789, 0.3}, {0.4, 0.35, 0.2}};

double test_loss(int run, int k) { return 1.0 / (run + 2) + 0.01 * (2 - k) + 0.000123456789; }
double mmd(int run, int k, int sampler) {
  return 0.01 * (3 - k) + 0.001 * sampler + 0.0001 * run + 1e-9;
}
double wasserstein(int run, int k, int sampler) {
  return sampler == 0 ? kWasserstein[run][k] : 0.6 - 0.1 * k;
}

std::string g4(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

// Two finished runs (linear, cosine_beta), 3 evaluated checkpoints each, and a failed run.
std::string make_store(const std::string& name) {
  const auto path = (difflab::test::temp_dir(name) / "runs.db").string();
  RunStore store(path);
  const auto sweep_id = store.add_sweep("gmm", "experiments/gmm.yaml", "");
  const char* axes[3] = {R"({"schedule.plugin":"linear","lr":0.0001})",
                         R"({"schedule.plugin":"cosine_beta","lr":0.0001})",
                         R"({"schedule.plugin":"linear","lr":0.001})"};
  for (int run = 0; run < 3; ++run) {
    difflab::RunRecord record;
    record.sweep_id = sweep_id;
    record.grid_index = run;
    record.config_json = "{}";
    record.config_hash = "hash" + std::to_string(run);
    record.axes_json = axes[run];
    const auto run_id = store.add_run(record);
    if (run == 2) {
      store.mark_failed(run_id, kReason);
      continue;
    }
    for (int k = 0; k < 3; ++k) {
      const auto checkpoint =
          store.add_checkpoint({0, run_id, 10 * (k + 1), 1000 * (k + 1), "", 0});
      store.add_metric({checkpoint, "", "{}", "test_loss", "", test_loss(run, k)});
      for (int s = 0; s < 2; ++s) {
        store.add_metric({checkpoint, kSamplers[s], "{}", "mmd", "rbf(bandwidths=0.2,0.5,1,2,5)",
                          mmd(run, k, s)});
        store.add_metric(
            {checkpoint, kSamplers[s], "{}", "wasserstein", "exact", wasserstein(run, k, s)});
      }
    }
    store.mark_done(run_id, 1, 1);
  }
  return path;
}

std::string report(const std::string& path, ReportFormat format, CheckpointChoice choice,
                   const std::string& sweep = "") {
  RunStore store(path);
  ReportOptions options;
  options.sweep = sweep;
  options.format = format;
  options.checkpoint = choice;
  return difflab::render_report(store, options);
}

using difflab::test::lines_of;
using difflab::test::words_of;

// A strict RFC 4180 reader: quoted fields, doubled quotes, line breaks inside quotes.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> records(1);
  std::string field;
  bool quoted = false, was_quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      REQUIRE(field.empty());  // a quote may only open a field
      quoted = was_quoted = true;
    } else if (c == ',') {
      records.back().push_back(field);
      field.clear();
      was_quoted = false;
    } else if (c == '\n') {
      records.back().push_back(field);
      field.clear();
      was_quoted = false;
      records.emplace_back();
    } else {
      REQUIRE_FALSE(was_quoted);  // nothing may follow a closing quote but , or a line break
      field += c;
    }
  }
  REQUIRE_FALSE(quoted);
  REQUIRE(records.back().empty());  // the text ends with a line break
  records.pop_back();
  return records;
}

// clang-format off
const std::vector<std::string> kHeaders = {
    "run", "schedule.plugin", "lr", "status", "step", "epoch", "images", "test_loss", "mmd[ddpm]",
    "mmd[" + kDdim + "]", "wasserstein[ddpm]", "wasserstein[" + kDdim + "]", "reason"};
// clang-format on

}  // namespace

TEST_CASE("the table shows axes, status, step, epoch, images and a column per metric and sampler",
          "[report]") {
  const auto path = make_store("report-table");
  const auto text = report(path, ReportFormat::table, CheckpointChoice::final);
  INFO(text);
  const auto lines = lines_of(text);
  REQUIRE(lines.size() == 2 + 3);
  CHECK(words_of(lines[0]) == kHeaders);
  CHECK(lines[1].find_first_not_of("- ") == std::string::npos);
  CHECK(lines[1].size() >= lines[0].size());  // the rule spans every column's widest cell

  // Final: each run's last checkpoint (step 3000, epoch 30; the images it saw not recorded),
  // values to 4 significant digits.
  const auto run0 = words_of(lines[2]);
  REQUIRE(run0.size() == kHeaders.size());
  CHECK(run0[0] == "0");
  CHECK(run0[1] == "linear");
  CHECK(run0[2] == "0.0001");
  CHECK(run0[3] == "done");
  CHECK(run0[4] == "3000");
  CHECK(run0[5] == "30");
  CHECK(run0[6] == "-");
  CHECK(run0[7] == g4(test_loss(0, 2)));
  CHECK(run0[8] == g4(mmd(0, 2, 0)));
  CHECK(run0[9] == g4(mmd(0, 2, 1)));
  CHECK(run0[10] == g4(wasserstein(0, 2, 0)));
  CHECK(run0[11] == g4(wasserstein(0, 2, 1)));
  CHECK(run0[12] == "-");
  CHECK(words_of(lines[3])[1] == "cosine_beta");

  // The failed run: its reason cut to 60 characters, no step, epoch or values.
  CHECK_THAT(lines[4], Contains("failed") && Contains(kReason.substr(0, 40)) && Contains("..."));
  CHECK_THAT(lines[4], !Contains(kReason));
  const auto failed = words_of(lines[4]);
  CHECK(failed[2] == "0.001");
  CHECK(failed[4] == "-");                    // no step
  CHECK(failed[5] == "-");                    // nor epoch
  CHECK(failed[11] == "-");                   // nor values
  CHECK(lines[4].size() == lines[1].size());  // the cut reason fills its column exactly
}

TEST_CASE("best shows the checkpoint with the lowest wasserstein, all shows every checkpoint",
          "[report]") {
  const auto path = make_store("report-choice");

  SECTION("best") {
    const auto text = report(path, ReportFormat::table, CheckpointChoice::best);
    INFO(text);
    const auto lines = lines_of(text);
    REQUIRE(lines.size() == 2 + 3 + 2);  // rows, then a blank line and the rule it used
    CHECK(lines.back() == "best checkpoint per run: lowest wasserstein[ddpm]");
    const auto run0 = words_of(lines[2]);
    CHECK(run0[4] == "2000");
    CHECK(run0[5] == "20");
    CHECK(run0[7] == g4(test_loss(0, 1)));  // every value comes from that same checkpoint
    CHECK(run0[10] == g4(kWasserstein[0][1]));
    CHECK(words_of(lines[3])[5] == "30");
  }
  SECTION("all") {
    const auto text = report(path, ReportFormat::table, CheckpointChoice::all);
    INFO(text);
    const auto lines = lines_of(text);
    REQUIRE(lines.size() == 2 + 3 + 3 + 1);
    const std::vector<std::pair<std::string, std::string>> expected = {
        {"0", "10"}, {"0", "20"}, {"0", "30"}, {"1", "10"}, {"1", "20"}, {"1", "30"}};
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const auto words = words_of(lines[2 + i]);
      CHECK(words[0] == expected[i].first);
      CHECK(words[5] == expected[i].second);
    }
    CHECK(words_of(lines[3])[10] == g4(kWasserstein[0][1]));
  }
  SECTION("json carries the same choices") {
    const auto best =
        nlohmann::json::parse(report(path, ReportFormat::json, CheckpointChoice::best));
    REQUIRE(best.size() == 3);
    CHECK(best[0]["epoch"] == 20);
    CHECK(best[0]["wasserstein[ddpm]"].get<double>() == kWasserstein[0][1]);
    CHECK(best[1]["epoch"] == 30);
    const auto all = nlohmann::json::parse(report(path, ReportFormat::json, CheckpointChoice::all));
    CHECK(all.size() == 7);
  }
}

TEST_CASE("markdown is a GitHub pipe table", "[report]") {
  const auto path = make_store("report-markdown");
  const auto text = report(path, ReportFormat::markdown, CheckpointChoice::final);
  INFO(text);
  const auto lines = lines_of(text);
  REQUIRE(lines.size() == 2 + 3);
  CHECK(lines[0].rfind(
            "| run | schedule.plugin | lr | status | step | epoch | images | test_loss | mmd[ddpm] |",
            0) == 0);
  CHECK(lines[1] ==
        "| ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
  for (const auto& line : lines) {
    CHECK(line.front() == '|');
    CHECK(line.back() == '|');
  }
  CHECK_THAT(lines[4], Contains(kReason));  // not truncated outside the plain table
  CHECK_THAT(lines[2], Contains("| " + g4(test_loss(0, 2)) + " |"));
}

TEST_CASE("csv quotes per RFC 4180 and keeps full precision", "[report]") {
  const auto path = make_store("report-csv");
  const auto text = report(path, ReportFormat::csv, CheckpointChoice::final);
  INFO(text);
  CHECK_THAT(text, Contains("\"mmd[" + kDdim + "]\""));
  const auto records = parse_csv(text);
  REQUIRE(records.size() == 1 + 3);
  CHECK(records[0] == kHeaders);
  for (const auto& record : records) CHECK(record.size() == kHeaders.size());
  CHECK(records[1][2] == "0.0001");
  CHECK(records[1][4] == "3000");
  CHECK(records[1][5] == "30");
  CHECK(records[1][6].empty());  // images seen: not recorded
  CHECK(std::stod(records[1][7]) == test_loss(0, 2));
  CHECK(std::stod(records[1][9]) == mmd(0, 2, 1));
  CHECK(std::stod(records[2][10]) == wasserstein(1, 2, 0));
  CHECK(records[1][12].empty());
  CHECK(records[3][3] == "failed");
  CHECK(records[3][7].empty());
  CHECK(records[3][12] == kReason);
}

TEST_CASE("json is an array of objects with full-precision numbers and nulls", "[report]") {
  const auto path = make_store("report-json");
  const auto rows =
      nlohmann::json::parse(report(path, ReportFormat::json, CheckpointChoice::final));
  REQUIRE(rows.is_array());
  REQUIRE(rows.size() == 3);
  CHECK(rows[0]["run"] == 0);
  CHECK(rows[0]["schedule.plugin"] == "linear");
  CHECK(rows[0]["lr"].get<double>() == 0.0001);
  CHECK(rows[0]["status"] == "done");
  CHECK(rows[0]["reason"].is_null());
  CHECK(rows[0]["step"] == 3000);
  CHECK(rows[0]["epoch"] == 30);
  CHECK(rows[0]["images"].is_null());
  CHECK(rows[0]["test_loss"].get<double>() == test_loss(0, 2));
  CHECK(rows[0]["mmd[" + kDdim + "]"].get<double>() == mmd(0, 2, 1));
  CHECK(rows[1]["wasserstein[ddpm]"].get<double>() == wasserstein(1, 2, 0));
  CHECK(rows[2]["status"] == "failed");
  CHECK(rows[2]["reason"] == kReason);
  CHECK(rows[2]["epoch"].is_null());
  CHECK(rows[2]["mmd[ddpm]"].is_null());
  std::vector<std::string> keys;
  const auto ordered =
      nlohmann::ordered_json::parse(report(path, ReportFormat::json, CheckpointChoice::final));
  for (const auto& item : ordered[0].items()) keys.push_back(item.key());
  CHECK(keys == kHeaders);
}

TEST_CASE("a metric with several variants gets one column per variant", "[report]") {
  const auto path = (difflab::test::temp_dir("report-variants") / "runs.db").string();
  {
    RunStore store(path);
    difflab::RunRecord run;
    run.sweep_id = store.add_sweep("mnist", "", "");
    run.config_hash = "h";
    run.config_json = "{}";
    const auto run_id = store.add_run(run);
    const auto checkpoint = store.add_checkpoint({0, run_id, 1, 1, "", 0});
    store.add_metric({checkpoint, "ddpm", "{}", "fid", "inception", 12.5});
    store.add_metric({checkpoint, "ddpm", "{}", "fid", "trained", 3.25});
    store.add_metric({checkpoint, "ddpm", "{}", "mmd", "rbf", 0.5});
  }
  const auto text = report(path, ReportFormat::table, CheckpointChoice::best);
  INFO(text);
  const auto lines = lines_of(text);
  CHECK(words_of(lines[0]) == std::vector<std::string>{"run", "status", "step", "epoch", "images",
                                                       "fid{inception}[ddpm]", "fid{trained}[ddpm]",
                                                       "mmd[ddpm]"});
  CHECK(words_of(lines[2]) ==
        std::vector<std::string>{"0", "pending", "1", "1", "-", "12.5", "3.25", "0.5"});
  CHECK(lines.back() == "best checkpoint per run: lowest fid{inception}[ddpm]");
}

TEST_CASE("best follows the direction a metric declares, with and without the report index", "[report]") {
  const auto path = (difflab::test::temp_dir("report-direction") / "runs.db").string();
  {
    RunStore store(path);
    difflab::RunRecord run;
    run.sweep_id = store.add_sweep("d", "", "");
    run.config_hash = "h";
    run.config_json = "{}";
    const auto run_id = store.add_run(run);
    // "agreement" is no name difflab knows; it declares that higher is better, and peaks at epoch 2.
    const double values[] = {0.25, 0.75, 0.5};
    for (int k = 0; k < 3; ++k) {
      const auto checkpoint = store.add_checkpoint({0, run_id, k + 1, 10 * (k + 1), "", 0});
      difflab::MetricRecord m{checkpoint, "", "{}", "agreement", "", values[k]};
      m.better = "higher";
      store.add_metric(m);
    }
  }
  for (const bool indexed : {true, false}) {
    if (!indexed) {
      sqlite3* db = nullptr;
      REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
      REQUIRE(sqlite3_exec(db, "DROP INDEX metrics_by_key", nullptr, nullptr, nullptr) == SQLITE_OK);
      sqlite3_close(db);
    }
    RunStore store(path, RunStore::Access::read_only);
    ReportOptions options;
    options.checkpoint = CheckpointChoice::best;
    const auto text = difflab::render_report(store, options);
    INFO(text);
    const auto lines = lines_of(text);
    CHECK(words_of(lines[2]) == std::vector<std::string>{"0", "pending", "20", "2", "-", "0.75"});
    CHECK(lines.back() == "best checkpoint per run: highest agreement");
  }
}

TEST_CASE("several sweeps get a sweep column, and a mistyped sweep is an InputError", "[report]") {
  const auto path = make_store("report-sweeps");
  {
    RunStore store(path);
    difflab::RunRecord run;
    run.sweep_id = store.add_sweep("moons", "", "");
    run.config_hash = "h";
    run.config_json = "{}";
    run.axes_json = R"({"model.width":128})";
    store.add_run(run);
  }
  const auto all = lines_of(report(path, ReportFormat::table, CheckpointChoice::final));
  REQUIRE(all.size() == 2 + 4);
  CHECK(words_of(all[0])[0] == "sweep");
  CHECK(words_of(all[0])[4] == "model.width");  // axes: the union in first-seen order
  CHECK(words_of(all[2])[0] == "gmm");
  CHECK(words_of(all[5])[0] == "moons");
  CHECK(words_of(all[5])[4] == "128");

  const auto one = lines_of(report(path, ReportFormat::table, CheckpointChoice::final, "moons"));
  REQUIRE(one.size() == 2 + 1);
  CHECK(words_of(one[0]) ==
        std::vector<std::string>{"run", "model.width", "status", "step", "epoch", "images"});

  try {
    report(path, ReportFormat::table, CheckpointChoice::final, "gmn");
    FAIL("expected an InputError");
  } catch (const difflab::InputError& e) {
    CHECK(std::string(e.what()) == "no sweep named 'gmn' in " + path + " (did you mean 'gmm'?)");
  }
}

TEST_CASE("an empty store says so in one line", "[report]") {
  const auto path = (difflab::test::temp_dir("report-empty") / "runs.db").string();
  const auto text = report(path, ReportFormat::table, CheckpointChoice::final);
  CHECK_THAT(text, Contains("no runs recorded"));
  CHECK(lines_of(text).size() == 1);
  CHECK(nlohmann::json::parse(report(path, ReportFormat::json, CheckpointChoice::final)).empty());
  CHECK(lines_of(report(path, ReportFormat::table, CheckpointChoice::final, "anything")).size() ==
        1);
}

TEST_CASE("report options parse by name", "[report]") {
  CHECK(difflab::parse_report_format("table") == ReportFormat::table);
  CHECK(difflab::parse_report_format("markdown") == ReportFormat::markdown);
  CHECK(difflab::parse_report_format("csv") == ReportFormat::csv);
  CHECK(difflab::parse_report_format("json") == ReportFormat::json);
  CHECK(difflab::parse_checkpoint_choice("final") == CheckpointChoice::final);
  CHECK(difflab::parse_checkpoint_choice("best") == CheckpointChoice::best);
  CHECK(difflab::parse_checkpoint_choice("all") == CheckpointChoice::all);
  CHECK_THROWS_AS(difflab::parse_report_format("xml"), difflab::InputError);
  CHECK_THROWS_WITH(difflab::parse_checkpoint_choice("bets"), Contains("did you mean 'best'"));
}

TEST_CASE("a big store reports quickly", "[report]") {
  const auto path = (difflab::test::temp_dir("report-big") / "runs.db").string();
  const difflab::test::BigStore shape;
  const auto kRuns = std::size_t(shape.runs), kCheckpoints = std::size_t(shape.checkpoints);
  difflab::test::make_big_store(path, shape);
  const auto start = std::chrono::steady_clock::now();
  const auto text = report(path, ReportFormat::csv, CheckpointChoice::all);
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  CHECK(lines_of(text).size() == 1 + kRuns * kCheckpoints);
  CHECK(elapsed.count() < 10.0);  // a few queries: well under a second; one per checkpoint is not
  const auto best = nlohmann::json::parse(report(path, ReportFormat::json, CheckpointChoice::best));
  REQUIRE(best.size() == kRuns);
  CHECK(best[7]["epoch"] == 10);   // wasserstein ties at every checkpoint: the earliest
  CHECK(best[8]["epoch"] == 100);  // wasserstein falls with k: the last
}

TEST_CASE("a store without the report index reports the same, reading every value", "[report]") {
  const auto path = (difflab::test::temp_dir("report-no-index") / "runs.db").string();
  difflab::test::BigStore shape;
  shape.runs = 20;
  shape.checkpoints = 4;
  difflab::test::make_big_store(path, shape);
  {
    // Rows the per-run choice must get right: a run whose last checkpoint has no values yet (its
    // final is the one before), one whose key values are all NaN (best falls back to final), one
    // with no checkpoint at all, and a second sweep that --sweep leaves out.
    RunStore store(path);
    const auto sweep = store.add_sweep("big", "", "");
    const auto other = store.add_sweep("other", "", "");
    for (const auto& [sweep_id, index] : {std::pair{sweep, 20}, {sweep, 21}, {sweep, 22}, {other, 0}}) {
      difflab::RunRecord run;
      run.sweep_id = sweep_id;
      run.grid_index = index;
      run.config_json = "{}";
      run.config_hash = "extra" + std::to_string(sweep_id) + "-" + std::to_string(index);
      const auto run_id = store.add_run(run);
      if (index == 22) continue;
      const auto first = store.add_checkpoint({0, run_id, 1, 10, "", 0});
      store.add_checkpoint({0, run_id, 2, 20, "", 0});  // not evaluated yet
      const double value = index == 21 ? std::nan("") : 0.001;
      store.add_metric({first, "ddpm", "{}", "wasserstein", "exact", value});
      store.add_metric({first, "ddpm", "{}", "mmd", "rbf(bandwidths=0.1,0.2,0.5,1,2,5)", 0.5});
    }
  }
  const auto render = [&](CheckpointChoice choice, const std::string& sweep) {
    const RunStore store(path, RunStore::Access::read_only);
    ReportOptions options;
    options.sweep = sweep;
    options.format = ReportFormat::csv;
    options.checkpoint = choice;
    return difflab::render_report(store, options);
  };
  std::vector<std::string> quick;
  for (const auto* sweep : {"", "big", "other"}) {
    for (const auto choice : {CheckpointChoice::final, CheckpointChoice::best}) quick.push_back(render(choice, sweep));
  }
  // sweep, run, schedule.plugin, seed, status, step, epoch, ...
  const auto best = parse_csv(quick[1]);
  REQUIRE(best.size() == 1 + 23 + 1);
  CHECK(best[0][6] == "epoch");
  CHECK(best[1][6] == "10");    // run 0: wasserstein ties at every checkpoint, the earliest
  CHECK(best[2][6] == "40");    // run 1: wasserstein falls with k, the last
  CHECK(best[21][6] == "1");    // run 20: the lowest wasserstein of all, at its first checkpoint
  CHECK(best[22][6] == "1");    // run 21: NaN only, so its final: the last evaluated checkpoint
  CHECK(best[23][6].empty());   // run 22: no checkpoint
  CHECK(best[24][0] == "other");
  CHECK(parse_csv(quick[0])[21][6] == "1");  // final: the last checkpoint with values
  {
    RunStore store(path);
    CHECK(store.has_report_index());
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, "DROP INDEX metrics_by_key", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  CHECK_FALSE(RunStore(path, RunStore::Access::read_only).has_report_index());
  std::size_t i = 0;
  for (const auto* sweep : {"", "big", "other"}) {
    for (const auto choice : {CheckpointChoice::final, CheckpointChoice::best}) {
      INFO("sweep '" << sweep << "', choice " << int(choice));
      CHECK(render(choice, sweep) == quick[i++]);
    }
  }
  RunStore writer(path);  // a writer puts the index back
  CHECK(writer.has_report_index());
}

TEST_CASE("runner report starts without LibTorch, and every other command runs in runner-engine",
          "[report][cli]") {
  // Loading LibTorch takes half a second, longer than a final report of 10,000 runs.
  std::string output;
  REQUIRE(difflab::test::run_command("ldd " + difflab::test::runner_path(), &output) == 0);
  CHECK_THAT(output, Contains("libsqlite3"));
  CHECK_THAT(output, !Contains("libtorch"));
  CHECK(difflab::test::run_command(difflab::test::runner_path() + " --version", &output) == 0);
  CHECK_THAT(output, Contains("(torch "));
  CHECK(difflab::test::run_command(difflab::test::runner_path() + " report --db /no/such.db", &output) == 2);
  CHECK_THAT(output, Contains("runner report: error: /no/such.db: no such database"));
}
