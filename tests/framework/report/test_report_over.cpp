// runner report --over AXIS and --compare AXIS=A,B: means, standard deviations and confidence
// intervals against hand-computed values, paired differences and their marks, the protocol
// refusal, the errors, every format and the HTML page's bands.
#include <cmath>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "framework/report/html_page.hpp"
#include "framework/report/report_store.hpp"
#include "framework/report/text_lines.hpp"
#include "report/report.hpp"
#include "support.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::EndsWith;
using difflab::CheckpointChoice;
using difflab::IntervalSummary;
using difflab::ReportFormat;
using difflab::ReportInterval;
using difflab::ReportOptions;
using difflab::RunStore;
using difflab::test::add_checkpoint_at;
using difflab::test::add_done_run;
using difflab::test::input_error_of;
using difflab::test::lines_of;
using difflab::test::metric_value;
using difflab::test::render_store;

namespace {

// t_{0.975, 2}, the Student t quantile of a 95% interval of 3 values (R: qt(0.975, 2)).
constexpr double kT2 = 4.302652729911275;

// Sweep "seeds": linear at seeds 0, 1, 2 (wasserstein[ddpm] 1, 2, 4) and 3 (NaN), cosine_beta at
// seed 0 only (3). test_loss is 0.1 everywhere: a constant whose sum does not round to 0.3.
std::string make_seed_store(const std::string& name) {
  const auto path = (difflab::test::temp_dir(name) / "runs.db").string();
  RunStore store(path);
  const auto sweep = store.add_sweep("seeds", "", "");
  const std::pair<const char*, double> runs[] = {
      {R"({"schedule.plugin":"linear","seed":0})", 1.0},
      {R"({"schedule.plugin":"linear","seed":1})", 2.0},
      {R"({"schedule.plugin":"linear","seed":2})", 4.0},
      {R"({"schedule.plugin":"linear","seed":3})", std::nan("")},
      {R"({"schedule.plugin":"cosine_beta","seed":0})", 3.0}};
  for (std::size_t i = 0; i < std::size(runs); ++i) {
    const auto run = add_done_run(store, sweep, static_cast<std::int64_t>(i), runs[i].first);
    const auto c = add_checkpoint_at(store, run, 1, 10);
    store.add_metric(metric_value(c, "", "test_loss", 0.1));
    store.add_metric(metric_value(c, "ddpm", "wasserstein", runs[i].second));
  }
  return path;
}

// Sweep "pairs": linear and cosine_beta at seeds 0, 1, 2, and linear at seed 3 (no partner).
// cosine_beta - linear: wasserstein[ddpm] 1, 2, 3; mmd[ddpm] 1, 1.1, 0.9; test_loss 0 (the runs
// of a pair have the same value). Sweep "apart": linear at seed 0, cosine_beta at seed 1 only.
std::string make_pair_store(const std::string& name) {
  const auto path = (difflab::test::temp_dir(name) / "runs.db").string();
  RunStore store(path);
  const auto sweep = store.add_sweep("pairs", "", "");
  const double mmd_cosine[] = {1.5, 1.6, 1.4};
  std::int64_t index = 0;
  for (const std::string schedule : {"linear", "cosine_beta"}) {
    for (int seed = 0; seed < (schedule == "linear" ? 4 : 3); ++seed) {
      const auto run = add_done_run(
          store, sweep, index++,
          R"({"schedule.plugin":")" + schedule + R"(","seed":)" + std::to_string(seed) + "}");
      const auto c = add_checkpoint_at(store, run, 1, 10);
      const bool cosine = schedule == "cosine_beta";
      store.add_metric(metric_value(c, "", "test_loss", 0.123456789 + seed));
      store.add_metric(
          metric_value(c, "ddpm", "wasserstein", 1.0 + seed + (cosine ? seed + 1.0 : 0.0)));
      store.add_metric(metric_value(c, "ddpm", "mmd", cosine ? mmd_cosine[seed] : 0.5));
    }
  }
  const auto apart = store.add_sweep("apart", "", "");
  add_done_run(store, apart, 0, R"({"schedule.plugin":"linear","seed":0})");
  add_done_run(store, apart, 1, R"({"schedule.plugin":"cosine_beta","seed":1})");
  return path;
}

ReportOptions over_options(ReportFormat format, const std::string& axis,
                           ReportInterval interval = ReportInterval::t) {
  ReportOptions options;
  options.format = format;
  options.over = axis;
  options.interval = interval;
  return options;
}

ReportOptions compare_options(ReportFormat format, const std::string& compare,
                              ReportInterval interval = ReportInterval::t) {
  ReportOptions options;
  options.format = format;
  options.compare = difflab::parse_report_comparison(compare);
  options.interval = interval;
  return options;
}

}  // namespace

