// Evaluation protocols in reports: values of one metric column measured under different
// protocols never share it; the column splits and each header names what differs, in every
// format, with --checkpoint best and --by-nfe.
#include <set>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "framework/report/html_page.hpp"
#include "framework/report/report_store.hpp"
#include "framework/report/text_lines.hpp"
#include "report/report.hpp"
#include "report/report_protocol.hpp"
#include "support.hpp"

using Catch::Matchers::Contains;
using difflab::CheckpointChoice;
using difflab::ReportFormat;
using difflab::ReportOptions;
using difflab::RunStore;
using difflab::test::add_checkpoint_at;
using difflab::test::add_done_run;
using difflab::test::lines_of;
using difflab::test::metric_value;
using difflab::test::render_store;
using difflab::test::words_of;
using Words = std::vector<std::string>;

namespace {

const char* const kThousand = R"({"samples":1000,"extractor":"inception","nfe":100})";
const char* const kFiveHundred = R"({"extractor":"inception","nfe":100,"samples":500})";

// Three runs (seeds 0, 1, 2), one checkpoint each. fid[ddpm]: 10.5 from 1000 samples, 12.25 from
// 500, 11 with no protocol recorded (an old store's value). mmd[ddpm]: one protocol, written with
// its keys in two orders.
std::string make_protocol_store(const std::string& name) {
  const auto path = (difflab::test::temp_dir(name) / "runs.db").string();
  RunStore store(path);
  const auto sweep = store.add_sweep("protocols", "", "");
  const std::pair<const char*, double> fid[] = {
      {kThousand, 10.5}, {kFiveHundred, 12.25}, {"{}", 11.0}};
  const char* const mmd[] = {R"({"samples":1000,"nfe":100})", R"({"nfe":100,"samples":1000})",
                             R"({"samples":1000,"nfe":100})"};
  for (int i = 0; i < 3; ++i) {
    const auto run = add_done_run(store, sweep, i, R"({"seed":)" + std::to_string(i) + "}");
    const auto c = add_checkpoint_at(store, run, 1, 10);
    store.add_metric(metric_value(c, "ddpm", "fid", fid[i].second, fid[i].first, 100));
    store.add_metric(metric_value(c, "ddpm", "mmd", 0.25 * (i + 1), mmd[i], 100));
  }
  return path;
}

std::string report(const std::string& path, ReportFormat format,
                   CheckpointChoice choice = CheckpointChoice::final) {
  ReportOptions options;
  options.format = format;
  options.checkpoint = choice;
  return render_store(path, options);
}

}  // namespace

TEST_CASE("protocols: canonical text, the names of their differences", "[report][protocol]") {
  using difflab::canonical_protocol;
  CHECK(canonical_protocol(R"({"samples": 10, "extractor": "x"})") ==
        canonical_protocol(R"({"extractor":"x","samples":10})"));
  CHECK(canonical_protocol("") == "{}");
  CHECK(canonical_protocol("{ }") == "{}");
  CHECK(
      difflab::protocol_labels({canonical_protocol(kThousand), canonical_protocol(kFiveHundred)}) ==
      Words{"{samples=1000}", "{samples=500}"});
  CHECK(difflab::protocol_labels(
            {R"({"reference":"test","samples":1000})", R"({"reference":"train"})", "{}"}) ==
        Words{"{reference=test,samples=1000}", "{reference=train,samples=-}", "{unrecorded}"});
  CHECK(difflab::protocol_labels({canonical_protocol(kThousand), "{}"}) ==
        Words{"{recorded}", "{unrecorded}"});
  CHECK(difflab::protocol_labels({"{}"}) == Words{""});
  CHECK(difflab::protocol_difference(canonical_protocol(kThousand),
                                     canonical_protocol(kFiveHundred)) == "samples 1000 vs 500");
  CHECK(difflab::protocol_difference("{}", R"({"samples":1000})") ==
        "not recorded vs samples 1000");
}

