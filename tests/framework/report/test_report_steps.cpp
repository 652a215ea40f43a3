// runner report --checkpoint step=N and epoch=N: each run's checkpoint at N or the last one
// before it, with and without the report index; the step, epoch and images columns.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "framework/report/html_page.hpp"
#include "framework/report/report_store.hpp"
#include "framework/report/text_lines.hpp"
#include "report/report.hpp"
#include "support.hpp"

using Catch::Matchers::Contains;
using difflab::CheckpointChoice;
using difflab::ReportFormat;
using difflab::ReportOptions;
using difflab::RunStore;
using difflab::test::add_checkpoint_at;
using difflab::test::add_done_run;
using difflab::test::input_error_of;
using difflab::test::lines_of;
using difflab::test::metric_value;
using difflab::test::render_store;
using difflab::test::words_of;
using Words = std::vector<std::string>;

namespace {

// Run 0 (seed 0): epochs 1, 2, 3 at steps 100, 200, 300, batches of 64 (6400 images a 100
// steps). Run 1 (seed 1): epoch 2 at step 250 and epoch 4 at step 500, images not recorded.
// test_loss at each checkpoint: its step / 1000.
std::string make_step_store(const std::string& name) {
  const auto path = (difflab::test::temp_dir(name) / "runs.db").string();
  RunStore store(path);
  const auto sweep = store.add_sweep("steps", "", "");
  const auto run0 = add_done_run(store, sweep, 0, R"({"seed":0})");
  for (int k = 1; k <= 3; ++k) {
    const auto c = add_checkpoint_at(store, run0, k, 100 * k, 6400 * k);
    store.add_metric(metric_value(c, "", "test_loss", 0.1 * k));
  }
  const auto run1 = add_done_run(store, sweep, 1, R"({"seed":1})");
  for (const auto& [epoch, step] : {std::pair{2, 250}, {4, 500}}) {
    const auto c = add_checkpoint_at(store, run1, epoch, step);
    store.add_metric(metric_value(c, "", "test_loss", step / 1000.0));
  }
  return path;
}

std::string report_at(const std::string& path, const std::string& choice,
                      ReportFormat format = ReportFormat::table) {
  const auto selection = difflab::parse_checkpoint_selection(choice);
  ReportOptions options;
  options.format = format;
  options.checkpoint = selection.choice;
  options.checkpoint_at = selection.at;
  return render_store(path, options);
}

}  // namespace

TEST_CASE("report --checkpoint step=N and epoch=N parse, and say what they expect", "[report][steps]") {
  const auto step = difflab::parse_checkpoint_selection("step=1000");
  CHECK(step.choice == CheckpointChoice::step);
  CHECK(step.at == 1000);
  const auto epoch = difflab::parse_checkpoint_selection("epoch=0");
  CHECK(epoch.choice == CheckpointChoice::epoch);
  CHECK(epoch.at == 0);
  CHECK(difflab::parse_checkpoint_selection("best").choice == CheckpointChoice::best);
  for (const auto* bad : {"step=", "step=-1", "step=1e3", "epoch=two", "step=10 "}) {
    INFO(bad);
    CHECK_THAT(input_error_of([&] { difflab::parse_checkpoint_selection(bad); }),
               Contains(std::string("--checkpoint ") + bad + ": expected a whole number >= 0"));
  }
  CHECK_THAT(input_error_of([] { difflab::parse_checkpoint_selection("stpe=10"); }),
             Contains("unknown checkpoint choice 'stpe=10'") && Contains("step=N or epoch=N"));
}