TEST_CASE("summaries: a constant has a zero-width interval, 1 2 4 the Student t one by hand",
          "[report][stats]") {
  CHECK(difflab::student_t_quantile(0.975, 2) == Approx(kT2).margin(1e-12));
  CHECK(difflab::student_t_quantile(0.975, 1) == Approx(12.706204736174707).margin(1e-9));

  for (const auto interval : {ReportInterval::t, ReportInterval::bootstrap}) {
    const auto constant = difflab::summarize({0.1, 0.1, 0.1}, interval);
    CHECK(constant.n == 3);
    CHECK(constant.mean == 0.1);  // exactly: (0.1 + 0.1 + 0.1) / 3 is not
    CHECK(constant.stddev == 0);
    CHECK(constant.ci_low == 0.1);
    CHECK(constant.ci_high == 0.1);
    CHECK(constant.excludes_zero());  // a zero-width interval at 0.1
  }
  const auto t = difflab::summarize({1, 2, 4}, ReportInterval::t);
  const double s = std::sqrt(7.0 / 3.0), half = kT2 * s / std::sqrt(3.0);
  CHECK(t.n == 3);
  CHECK(t.mean == Approx(7.0 / 3.0).margin(1e-12));
  CHECK(t.stddev == Approx(1.5275252316519468).margin(1e-12));
  CHECK(t.ci_low == Approx(7.0 / 3.0 - half).margin(1e-9));
  CHECK(t.ci_high == Approx(7.0 / 3.0 + half).margin(1e-9));
  CHECK(half == Approx(3.7945).margin(1e-4));

  // The bootstrap: within the values' range, around the mean, the same each time.
  const auto boot = difflab::summarize({1, 2, 4}, ReportInterval::bootstrap);
  CHECK(boot.mean == t.mean);
  CHECK(boot.stddev == t.stddev);
  CHECK(boot.ci_low >= 1.0);
  CHECK(boot.ci_high <= 4.0);
  CHECK(boot.ci_low < boot.mean);
  CHECK(boot.ci_high > boot.mean);
  const auto again = difflab::summarize({1, 2, 4}, ReportInterval::bootstrap);
  CHECK(again.ci_low == boot.ci_low);
  CHECK(again.ci_high == boot.ci_high);

  // NaN and infinities are left out of n; one value has a mean but no spread or interval.
  const auto one = difflab::summarize({std::nan(""), 3.0, INFINITY}, ReportInterval::t);
  CHECK(one.n == 1);
  CHECK(one.mean == 3.0);
  CHECK(std::isnan(one.stddev));
  CHECK_FALSE(one.has_interval());
  CHECK(std::isnan(one.ci_low));
  CHECK(difflab::summarize({}, ReportInterval::t).n == 0);
}

