// The HTML report: the table's rows and marks, the chart data, inlined bundles and pictures,
// the page without bundles; and the markdown table as a paper appendix takes it.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "difflab/errors.hpp"
#include "framework/report/html_page.hpp"
#include "io/gif_io.hpp"
#include "io/image_io.hpp"
#include "report/report.hpp"
#include "support.hpp"

using Catch::Matchers::Contains;
using difflab::CheckpointChoice;
using difflab::ReportFormat;
using difflab::ReportOptions;
using difflab::RunStore;
using difflab::test::count;
using difflab::test::page_data;
namespace fs = std::filesystem;

namespace {

const std::string kReason = "the training loss became NaN at epoch 3 <step 12> | lower train.lr";

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string decode_base64(const std::string& text) {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    buffer = buffer << 6 | static_cast<unsigned>(alphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return out;
}

// Two done 2-D runs with 3 checkpoints (losses per epoch; a scatter, a GIF and a missing file on
// their last checkpoint) and a failed run.
std::string make_store(const fs::path& dir) {
  const auto path = (dir / "runs.db").string();
  RunStore store(path);
  const auto sweep_id = store.add_sweep("gmm", "experiments/gmm.yaml", "");
  const char* axes[3] = {R"({"schedule.plugin":"linear"})", R"({"schedule.plugin":"cosine_beta"})",
                         R"({"schedule.plugin":"quadratic"})"};
  const auto png = (dir / "scatter.png").string();
  difflab::write_png(png, torch::arange(12, torch::kUInt8).view({3, 4}));
  difflab::GifAnimation gif;
  gif.palette = {{0, 0, 0}, {255, 255, 255}};
  gif.frames = torch::zeros({2, 3, 3}, torch::kUInt8);
  gif.delays = {5, 5};
  const auto gif_path = (dir / "reverse.gif").string();
  difflab::write_gif(gif_path, gif);
  for (int run = 0; run < 3; ++run) {
    difflab::RunRecord record;
    record.sweep_id = sweep_id;
    record.grid_index = run;
    record.config_json = "{}";
    record.config_hash = "hash" + std::to_string(run);
    record.axes_json = axes[run];
    const auto run_id = store.add_run(record);
    if (run == 2) {
      store.add_losses(run_id, {{10, 1, 2.0, ""}, {20, 2, 1.0, ""}});
      store.mark_failed(run_id, kReason);
      continue;
    }
    std::vector<difflab::LossRecord> losses;
    for (int e = 1; e <= 30; ++e) losses.push_back({10 * e, e, 1.0 / (e + run), ""});
    store.add_losses(run_id, losses);
    for (int k = 0; k < 3; ++k) {
      const auto c = store.add_checkpoint({0, run_id, 10 * (k + 1), 100 * (k + 1), "", 0});
      store.add_metric({c, "", "{}", "test_loss", "", 0.5 - 0.1 * k + 0.01 * run});
      store.add_metric({c, "ddpm", "{}", "mmd", "rbf", 0.1 * (3 - k) + 0.02 * run});
      store.add_metric({c, "ddim(steps=10)", "{}", "mmd", "rbf", 0.2 * (3 - k) - 0.03 * run});
      difflab::MetricRecord psnr{c, "ddpm", "{}", "psnr", "", 10.0 + k + run};
      psnr.better = "higher";  // as the psnr plugin declares it
      store.add_metric(psnr);
      if (k == 2) {
        store.add_artifact({c, "ddpm", "samples_npy", "samples.npy"});
        store.add_artifact({c, "ddpm", "scatter_png", png});
        store.add_artifact({c, "ddpm", "reverse_gif", gif_path});
        store.add_artifact({c, "ddim(steps=10)", "scatter_png", (dir / "gone.png").string()});
      }
    }
    store.mark_done(run_id, 1, 1);
  }
  return path;
}

std::string html_report(const std::string& path, const std::string& chart_dir,
                        CheckpointChoice choice = CheckpointChoice::final) {
  ReportOptions options;
  options.format = ReportFormat::html;
  options.checkpoint = choice;
  options.chart_dir = chart_dir;
  return difflab::test::render_store(path, options);
}

}  // namespace

TEST_CASE("the html report: one row per run, best values marked, failed runs with their reason",
          "[report][html]") {
  const auto dir = difflab::test::temp_dir("report-html");
  const auto path = make_store(dir);
  const auto html = html_report(path, (dir / "no-bundles").string());

  CHECK(count(html, "<tr class=\"run ") == 3);
  CHECK(count(html, "<tr class=\"run failed\"") == 1);
  // Columns: run, schedule.plugin, status, step, epoch, images, test_loss, mmd[ddpm], mmd[ddim],
  // psnr, reason
  CHECK_THAT(html, Contains(">test_loss<") && Contains(">mmd[ddim(steps=10)]<") &&
                       Contains(">psnr[ddpm]<") && Contains(">reason<"));
  // Lowest test_loss (run 0, 0.3), mmd[ddpm] (run 0, 0.1), mmd[ddim] (run 1, 0.17); highest psnr
  // (run 1, 13): four cells marked, with the full value to sort by.
  CHECK(count(html, "class=\"num best\"") == 4);
  CHECK_THAT(html, Contains("<td class=\"num best\" data-v=\"0.29999999999999999\">0.3</td>"));
  CHECK_THAT(html, Contains("<td class=\"num best\" data-v=\"13\">13</td>"));
  // The reason in full, escaped; the page says charts are unavailable and still has the table.
  CHECK_THAT(html, Contains("the training loss became NaN at epoch 3 &lt;step 12&gt; | lower train.lr"));
  CHECK_THAT(html, Contains("id=\"charts-unavailable\""));
  CHECK_FALSE(html.find("vegaEmbed(") == std::string::npos);  // the page script is there...
  CHECK(html.find("<script>!function") == std::string::npos);  // ...but no bundle

  // Chart data: every loss of the three runs, every metric value of every checkpoint.
  const auto data = page_data(html);
  CHECK(data["losses"].size() == 30 + 30 + 2);
  CHECK(data["losses"][0] == nlohmann::json({{"run", "#0 linear"}, {"step", 10}, {"epoch", 1}, {"loss", 1.0}}));
  REQUIRE(data["charts"].size() == 3);  // test_loss, mmd, psnr
  CHECK(data["charts"][1]["metric"] == "mmd");
  CHECK(data["charts"][1]["samplers"] == 2);
  CHECK(data["charts"][2]["higher"] == true);
  CHECK(data["metrics"].size() == 2 * 3 * 4);
  CHECK(data["run_order"] == nlohmann::json({"#0 linear", "#1 cosine_beta", "#2 quadratic"}));
  for (int i = 0; i < 3; ++i) CHECK_THAT(html, Contains("id=\"chart-metric-" + std::to_string(i) + "\""));
  CHECK_THAT(html, Contains("id=\"chart-loss\""));

  // Pictures: the scatter and the GIF inlined byte for byte, a missing file named, the failed
  // run's card with its reason and no pictures.
  std::smatch match;
  const std::regex png_uri("src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\"");
  REQUIRE(std::regex_search(html, match, png_uri));
  CHECK(decode_base64(match[1]) == read_text(dir / "scatter.png"));
  const std::regex gif_uri("src=\"data:image/gif;base64,([A-Za-z0-9+/=]+)\"");
  REQUIRE(std::regex_search(html, match, gif_uri));
  CHECK(decode_base64(match[1]) == read_text(dir / "reverse.gif"));
  CHECK(count(html, "data:image/png;base64,") == 2);
  CHECK(count(html, "data:image/gif;base64,") == 2);
  CHECK(count(html, "missing file " + (dir / "gone.png").string()) == 2);
  CHECK(count(html, "<div class=\"run-card\"") == 3);
  CHECK(count(html, "no pictures recorded") == 1);
}

TEST_CASE("the html report inlines the chart bundles it finds", "[report][html]") {
  const auto dir = difflab::test::temp_dir("report-html-bundles");
  const auto path = make_store(dir);
  const auto bundles = dir / "bundles";
  fs::create_directories(bundles);
  std::ofstream(bundles / "vega.min.js") << "var vegaMarker = '</script>';";
  std::ofstream(bundles / "vega-lite.min.js") << "var vegaLiteMarker = 1;";
  SECTION("all three") {
    std::ofstream(bundles / "vega-embed.min.js") << "var vegaEmbedMarker = 1;";
    const auto html = html_report(path, bundles.string());
    CHECK(html.find("charts-unavailable") == std::string::npos);
    CHECK_THAT(html, Contains("<script>var vegaMarker = '<\\/script>';</script>"));
    CHECK_THAT(html, Contains("var vegaLiteMarker = 1;") && Contains("var vegaEmbedMarker = 1;"));
    CHECK(difflab::find_chart_bundles(bundles.string()) == bundles.string());
  }
  SECTION("one missing: none inlined") {
    const auto html = html_report(path, bundles.string());
    CHECK_THAT(html, Contains("charts-unavailable"));
    CHECK(html.find("vegaMarker") == std::string::npos);
    CHECK(difflab::find_chart_bundles(bundles.string()).empty());
  }
}

TEST_CASE("the html report of --checkpoint all and of an empty store", "[report][html]") {
  const auto dir = difflab::test::temp_dir("report-html-all");
  const auto path = make_store(dir);
  const auto all = html_report(path, "", CheckpointChoice::all);
  CHECK(count(all, "<tr class=\"run ") == 3 + 3 + 1);
  const auto best = html_report(path, "", CheckpointChoice::best);
  CHECK_THAT(best, Contains("best checkpoint per run: lowest mmd[ddpm]"));

  const auto empty = (dir / "empty.db").string();
  { RunStore store(empty); }
  const auto html = html_report(empty, "");
  CHECK_THAT(html, Contains("no runs recorded in " + empty));
  CHECK(count(html, "<tr class=\"run ") == 0);
  CHECK(page_data(html)["losses"].empty());
}

TEST_CASE("runner report --format html writes the page, and a bad format names html", "[report][html][cli]") {
  const auto dir = difflab::test::temp_dir("report-html-cli");
  const auto path = make_store(dir);
  const auto out = dir / "report.html";
  std::string output;
  REQUIRE(difflab::test::run_command(difflab::test::runner_path() + " report --db " + path +
                                         " --format html --output " + out.string(),
                                     &output) == 0);
  const auto html = read_text(out);
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(count(html, "<tr class=\"run ") == 3);
  CHECK(difflab::test::run_command(difflab::test::runner_path() + " report --db " + path +
                                       " --format htm",
                                   &output) == 2);
  CHECK_THAT(output, Contains("did you mean 'html'"));
}

TEST_CASE("a big store's html report is quick", "[report][html]") {
  const auto path = (difflab::test::temp_dir("report-html-big") / "runs.db").string();
  difflab::test::BigStore shape;
  shape.samplers = {"ddpm"};
  shape.losses = 500;
  const auto kRuns = std::size_t(shape.runs), kEpochs = std::size_t(shape.losses);
  difflab::test::make_big_store(path, shape);
  const auto start = std::chrono::steady_clock::now();
  const auto html = html_report(path, "");
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  CHECK(count(html, "<tr class=\"run ") == kRuns);
  CHECK(page_data(html)["losses"].size() == kRuns * kEpochs);
  CHECK(elapsed.count() < 10.0);  // six queries: well under a second here
}

TEST_CASE("markdown is a table a paper appendix or a README takes as it is", "[report]") {
  const auto dir = difflab::test::temp_dir("report-markdown-appendix");
  const auto path = make_store(dir);
  RunStore store(path, RunStore::Access::read_only);
  ReportOptions options;
  options.format = ReportFormat::markdown;
  options.checkpoint = CheckpointChoice::best;
  const auto text = difflab::render_report(store, options);
  INFO(text);
  std::istringstream in(text);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 2 + 3 + 2);
  // Every table line has as many cells as the header: a | inside a value is escaped.
  const auto cells = [](const std::string& line) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < line.size(); ++i) n += line[i] == '|' && (i == 0 || line[i - 1] != '\\');
    return n - 1;
  };
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(lines[i].front() == '|');
    CHECK(lines[i].back() == '|');
    CHECK(cells(lines[i]) == cells(lines[0]));
  }
  CHECK(lines[0] == "| run | schedule.plugin | status | step | epoch | images | test_loss | "
                    "mmd[ddpm] | mmd[ddim(steps=10)] | psnr[ddpm] | reason |");
  CHECK(lines[1] == "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
  CHECK(lines[2] == "| 0 | linear | done | 300 | 30 | - | 0.3 | 0.1 | 0.2 | 12 | - |");
  CHECK(lines[4].find("&lt;") == std::string::npos);  // plain text, not HTML
  CHECK_THAT(lines[4], Contains("<step 12> \\| lower train.lr |"));
  CHECK(lines[5].empty());  // the rule that chose the checkpoints follows after a blank line
  CHECK(lines[6] == "best checkpoint per run: lowest mmd[ddpm]");
}
