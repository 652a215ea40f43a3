// runner report --by-nfe: sampler families, the pivot of one metric by family and NFE in every
// format, the checkpoint it reads, its refusals; the HTML page's charts against NFE.
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "difflab/errors.hpp"
#include "report/report.hpp"
#include "support.hpp"
#include "framework/report/html_page.hpp"
#include "framework/report/text_lines.hpp"

using Catch::Matchers::Contains;
using difflab::CheckpointChoice;
using difflab::MetricRecord;
using difflab::ReportFormat;
using difflab::ReportOptions;
using difflab::RunStore;
using difflab::sampler_family;
using difflab::test::page_data;

namespace {

MetricRecord value_at(std::int64_t checkpoint, const std::string& sampler,
                      const std::string& metric, const std::string& variant, double value,
                      std::int64_t nfe) {
  MetricRecord m{checkpoint, sampler, "{}", metric, variant, value};
  m.nfe = nfe;
  return m;
}

// Dyadic values, so CSV's 17 digits print them exactly.
// Run 0 (linear), epochs 1 and 2; mmd at its final checkpoint (epoch 2):
//   ddim(eta=0,steps=N), NFE N:       10 -> 0.5,   20 -> 0.25,   50 -> 0.125
//   heun(S_churn=1,steps=M), NFE 2M:  10 -> 0.375, 20 -> 0.1875, 50 -> 0.0625
// and 1 more at epoch 1, where wasserstein is lower (so --checkpoint best shows epoch 1).
// Run 1 (cosine_beta), epoch 2 only: ddim NFE 10 -> 0.75, heun NFE 50 -> 0.3125.
// Every checkpoint also has test_loss (no sampler) and wasserstein[ddpm] at NFE 100 only.
std::string make_nfe_store(const std::string& name) {
  const auto path = (difflab::test::temp_dir(name) / "runs.db").string();
  RunStore store(path);
  const auto sweep = store.add_sweep("nfe", "nfe.yaml", "");
  for (int run = 0; run < 2; ++run) {
    difflab::RunRecord record;
    record.sweep_id = sweep;
    record.grid_index = run;
    record.config_json = "{}";
    record.config_hash = "hash" + std::to_string(run);
    record.axes_json =
        run == 0 ? R"({"schedule.plugin":"linear"})" : R"({"schedule.plugin":"cosine_beta"})";
    const auto run_id = store.add_run(record);
    for (int epoch = run == 0 ? 1 : 2; epoch <= 2; ++epoch) {
      const auto c = store.add_checkpoint({0, run_id, epoch, 100 * epoch, "", 0});
      const double later = epoch == 1 ? 1.0 : 0.0;
      store.add_metric({c, "", "{}", "test_loss", "", 0.5});
      store.add_metric(value_at(c, "ddpm", "wasserstein", "exact", epoch == 1 ? 0.25 : 0.5, 100));
      if (run == 0) {
        // Recorded out of NFE order: the columns are sorted, not in recording order.
        for (const auto& [steps, value] : {std::pair{50, 0.125}, {10, 0.5}, {20, 0.25}}) {
          store.add_metric(value_at(c, "ddim(eta=0,steps=" + std::to_string(steps) + ")", "mmd",
                                    "rbf", value + later, steps));
        }
        for (const auto& [steps, value] : {std::pair{25, 0.0625}, {5, 0.375}, {10, 0.1875}}) {
          store.add_metric(value_at(c, "heun(S_churn=1,steps=" + std::to_string(steps) + ")", "mmd",
                                    "rbf", value + later, 2 * steps));
        }
      } else {
        store.add_metric(value_at(c, "ddim(eta=0,steps=10)", "mmd", "rbf", 0.75, 10));
        store.add_metric(value_at(c, "heun(S_churn=1,steps=25)", "mmd", "rbf", 0.3125, 50));
      }
    }
    store.mark_done(run_id, 1, 1);
  }
  return path;
}

std::string by_nfe(const std::string& path, const std::string& metric, ReportFormat format,
                   CheckpointChoice choice = CheckpointChoice::final) {
  const RunStore store(path, RunStore::Access::read_only);
  ReportOptions options;
  options.format = format;
  options.checkpoint = choice;
  options.by_nfe = metric;
  return difflab::render_report(store, options);
}

using difflab::test::lines_of;
using difflab::test::words_of;

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

TEST_CASE("a sampler's family is its label without steps=N", "[report][nfe]") {
  CHECK(sampler_family("ddim(steps=10)") == "ddim");
  CHECK(sampler_family("heun(S_churn=1,steps=3)") == "heun(S_churn=1)");
  CHECK(sampler_family("ddpm") == "ddpm");
  CHECK(sampler_family("ddim(eta=0,steps=50)") == "ddim(eta=0)");
  CHECK(sampler_family("dpm_solver(order=2,steps=20,skip=time_uniform)") ==
        "dpm_solver(order=2,skip=time_uniform)");
  CHECK(sampler_family("heun(steps=18,S_churn=40,S_min=0.05,S_max=50)") ==
        "heun(S_churn=40,S_min=0.05,S_max=50)");
  CHECK(sampler_family("ddpm(clip_x0=true)") ==
        "ddpm(clip_x0=true)");  // no steps: the label itself
  // Only the option named steps: other names ending in it stay, and so do list values with
  // commas and string values holding one.
  CHECK(sampler_family("ddim(max_steps=4,steps=2)") == "ddim(max_steps=4)");
  CHECK(sampler_family("custom(sigmas=[80, 1.5, 0.002],steps=3)") ==
        "custom(sigmas=[80, 1.5, 0.002])");
  CHECK(sampler_family("custom(note=a,b,steps=3,eta=1)") == "custom(note=a,b,eta=1)");
}

TEST_CASE("report --by-nfe pivots a metric by family and sorted NFE at each run's final checkpoint",
          "[report][nfe]") {
  const auto path = make_nfe_store("report-nfe");
  SECTION("csv: a row per run and family, a column per NFE, full precision, empty where none") {
    CHECK(by_nfe(path, "mmd", ReportFormat::csv) ==
          "run,sampler,10,20,50\n"
          "0,ddim(eta=0),0.5,0.25,0.125\n"
          "0,heun(S_churn=1),0.375,0.1875,0.0625\n"
          "1,ddim(eta=0),0.75,,\n"
          "1,heun(S_churn=1),,,0.3125\n");
  }
  SECTION("table: the same cells, '-' where none, and what they are under it") {
    const auto lines = lines_of(by_nfe(path, "mmd", ReportFormat::table));
    REQUIRE(lines.size() == 8);
    CHECK(words_of(lines[0]) == std::vector<std::string>{"run", "sampler", "10", "20", "50"});
    CHECK(words_of(lines[2]) ==
          std::vector<std::string>{"0", "ddim(eta=0)", "0.5", "0.25", "0.125"});
    CHECK(words_of(lines[3]) ==
          std::vector<std::string>{"0", "heun(S_churn=1)", "0.375", "0.1875", "0.0625"});
    CHECK(words_of(lines[4]) == std::vector<std::string>{"1", "ddim(eta=0)", "0.75", "-", "-"});
    CHECK(words_of(lines[5]) ==
          std::vector<std::string>{"1", "heun(S_churn=1)", "-", "-", "0.3125"});
    CHECK(lines[6].empty());
    CHECK(lines[7] == "mmd (lower is better) by sampler family and NFE (model calls per sample)");
  }
  SECTION("markdown: a pipe table, numbers right-aligned") {
    const auto lines = lines_of(by_nfe(path, "mmd", ReportFormat::markdown));
    REQUIRE(lines.size() >= 6);
    CHECK(lines[0] == "| run | sampler | 10 | 20 | 50 |");
    CHECK(lines[1] == "| ---: | --- | ---: | ---: | ---: |");
    CHECK(lines[5] == "| 1 | heun(S_churn=1) | - | - | 0.3125 |");
  }
  SECTION("json: the NFE once, each row's values in their order, null where none") {
    const auto json = nlohmann::json::parse(by_nfe(path, "mmd", ReportFormat::json));
    CHECK(json["metric"] == "mmd");
    CHECK(json["better"] == "lower");
    CHECK(json["nfe"] == nlohmann::json::array({10, 20, 50}));
    REQUIRE(json["rows"].size() == 4);
    CHECK(json["rows"][1] == nlohmann::json{{"run", 0},
                                            {"sampler", "heun(S_churn=1)"},
                                            {"values", {0.375, 0.1875, 0.0625}}});
    CHECK(json["rows"][2]["values"] == nlohmann::json::parse("[0.75, null, null]"));
  }
  SECTION("--checkpoint best and all read the checkpoints the runs table shows") {
    // best: wasserstein, the key column, is lowest at run 0's epoch 1.
    const auto best =
        nlohmann::json::parse(by_nfe(path, "mmd", ReportFormat::json, CheckpointChoice::best));
    CHECK(best["rows"][0]["values"] == nlohmann::json::array({1.5, 1.25, 1.125}));
    CHECK(best["rows"][2]["values"] == nlohmann::json::parse("[0.75, null, null]"));
    CHECK(by_nfe(path, "mmd", ReportFormat::csv, CheckpointChoice::all) ==
          "run,epoch,sampler,10,20,50\n"
          "0,1,ddim(eta=0),1.5,1.25,1.125\n"
          "0,1,heun(S_churn=1),1.375,1.1875,1.0625\n"
          "0,2,ddim(eta=0),0.5,0.25,0.125\n"
          "0,2,heun(S_churn=1),0.375,0.1875,0.0625\n"
          "1,2,ddim(eta=0),0.75,,\n"
          "1,2,heun(S_churn=1),,,0.3125\n");
  }
  SECTION("a metric at one NFE per family is a one-column pivot") {
    CHECK(by_nfe(path, "wasserstein", ReportFormat::csv) ==
          "run,sampler,100\n0,ddpm,0.5\n1,ddpm,0.5\n");
  }
}

TEST_CASE("report --by-nfe names the variant in each row when the metric has several",
          "[report][nfe]") {
  const auto path = (difflab::test::temp_dir("report-nfe-variants") / "runs.db").string();
  {
    RunStore store(path);
    difflab::RunRecord record;
    record.sweep_id = store.add_sweep("v", "", "");
    record.config_json = "{}";
    record.config_hash = "h";
    const auto c = store.add_checkpoint({0, store.add_run(record), 1, 10, "", 0});
    for (const auto& [steps, value] : {std::pair{10, 0.5}, {20, 0.25}}) {
      const auto sampler = "ddim(steps=" + std::to_string(steps) + ")";
      store.add_metric(value_at(c, sampler, "mmd", "rbf(bandwidths=1)", value, steps));
      store.add_metric(value_at(c, sampler, "mmd", "energy", 2 * value, steps));
    }
  }
  CHECK(by_nfe(path, "mmd", ReportFormat::csv) ==
        "run,variant,sampler,10,20\n"
        "0,rbf(bandwidths=1),ddim,0.5,0.25\n"
        "0,energy,ddim,1,0.5\n");
}

TEST_CASE("report --by-nfe refuses a metric it cannot pivot, naming the metrics there",
          "[report][nfe]") {
  const auto path = make_nfe_store("report-nfe-refusals");
  CHECK(input_error([&] { by_nfe(path, "mdd", ReportFormat::table); }) ==
        "--by-nfe: no metric 'mdd' recorded (did you mean 'mmd'?); metrics recorded: test_loss, "
        "wasserstein, mmd");
  CHECK(input_error([&] { by_nfe(path, "lpips", ReportFormat::json); }) ==
        "--by-nfe: no metric 'lpips' recorded; metrics recorded: test_loss, wasserstein, mmd");
  CHECK_THAT(input_error([&] { by_nfe(path, "test_loss", ReportFormat::csv); }),
             Contains("'test_loss' is measured without a sampler") &&
                 Contains("metrics with samplers: wasserstein, mmd"));
  CHECK_THAT(input_error([&] { by_nfe(path, "mdd", ReportFormat::html); }),
             Contains("did you mean 'mmd'"));

  // The runner says it in one line and exits 2.
  std::string output;
  CHECK(difflab::test::run_command(
            difflab::test::runner_path() + " report --db " + path + " --by-nfe mdd", &output) == 2);
  CHECK(output ==
        "runner report: error: --by-nfe: no metric 'mdd' recorded (did you mean 'mmd'?); metrics "
        "recorded: test_loss, wasserstein, mmd\n");
  CHECK(difflab::test::run_command(
            difflab::test::runner_path() + " report --db " + path + " --by-nfe mmd --format csv",
            &output) == 0);
  CHECK(lines_of(output).size() == 5);
  CHECK(difflab::test::run_command(difflab::test::runner_path() + " report --help", &output) == 0);
  CHECK_THAT(output, Contains("--by-nfe METRIC"));
}

TEST_CASE("report --by-nfe of values recorded before the store kept NFE says why there is nothing",
          "[report][nfe]") {
  const auto path = (difflab::test::temp_dir("report-nfe-old") / "runs.db").string();
  {
    RunStore store(path);
    difflab::RunRecord record;
    record.sweep_id = store.add_sweep("old", "", "");
    record.config_json = "{}";
    record.config_hash = "h";
    const auto c = store.add_checkpoint({0, store.add_run(record), 1, 10, "", 0});
    store.add_metric({c, "ddim(steps=10)", "{}", "mmd", "", 0.5});  // nfe 0: not known
  }
  CHECK_THAT(input_error([&] { by_nfe(path, "mmd", ReportFormat::table); }),
             Contains("no value of 'mmd'") && Contains("schema version 4"));
  // An empty store is no error: nothing is recorded yet.
  const auto empty = (difflab::test::temp_dir("report-nfe-empty") / "runs.db").string();
  { RunStore store(empty); }
  CHECK_THAT(by_nfe(empty, "mmd", ReportFormat::table), Contains("no runs recorded"));
  CHECK(nlohmann::json::parse(by_nfe(empty, "mmd", ReportFormat::json))["rows"].empty());
}

TEST_CASE("the html page charts each metric measured at several NFE, and shows the pivot",
          "[report][nfe][html]") {
  const auto path = make_nfe_store("report-nfe-html");
  const RunStore store(path, RunStore::Access::read_only);
  ReportOptions options;
  options.format = ReportFormat::html;
  auto html = difflab::render_report(store, options);
  const auto data = page_data(html);
  // mmd has three NFE in run 0; wasserstein one per run: no chart of it.
  REQUIRE(data["nfe_charts"].size() == 1);
  const auto& chart = data["nfe_charts"][0];
  CHECK(chart["metric"] == "mmd");
  CHECK(chart["families"] == 2);
  CHECK(chart["runs"] == 2);
  REQUIRE(chart["values"].size() == 8);  // run 0: 2 families x 3 NFE at epoch 2; run 1: 2
  CHECK(chart["values"][0]["family"] == "ddim(eta=0)");
  CHECK(chart["values"][0]["sampler"] == "ddim(eta=0,steps=50)");
  CHECK(chart["values"][0]["nfe"] == 50);
  CHECK(chart["values"][0]["value"] == 0.125);  // the final checkpoint's, not epoch 1's 1.125
  CHECK_THAT(html, Contains("id=\"nfe-chart-0\"") && !Contains("id=\"nfe-chart-1\""));
  CHECK_THAT(html, Contains("scale: {type: 'log'}"));  // the x axis of report.js's NFE charts
  CHECK_THAT(html, !Contains("id=\"nfe-pivot\""));

  options.by_nfe = "mmd";
  html = difflab::render_report(store, options);
  const auto pivot = html.substr(html.find("id=\"nfe-pivot\""));
  CHECK_THAT(
      pivot.substr(0, pivot.find("</table>")),
      Contains(
          "<td>heun(S_churn=1)</td><td class=\"num\">&ndash;</td><td class=\"num\">&ndash;</td>"
          "<td class=\"num\">0.3125</td>"));
}