TEST_CASE("report --over seed: a row per group of the other axes, mean, std, n and interval",
          "[report][stats]") {
  const auto path = make_seed_store("report-over");
  SECTION("json: the hand-computed example to 1e-9, n = 1 without an interval") {
    const auto json =
        nlohmann::json::parse(render_store(path, over_options(ReportFormat::json, "seed")));
    CHECK(json["over"] == "seed");
    CHECK(json["interval"] == "t");
    CHECK(json["confidence"] == 0.95);
    REQUIRE(json["rows"].size() == 2);
    const auto& linear = json["rows"][0];
    CHECK(linear["schedule.plugin"] == "linear");
    CHECK(linear["runs"] == 4);
    CHECK_FALSE(linear.contains("seed"));
    const auto& w = linear["wasserstein[ddpm]"];
    const double mean = 7.0 / 3.0, s = std::sqrt(7.0 / 3.0), half = kT2 * s / std::sqrt(3.0);
    CHECK(w["n"] == 3);  // seed 3's NaN is left out
    CHECK(w["mean"].get<double>() == Approx(mean).margin(1e-9));
    CHECK(w["std"].get<double>() == Approx(s).margin(1e-9));
    CHECK(w["ci_low"].get<double>() == Approx(mean - half).margin(1e-9));
    CHECK(w["ci_high"].get<double>() == Approx(mean + half).margin(1e-9));
    // A constant: zero width, not NaN.
    const auto& loss = linear["test_loss"];
    CHECK(loss["n"] == 4);
    CHECK(loss["std"] == 0.0);
    CHECK(loss["ci_low"].get<double>() == 0.1);
    CHECK(loss["ci_high"].get<double>() == 0.1);
    // n = 1: the mean, and null where there is no spread or interval.
    const auto& cosine = json["rows"][1]["wasserstein[ddpm]"];
    CHECK(json["rows"][1]["schedule.plugin"] == "cosine_beta");
    CHECK(cosine["n"] == 1);
    CHECK(cosine["mean"] == 3.0);
    CHECK(cosine["std"].is_null());
    CHECK(cosine["ci_low"].is_null());
    CHECK(cosine["ci_high"].is_null());
  }
  SECTION("table: mean ± half-width (n), n = 1 said so, the interval named under it") {
    const auto text = render_store(path, over_options(ReportFormat::table, "seed"));
    INFO(text);
    const auto lines = lines_of(text);
    REQUIRE(lines.size() == 2 + 2 + 2);
    CHECK(difflab::test::words_of(lines[0]) ==
          std::vector<std::string>{"schedule.plugin", "runs", "test_loss", "wasserstein[ddpm]"});
    CHECK_THAT(lines[2],
               Contains("linear") && Contains("0.1 ± 0 (s=0, n=4)") && EndsWith("2.333 ± 3.795 (s=1.528, n=3)"));
    CHECK_THAT(lines[3], Contains("cosine_beta") && EndsWith("  3 (n=1)"));
    CHECK(lines[4].empty());
    CHECK_THAT(lines[5], Contains("95% confidence interval (Student t") &&
                             Contains("they differ only in seed"));
    // "±" is one column wide (two bytes): the rows end where the rule under the header does.
    auto columns = [](const std::string& line) {
      std::size_t n = 0;
      for (const char c : line) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
      return n;
    };
    CHECK(columns(lines[2]) == lines[1].size());
    CHECK(columns(lines[3]) == lines[1].size());
  }
  SECTION("markdown and csv") {
    const auto md = lines_of(render_store(path, over_options(ReportFormat::markdown, "seed")));
    CHECK(md[0] == "| schedule.plugin | runs | test_loss | wasserstein[ddpm] |");
    CHECK(md[1] == "| --- | ---: | ---: | ---: |");
    CHECK(md[2] == "| linear | 4 | 0.1 ± 0 (s=0, n=4) | 2.333 ± 3.795 (s=1.528, n=3) |");
    CHECK(md[3] == "| cosine_beta | 1 | 0.1 (n=1) | 3 (n=1) |");
    const auto csv = lines_of(render_store(path, over_options(ReportFormat::csv, "seed")));
    REQUIRE(csv.size() == 3);
    CHECK(csv[0] ==
          "schedule.plugin,runs,test_loss.mean,test_loss.std,test_loss.n,test_loss.ci_low,"
          "test_loss.ci_high,wasserstein[ddpm].mean,wasserstein[ddpm].std,wasserstein[ddpm].n,"
          "wasserstein[ddpm].ci_low,wasserstein[ddpm].ci_high");
    CHECK(csv[1].rfind("linear,4,0.10000000000000001,0,4,0.10000000000000001,0.10000000000000001,",
                       0) == 0);
    CHECK(csv[2] == "cosine_beta,1,0.10000000000000001,,1,,,3,,1,,");
  }
  SECTION("bootstrap: a constant has zero width, 1 2 4 lies within [1, 4], the caption says so") {
    const auto json = nlohmann::json::parse(
        render_store(path, over_options(ReportFormat::json, "seed", ReportInterval::bootstrap)));
    CHECK(json["interval"] == "bootstrap");
    const auto& linear = json["rows"][0];
    CHECK(linear["test_loss"]["ci_low"] == 0.1);
    CHECK(linear["test_loss"]["ci_high"] == 0.1);
    const auto& w = linear["wasserstein[ddpm]"];
    CHECK(w["ci_low"].get<double>() >= 1.0);
    CHECK(w["ci_high"].get<double>() <= 4.0);
    CHECK(w["ci_low"].get<double>() < w["ci_high"].get<double>());
    const auto text =
        render_store(path, over_options(ReportFormat::table, "seed", ReportInterval::bootstrap));
    CHECK_THAT(text, Contains("0.1 [0.1, 0.1] (s=0, n=4)") && Contains("percentile bootstrap, 10000"));
    CHECK(text ==
          render_store(path, over_options(ReportFormat::table, "seed", ReportInterval::bootstrap)));
  }
  SECTION("over another axis: a row per seed") {
    const auto json = nlohmann::json::parse(
        render_store(path, over_options(ReportFormat::json, "schedule.plugin")));
    REQUIRE(json["rows"].size() == 4);
    CHECK(json["rows"][0]["seed"] == 0);
    CHECK(json["rows"][0]["runs"] == 2);
    CHECK(json["rows"][0]["wasserstein[ddpm]"]["mean"] == 2.0);  // (1 + 3) / 2
    CHECK(json["rows"][3]["wasserstein[ddpm]"]["n"] == 0);       // seed 3: NaN only
    CHECK(json["rows"][3]["wasserstein[ddpm]"]["mean"].is_null());
  }
}