TEST_CASE(
    "a column whose values were measured under two protocols splits, its headers naming "
    "the difference",
    "[report][protocol]") {
  const auto path = make_protocol_store("report-protocol");
  SECTION("table") {
    const auto text = report(path, ReportFormat::table);
    INFO(text);
    const auto lines = lines_of(text);
    REQUIRE(lines.size() == 2 + 3);
    CHECK(words_of(lines[0]) == Words{"run", "seed", "status", "step", "epoch", "images",
                                      "fid[ddpm]{samples=1000}", "fid[ddpm]{samples=500}",
                                      "fid[ddpm]{unrecorded}", "mmd[ddpm]"});
    CHECK(words_of(lines[2]) == Words{"0", "0", "done", "10", "1", "-", "10.5", "-", "-", "0.25"});
    CHECK(words_of(lines[3]) == Words{"1", "1", "done", "10", "1", "-", "-", "12.25", "-", "0.5"});
    CHECK(words_of(lines[4]) == Words{"2", "2", "done", "10", "1", "-", "-", "-", "11", "0.75"});
  }
  SECTION("json and csv") {
    const auto json = nlohmann::json::parse(report(path, ReportFormat::json));
    CHECK(json[0]["fid[ddpm]{samples=1000}"] == 10.5);
    CHECK(json[0]["fid[ddpm]{samples=500}"].is_null());
    CHECK(json[1]["fid[ddpm]{samples=500}"] == 12.25);
    CHECK(json[2]["fid[ddpm]{unrecorded}"] == 11.0);
    CHECK_FALSE(json[0].contains("fid[ddpm]"));
    CHECK(json[2]["mmd[ddpm]"] == 0.75);
    CHECK(lines_of(report(path, ReportFormat::csv))[0] ==
          "run,seed,status,step,epoch,images,fid[ddpm]{samples=1000},fid[ddpm]{samples=500},"
          "fid[ddpm]{unrecorded},mmd[ddpm]");
  }
  SECTION("--checkpoint best chooses within the metric's values, whatever their protocol") {
    const auto lines = lines_of(report(path, ReportFormat::table, CheckpointChoice::best));
    CHECK(lines.back() == "best checkpoint per run: lowest fid[ddpm]");
  }
  SECTION("--by-nfe keeps the protocols apart, naming each row's") {
    ReportOptions options;
    options.format = ReportFormat::csv;
    options.by_nfe = "fid";
    CHECK(render_store(path, options) ==
          "run,sampler,protocol,100\n"
          "0,ddpm,{samples=1000},10.5\n"
          "1,ddpm,{samples=500},12.25\n"
          "2,ddpm,{unrecorded},11\n");
    options.by_nfe = "mmd";  // one protocol: no protocol column
    CHECK(render_store(path, options) == "run,sampler,100\n0,ddpm,0.25\n1,ddpm,0.5\n2,ddpm,0.75\n");
  }
  SECTION("--over summarizes each protocol's column apart") {
    ReportOptions options;
    options.format = ReportFormat::json;
    options.over = "seed";
    const auto json = nlohmann::json::parse(render_store(path, options));
    REQUIRE(json["rows"].size() == 1);
    CHECK(json["rows"][0]["fid[ddpm]{samples=1000}"]["n"] == 1);
    CHECK(json["rows"][0]["fid[ddpm]{samples=500}"]["n"] == 1);
    CHECK(json["rows"][0]["mmd[ddpm]"]["n"] == 3);
    CHECK(json["rows"][0]["mmd[ddpm]"]["mean"].get<double>() == Approx(0.5));
  }
  SECTION("the html page: the table's columns, a chart series per protocol") {
    ReportOptions options;
    options.format = ReportFormat::html;
    const auto html = render_store(path, options);
    CHECK_THAT(html, Contains(">fid[ddpm]{samples=500}<") && Contains(">mmd[ddpm]<"));
    const auto data = difflab::test::page_data(html);
    std::set<std::string> series;
    for (const auto& point : data["metrics"]) series.insert(point["sampler"].get<std::string>());
    CHECK(series == std::set<std::string>{"ddpm", "ddpm{samples=1000}", "ddpm{samples=500}",
                                          "ddpm{unrecorded}"});
  }
}

TEST_CASE("one protocol in every value, or none recorded: the columns stay as they were",
          "[report][protocol]") {
  const auto path = (difflab::test::temp_dir("report-protocol-one") / "runs.db").string();
  {
    RunStore store(path);
    const auto sweep = store.add_sweep("one", "", "");
    for (int i = 0; i < 2; ++i) {
      const auto run = add_done_run(store, sweep, i, R"({"seed":)" + std::to_string(i) + "}");
      const auto c = add_checkpoint_at(store, run, 1, 10);
      store.add_metric(metric_value(c, "ddpm", "fid", 10.0 + i, kThousand, 100));
      store.add_metric(metric_value(c, "ddpm", "mmd", 0.5, "{}", 100));
    }
  }
  const auto lines = lines_of(report(path, ReportFormat::table));
  CHECK(words_of(lines[0]) ==
        Words{"run", "seed", "status", "step", "epoch", "images", "fid[ddpm]", "mmd[ddpm]"});
}