TEST_CASE("report --checkpoint step=N and epoch=N show each run's checkpoint at N or the last before",
          "[report][steps]") {
  const auto path = make_step_store("report-steps");
  SECTION("the table always shows step, epoch and images of the values shown") {
    const auto lines = lines_of(report_at(path, "final"));
    REQUIRE(lines.size() == 2 + 2);
    CHECK(words_of(lines[0]) ==
          Words{"run", "seed", "status", "step", "epoch", "images", "test_loss"});
    CHECK(words_of(lines[2]) == Words{"0", "0", "done", "300", "3", "19200", "0.3"});
    CHECK(words_of(lines[3]) == Words{"1", "1", "done", "500", "4", "-", "0.5"});
  }
  SECTION("step=250: run 0's step 200 (the last before), run 1's step 250 (at it)") {
    const auto lines = lines_of(report_at(path, "step=250"));
    CHECK(words_of(lines[2]) == Words{"0", "0", "done", "200", "2", "12800", "0.2"});
    CHECK(words_of(lines[3]) == Words{"1", "1", "done", "250", "2", "-", "0.25"});
  }
  SECTION("step=150: run 1 has none at or before it, and is shown without values") {
    const auto lines = lines_of(report_at(path, "step=150"));
    CHECK(words_of(lines[2]) == Words{"0", "0", "done", "100", "1", "6400", "0.1"});
    CHECK(words_of(lines[3]) == Words{"1", "1", "done", "-", "-", "-", "-"});
    const auto json = nlohmann::json::parse(report_at(path, "step=150", ReportFormat::json));
    CHECK(json[1]["status"] == "done");
    CHECK(json[1]["step"].is_null());
    CHECK(json[1]["test_loss"].is_null());
  }
  SECTION("epoch=3: run 0's epoch 3, run 1's epoch 2 (its last before 3)") {
    const auto json = nlohmann::json::parse(report_at(path, "epoch=3", ReportFormat::json));
    CHECK(json[0]["epoch"] == 3);
    CHECK(json[0]["step"] == 300);
    CHECK(json[0]["images"] == 19200);
    CHECK(json[0]["test_loss"].get<double>() == Approx(0.3));
    CHECK(json[1]["epoch"] == 2);
    CHECK(json[1]["step"] == 250);
    CHECK(json[1]["images"].is_null());
    CHECK(json[1]["test_loss"] == 0.25);
  }
  SECTION("beyond every checkpoint: the last; before every one: none") {
    CHECK(report_at(path, "step=100000") == report_at(path, "final"));
    const auto json = nlohmann::json::parse(report_at(path, "epoch=0", ReportFormat::json));
    CHECK(json[0]["step"].is_null());
    CHECK(json[1]["step"].is_null());
  }
  SECTION("--over reads the checkpoints it picks") {
    ReportOptions options;
    options.format = ReportFormat::json;
    options.checkpoint = CheckpointChoice::step;
    options.checkpoint_at = 250;
    options.over = "seed";
    const auto json = nlohmann::json::parse(render_store(path, options));
    CHECK(json["rows"][0]["test_loss"]["mean"].get<double>() == Approx(0.225));  // (0.2 + 0.25) / 2
  }
  SECTION("the html page too") {
    ReportOptions options;
    options.format = ReportFormat::html;
    options.checkpoint = CheckpointChoice::epoch;
    options.checkpoint_at = 1;
    const auto html = render_store(path, options);
    CHECK_THAT(html, Contains("checkpoint shown: epoch=1"));
    CHECK_THAT(html, Contains("<td class=\"num\" data-v=\"6400\">6400</td>"));
    CHECK(difflab::test::count(html, "<tr class=\"run ") == 2);
  }
}

TEST_CASE("report --checkpoint step=N reads the same with and without the report index",
          "[report][steps]") {
  const auto path = make_step_store("report-steps-index");
  std::vector<std::string> indexed;
  const std::vector<std::string> choices = {"step=50", "step=150", "step=250", "step=300",
                                            "epoch=1", "epoch=3",  "epoch=9"};
  for (const auto& choice : choices) indexed.push_back(report_at(path, choice, ReportFormat::csv));
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "DROP INDEX metrics_by_key", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  REQUIRE_FALSE(RunStore(path, RunStore::Access::read_only).has_report_index());
  for (std::size_t i = 0; i < choices.size(); ++i) {
    INFO(choices[i]);
    CHECK(report_at(path, choices[i], ReportFormat::csv) == indexed[i]);
  }
}