TEST_CASE("report --over refuses an unknown axis, --checkpoint all and --by-nfe",
          "[report][stats]") {
  const auto path = make_seed_store("report-over-errors");
  CHECK(input_error_of([&] { render_store(path, over_options(ReportFormat::table, "sed")); }) ==
        "--over: no axis 'sed' in the runs shown (did you mean 'seed'?); axes: schedule.plugin, "
        "seed");
  CHECK_THAT(input_error_of([&] { render_store(path, over_options(ReportFormat::json, "lr")); }),
             Contains("no axis 'lr'") && Contains("axes: schedule.plugin, seed"));
  auto all = over_options(ReportFormat::table, "seed");
  all.checkpoint = CheckpointChoice::all;
  CHECK_THAT(input_error_of([&] { render_store(path, all); }),
             Contains("--over takes one checkpoint per run") && Contains("not all"));
  auto nfe = over_options(ReportFormat::table, "seed");
  nfe.by_nfe = "wasserstein";
  CHECK_THAT(input_error_of([&] { render_store(path, nfe); }), Contains("--by-nfe"));
  auto both = over_options(ReportFormat::table, "seed");
  both.compare = difflab::parse_report_comparison("seed=0,1");
  CHECK_THAT(input_error_of([&] { render_store(path, both); }),
             Contains("--over and --compare cannot be combined"));
  // An empty store is no error: nothing recorded yet.
  const auto empty = (difflab::test::temp_dir("report-over-empty") / "runs.db").string();
  { RunStore store(empty); }
  CHECK_THAT(render_store(empty, over_options(ReportFormat::table, "seed")),
             Contains("no runs recorded"));
  CHECK(nlohmann::json::parse(render_store(empty, over_options(ReportFormat::json, "seed")))["rows"]
            .empty());
}

TEST_CASE("report --compare: the mean paired difference b - a, its interval, pairs and marks",
          "[report][stats]") {
  const auto path = make_pair_store("report-compare");
  auto options = compare_options(ReportFormat::json, "schedule.plugin=linear,cosine_beta");
  options.sweep = "pairs";
  SECTION("json") {
    const auto json = nlohmann::json::parse(render_store(path, options));
    CHECK(json["compare"] == "schedule.plugin");
    CHECK(json["a"] == "linear");
    CHECK(json["b"] == "cosine_beta");
    CHECK(json["difference"] == "cosine_beta - linear");
    CHECK(json["pairs"] == 3);  // linear's seed 3 has no partner
    REQUIRE(json["metrics"].size() == 3);
    // Identical runs: exactly 0, with a zero-width interval that does not exclude 0.
    const auto& loss = json["metrics"][0];
    CHECK(loss["metric"] == "test_loss");
    CHECK(loss["mean"] == 0.0);
    CHECK(loss["std"] == 0.0);
    CHECK(loss["ci_low"] == 0.0);
    CHECK(loss["ci_high"] == 0.0);
    CHECK(loss["n"] == 3);
    CHECK(loss["excludes_zero"] == false);
    CHECK(loss["refused"].is_null());
    // Differences 1, 2, 3: mean 2, s = 1, 2 ± t s / sqrt(3), which holds 0.
    const auto& w = json["metrics"][1];
    CHECK(w["metric"] == "wasserstein[ddpm]");
    CHECK(w["mean"].get<double>() == Approx(2.0).margin(1e-12));
    CHECK(w["std"].get<double>() == Approx(1.0).margin(1e-12));
    CHECK(w["ci_low"].get<double>() == Approx(2.0 - kT2 / std::sqrt(3.0)).margin(1e-9));
    CHECK(w["ci_high"].get<double>() == Approx(2.0 + kT2 / std::sqrt(3.0)).margin(1e-9));
    CHECK(w["excludes_zero"] == false);
    // Differences 1, 1.1, 0.9: 1 ± 0.248, which excludes 0.
    const auto& mmd = json["metrics"][2];
    CHECK(mmd["metric"] == "mmd[ddpm]");
    CHECK(mmd["mean"].get<double>() == Approx(1.0).margin(1e-9));
    CHECK(mmd["ci_low"].get<double>() == Approx(1.0 - kT2 * 0.1 / std::sqrt(3.0)).margin(1e-9));
    CHECK(mmd["excludes_zero"] == true);
  }
  SECTION("table: a row per metric, * where the interval excludes 0, explained under it") {
    options.format = ReportFormat::table;
    const auto text = render_store(path, options);
    INFO(text);
    const auto lines = lines_of(text);
    REQUIRE(lines.size() >= 2 + 3 + 4);
    CHECK_THAT(lines[0], Contains("metric") && Contains("difference (cosine_beta - linear)"));
    CHECK_THAT(lines[2], Contains("test_loss") && EndsWith("0 ± 0 (s=0, n=3)"));
    CHECK_THAT(lines[3], Contains("wasserstein[ddpm]") && EndsWith("2 ± 2.484 (s=1, n=3)"));
    CHECK_THAT(lines[4], Contains("mmd[ddpm]") && EndsWith("1 ± 0.2484 (s=0.1, n=3) *"));
    CHECK(lines[5].empty());
    CHECK_THAT(lines[6], Contains("schedule.plugin = cosine_beta minus schedule.plugin = linear") &&
                             Contains("3 pairs"));
    CHECK(lines[8] == "* the interval excludes 0");
  }
  SECTION("csv and markdown") {
    options.format = ReportFormat::csv;
    const auto csv = lines_of(render_store(path, options));
    REQUIRE(csv.size() == 4);
    CHECK(csv[0] == "metric,mean,std,n,ci_low,ci_high,excludes_zero,refused");
    CHECK(csv[1] == "test_loss,0,0,3,0,0,false,");
    CHECK(csv[3].rfind("mmd[ddpm],", 0) == 0);
    CHECK_THAT(csv[3], EndsWith(",true,"));
    options.format = ReportFormat::markdown;
    const auto md = lines_of(render_store(path, options));
    CHECK(md[0] == "| metric | difference (cosine_beta - linear) |");
    CHECK(md[4] == "| mmd[ddpm] | 1 ± 0.2484 (s=0.1, n=3) * |");
  }
  SECTION("bootstrap: identical runs still differ by exactly 0") {
    options.interval = ReportInterval::bootstrap;
    const auto json = nlohmann::json::parse(render_store(path, options));
    CHECK(json["interval"] == "bootstrap");
    CHECK(json["metrics"][0]["ci_low"] == 0.0);
    CHECK(json["metrics"][0]["ci_high"] == 0.0);
    CHECK(json["metrics"][1]["ci_low"].get<double>() >= 1.0);
    CHECK(json["metrics"][1]["ci_high"].get<double>() <= 3.0);
  }
  SECTION("pairs across seeds: any axis works") {
    options.compare = difflab::parse_report_comparison("seed=0,1");
    const auto json = nlohmann::json::parse(render_store(path, options));
    CHECK(json["pairs"] == 2);  // linear and cosine_beta
    // test_loss: (1 + 0.123456789) - 0.123456789, as doubles
    CHECK(json["metrics"][0]["mean"].get<double>() == Approx(1.0).margin(1e-12));
  }
}

TEST_CASE("report --compare refuses what it cannot pair", "[report][stats]") {
  const auto path = make_pair_store("report-compare-errors");
  auto error = [&](const std::string& compare, const std::string& sweep = "pairs") {
    return input_error_of([&] {
      auto options = compare_options(ReportFormat::table, compare);
      options.sweep = sweep;
      render_store(path, options);
    });
  };
  CHECK(error("schedule.plugin=linear,cosine_bta") ==
        "--compare: no run shown has schedule.plugin = cosine_bta (did you mean 'cosine_beta'?); "
        "values of schedule.plugin: linear, cosine_beta");
  CHECK(error("seed=0,7") == "--compare: no run shown has seed = 7; values of seed: 0, 1, 2, 3");
  CHECK_THAT(error("schedul.plugin=linear,cosine_beta"),
             Contains("--compare: no axis 'schedul.plugin'") &&
                 Contains("did you mean 'schedule.plugin'"));
  CHECK(error("schedule.plugin=linear,cosine_beta", "apart") ==
        "--compare schedule.plugin=linear,cosine_beta: no pairs: no run with schedule.plugin = "
        "linear agrees with one with schedule.plugin = cosine_beta on every other axis");
  CHECK_THAT(input_error_of([] { difflab::parse_report_comparison("seed=0"); }),
             Contains("--compare seed=0: 1 values") && Contains("AXIS=A,B"));
  CHECK_THAT(input_error_of([] { difflab::parse_report_comparison("seed=0,1,2"); }),
             Contains("3 values"));
  CHECK_THAT(input_error_of([] { difflab::parse_report_comparison("seed=1,1"); }),
             Contains("the two values are the same"));
  CHECK_THAT(input_error_of([] { difflab::parse_report_comparison("linear,cosine"); }),
             Contains("no axis"));
  const auto list = difflab::parse_report_comparison("widths=[1, 2],[2, 4]");
  CHECK(list.axis == "widths");
  CHECK(list.a == "[1, 2]");
  CHECK(list.b == "[2, 4]");
  auto all = compare_options(ReportFormat::table, "seed=0,1");
  all.checkpoint = CheckpointChoice::all;
  CHECK_THAT(input_error_of([&] { render_store(path, all); }),
             Contains("--compare takes one checkpoint per run"));
  CHECK(difflab::parse_report_interval("bootstrap") == ReportInterval::bootstrap);
  CHECK_THAT(input_error_of([] { difflab::parse_report_interval("bootstrp"); }),
             Contains("did you mean 'bootstrap'"));
}

TEST_CASE("report --compare refuses a metric whose pair was measured under different protocols",
          "[report][stats][protocol]") {
  const auto path = (difflab::test::temp_dir("report-compare-protocol") / "runs.db").string();
  {
    RunStore store(path);
    const auto sweep = store.add_sweep("p", "", "");
    for (int i = 0; i < 2; ++i) {
      const auto run = add_done_run(store, sweep, i,
                                    i == 0 ? R"({"schedule.plugin":"linear","seed":0})"
                                           : R"({"schedule.plugin":"cosine_beta","seed":0})");
      const auto c = add_checkpoint_at(store, run, 1, 10);
      store.add_metric(metric_value(c, "ddpm", "fid", 20.0 + i,
                                    i == 0 ? R"({"samples":1000,"reference":"test","nfe":1000})"
                                           : R"({"nfe":1000,"reference":"test","samples":500})",
                                    1000));
      store.add_metric(metric_value(c, "", "test_loss", 0.5 + i, R"({"reference":"test"})"));
    }
  }
  auto options = compare_options(ReportFormat::json, "schedule.plugin=linear,cosine_beta");
  const auto json = nlohmann::json::parse(render_store(path, options));
  REQUIRE(json["metrics"].size() == 2);
  CHECK(json["metrics"][1]["metric"] == "fid[ddpm]");
  CHECK(json["metrics"][1]["refused"] ==
        "--compare: fid[ddpm] of run 0 and run 1 were measured under different protocols "
        "(samples 1000 vs 500)");
  CHECK(json["metrics"][1]["mean"].is_null());
  CHECK(json["metrics"][0]["metric"] == "test_loss");  // the others are still compared
  CHECK(json["metrics"][0]["mean"] == 1.0);
  CHECK(json["metrics"][0]["refused"].is_null());

  options.format = ReportFormat::table;
  const auto text = render_store(path, options);
  INFO(text);
  const auto lines = lines_of(text);
  CHECK_THAT(lines[3], Contains("fid[ddpm]") && EndsWith("refused: different protocols"));
  CHECK(lines.back() ==
        "--compare: fid[ddpm] of run 0 and run 1 were measured under different protocols "
        "(samples 1000 vs 500)");
}

TEST_CASE("the html page of --over: the groups' table, their means in bands; of --compare",
          "[report][stats][html]") {
  const auto path = make_seed_store("report-over-html");
  auto options = over_options(ReportFormat::html, "seed");
  const auto html = render_store(path, options);
  CHECK(difflab::test::count(html, "<tr class=\"group\">") == 2);
  CHECK(difflab::test::count(html, "<tr class=\"run ") == 0);
  CHECK_THAT(html, Contains("<h2>Runs over seed</h2>") && Contains(">2.333 ± 3.795 (s=1.528, n=3)</td>"));
  const auto data = difflab::test::page_data(html);
  CHECK(data["over"] == "seed");
  CHECK(data["run_order"] == nlohmann::json({"linear", "cosine_beta"}));
  nlohmann::json band;
  for (const auto& point : data["metrics"]) {
    if (point["run"] == "linear" && point["sampler"] == "ddpm") band = point;
  }
  REQUIRE(band.is_object());
  const double mean = 7.0 / 3.0, half = kT2 * std::sqrt(7.0 / 3.0) / std::sqrt(3.0);
  CHECK(band["value"].get<double>() == Approx(mean).margin(1e-9));
  CHECK(band["ci_low"].get<double>() == Approx(mean - half).margin(1e-9));
  CHECK(band["ci_high"].get<double>() == Approx(mean + half).margin(1e-9));
  CHECK(band["n"] == 3);
  CHECK_THAT(html, Contains("type: 'area'"));  // report.js draws the band

  const auto pairs = make_pair_store("report-compare-html");
  auto compare = compare_options(ReportFormat::html, "schedule.plugin=linear,cosine_beta");
  compare.sweep = "pairs";
  const auto page = render_store(pairs, compare);
  CHECK_THAT(page, Contains("<h2>Paired differences</h2>") &&
                       Contains("<td class=\"num\">1 ± 0.2484 (s=0.1, n=3) *</td>"));
  CHECK(difflab::test::count(page, "<tr class=\"run ") == 7);  // the runs table follows
}

TEST_CASE("runner report --over and --compare on the command line", "[report][stats][cli]") {
  const auto path = make_pair_store("report-over-cli");
  const auto runner = difflab::test::runner_path() + " report --db " + path + " --sweep pairs";
  std::string output;
  REQUIRE(difflab::test::run_command(runner + " --over seed --format json", &output) == 0);
  CHECK(nlohmann::json::parse(output)["rows"].size() == 2);
  REQUIRE(difflab::test::run_command(
              runner +
                  " --compare schedule.plugin=linear,cosine_beta --interval bootstrap --format csv",
              &output) == 0);
  CHECK(lines_of(output).size() == 4);
  CHECK(difflab::test::run_command(runner + " --compare seed=0", &output) == 2);
  CHECK_THAT(output, Contains("runner report: error: --compare seed=0: 1 values"));
  CHECK(difflab::test::run_command(runner + " --over seed --checkpoint all", &output) == 2);
  CHECK_THAT(output, Contains("--over takes one checkpoint per run"));
  CHECK(difflab::test::run_command(runner + " --interval bootstrap", &output) == 2);
  CHECK_THAT(output, Contains("--interval bootstrap: it is the interval of --over or --compare"));
  CHECK(difflab::test::run_command(runner + " --help", &output) == 0);
  CHECK_THAT(output, Contains("--over AXIS") && Contains("--compare AXIS=A,B") &&
                         Contains("--interval KIND") && Contains("step=N"));
}
