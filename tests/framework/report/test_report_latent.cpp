// Autoencoder and latent diffusion runs in reports: the autoencoder and latent_scale columns in
// every format (and their absence elsewhere), and the HTML page's distribution view: its data,
// the umap-js bundle it inlines, its pictures.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "framework/report/html_page.hpp"
#include "framework/report/text_lines.hpp"
#include "io/image_io.hpp"
#include "report/report.hpp"
#include "support.hpp"

using Catch::Matchers::Contains;
using difflab::CheckpointChoice;
using difflab::ReportFormat;
using difflab::ReportOptions;
using difflab::RunStore;
using difflab::test::count;
using difflab::test::lines_of;
using difflab::test::page_data;
using difflab::test::words_of;
namespace fs = std::filesystem;

namespace {

const std::string kAutoencoderHash = "0123456789abcdef";
const double kLatentScale = 0.123456;

// The distribution views of run 1's final checkpoint: a NaN row (null in JSON) in each, which
// the page leaves out; the real rows' labels follow them.
const char* const kDdpmView =
    R"({"method": "pca", "components": 4, "real": [[0.123456, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]],
        "generated": [[1, 2, 3, 4], [null, 1, 1, 1]], "real_labels": [3, 1, 4]})";
const char* const kDdimView =
    R"({"method": "pca", "components": 4, "real": [[1, 1, 1, 1], [null, 0, 0, 0], [2, 2, 2, 2]],
        "generated": [[0.5, 0.5, 0.5, 0.5]], "real_labels": [7, 8, 9]})";
const char* const kEarlierView =
    R"({"method": "pca", "components": 1, "real": [[9]], "generated": [[9]]})";

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

std::int64_t add_run(RunStore& store, std::int64_t sweep, int index, const std::string& config,
                     const std::string& train_hash) {
  difflab::RunRecord run;
  run.sweep_id = sweep;
  run.grid_index = index;
  run.config_json = config;
  run.config_hash = "config" + std::to_string(sweep) + "-" + std::to_string(index);
  run.train_hash = train_hash;
  run.axes_json = "{}";
  return store.add_run(run);
}

// Sweep "latent": run 0 trains a VAE (psnr and fid on its reconstructions, checkpoint scope, and
// its pictures), run 1 diffuses its latents (latent_scale kLatentScale), run 2 is a plain image
// run. Runs 1 and 2 have fid per sampler and distribution views: run 1 per sampler at epochs 1
// and 2, run 2 one whose file is missing. Sweep "plain": one plain run, with no views.
std::string make_store(const fs::path& dir) {
  const auto path = (dir / "runs.db").string();
  RunStore store(path);
  const auto sweep = store.add_sweep("latent", "latent.yaml", "");
  const auto png = (dir / "picture.png").string();
  difflab::write_png(png, torch::arange(12, torch::kUInt8).view({3, 4}));

  const auto autoencoder = add_run(
      store, sweep, 0,
      R"({"task":"autoencoder","seed":0,"autoencoder":{"plugin":"vae","base_channels":8}})",
      kAutoencoderHash);
  for (int k = 1; k <= 2; ++k) {
    const auto c = store.add_checkpoint({0, autoencoder, k, 10 * k, "", 0});
    difflab::MetricRecord psnr{c, "", "{}", "psnr", "", 20.0 + k};
    psnr.better = "higher";
    store.add_metric(psnr);
    store.add_metric({c, "", "{}", "fid", "", 30.0 - k});
    if (k == 2) {
      store.add_artifact({c, "", "reconstructions_png", png});
      store.add_artifact({c, "", "latent_scatter_png", png});
    }
  }
  store.mark_done(autoencoder, 1, 1);

  const auto latent = add_run(store, sweep, 1,
                              R"({"seed":0,"autoencoder":{"network":{"plugin":"vae"},"train_hash":")" +
                                  kAutoencoderHash + R"("},"model":{"plugin":"mlp"}})",
                              "latent-hash");
  store.set_latent_scale(latent, kLatentScale);
  for (int k = 1; k <= 2; ++k) {
    const auto c = store.add_checkpoint({0, latent, k, 10 * k, "", 0});
    for (const std::string sampler : {"ddpm", "ddim(steps=10)"}) {
      store.add_metric({c, sampler, "{}", "fid", "", 50.0 - k});
      const auto json = dir / ("distribution-" + std::to_string(k) + "-" + sampler + ".json");
      write_text(json, k == 1 ? kEarlierView : sampler == "ddpm" ? kDdpmView : kDdimView);
      store.add_artifact({c, sampler, "distribution_json", json.string()});
      if (k == 2) store.add_artifact({c, sampler, "distribution_png", png});
    }
  }
  store.mark_done(latent, 1, 1);

  const auto plain = add_run(store, sweep, 2, R"({"seed":0,"model":{"plugin":"unet"}})", "plain");
  const auto c = store.add_checkpoint({0, plain, 1, 10, "", 0});
  store.add_metric({c, "ddpm", "{}", "fid", "", 60.0});
  store.add_artifact({c, "ddpm", "distribution_json", (dir / "gone.json").string()});
  store.mark_done(plain, 1, 1);

  const auto other = store.add_sweep("plain", "plain.yaml", "");
  const auto alone = add_run(store, other, 0, R"({"seed":0,"model":{"plugin":"mlp"}})", "alone");
  store.add_metric({store.add_checkpoint({0, alone, 1, 10, "", 0}), "ddpm", "{}", "fid", "", 70.0});
  store.mark_done(alone, 1, 1);
  return path;
}

std::string report(const std::string& path, ReportFormat format, const std::string& sweep,
                   const std::string& chart_dir = "") {
  ReportOptions options;
  options.sweep = sweep;
  options.format = format;
  options.chart_dir = chart_dir;
  return difflab::test::render_store(path, options);
}

}  // namespace

TEST_CASE("the autoencoder column names the autoencoder run each latent run used",
          "[report][autoencoder]") {
  const auto dir = difflab::test::temp_dir("report-latent");
  const auto path = make_store(dir);

  SECTION("table") {
    const auto text = report(path, ReportFormat::table, "latent");
    INFO(text);
    const auto lines = lines_of(text);
    REQUIRE(lines.size() == 2 + 3);
    CHECK(words_of(lines[0]) ==
          std::vector<std::string>{"run", "autoencoder", "latent_scale", "status", "step", "epoch",
                                   "images", "psnr", "fid", "fid[ddpm]", "fid[ddim(steps=10)]"});
    CHECK(words_of(lines[2]) == std::vector<std::string>{"0", "(autoencoder)", "-", "done", "20",
                                                         "2", "-", "22", "28", "-", "-"});
    // "run 0": the autoencoder run of the sweep whose train_hash the config names; the scale
    // to 4 significant digits, as metric values.
    CHECK(words_of(lines[3]) == std::vector<std::string>{"1", "run", "0", "0.1235", "done", "20",
                                                         "2", "-", "-", "-", "48", "48"});
    CHECK(words_of(lines[4]) ==
          std::vector<std::string>{"2", "-", "-", "done", "10", "1", "-", "-", "-", "60", "-"});
  }
  SECTION("markdown: the scale right-aligned as a number") {
    const auto lines = lines_of(report(path, ReportFormat::markdown, "latent"));
    CHECK(lines[0].rfind("| run | autoencoder | latent_scale | status | step | epoch | images |",
                         0) == 0);
    CHECK(lines[1].rfind("| ---: | --- | ---: | --- | ---: | ---: | ---: |", 0) == 0);
    CHECK(lines[3].rfind("| 1 | run 0 | 0.1235 | done | 20 | 2 | - |", 0) == 0);
  }
  SECTION("csv and json: the scale in full, nothing for other runs") {
    const auto csv = lines_of(report(path, ReportFormat::csv, "latent"));
    REQUIRE(csv.size() == 1 + 3);
    CHECK(csv[0].rfind("run,autoencoder,latent_scale,status,step,epoch,images,", 0) == 0);
    CHECK(csv[1].rfind("0,(autoencoder),,done,20,2,,", 0) == 0);
    CHECK(csv[2].rfind("1,run 0,", 0) == 0);
    CHECK(std::strtod(csv[2].substr(8).c_str(), nullptr) == kLatentScale);
    CHECK(csv[3].rfind("2,,,done,10,1,,", 0) == 0);
    const auto rows = nlohmann::json::parse(report(path, ReportFormat::json, "latent"));
    CHECK(rows[0]["autoencoder"] == "(autoencoder)");
    CHECK(rows[0]["latent_scale"].is_null());
    CHECK(rows[1]["autoencoder"] == "run 0");
    CHECK(rows[1]["latent_scale"].get<double>() == kLatentScale);
    CHECK(rows[2]["autoencoder"].is_null());
  }
  SECTION("a sweep with neither has no such columns") {
    CHECK(words_of(lines_of(report(path, ReportFormat::table, "plain"))[0]) ==
          std::vector<std::string>{"run", "status", "step", "epoch", "images", "fid[ddpm]"});
  }
  SECTION("an autoencoder is looked for in the latent run's own sweep") {
    {
      RunStore store(path);
      const auto sweep = store.add_sweep("elsewhere", "", "");
      add_run(store, sweep, 0,
              R"({"autoencoder":{"network":{"plugin":"vae"},"train_hash":")" + kAutoencoderHash + "\"}}",
              "x");
    }
    const auto rows = nlohmann::json::parse(report(path, ReportFormat::json, "elsewhere"));
    CHECK(rows[0]["autoencoder"] == "unknown (" + kAutoencoderHash + ")");
    CHECK_FALSE(rows[0].contains("latent_scale"));  // not recorded for it
  }
}

TEST_CASE("the html report's distribution view: the final checkpoint's points per sampler, "
          "umap-js inlined, the pictures captioned",
          "[report][html][autoencoder]") {
  const auto dir = difflab::test::temp_dir("report-latent-html");
  const auto path = make_store(dir);
  const auto bundles = dir / "bundles";
  fs::create_directories(bundles);
  write_text(bundles / "vega.min.js", "var vegaMarker = 1;");
  write_text(bundles / "vega-lite.min.js", "var vegaLiteMarker = 1;");
  write_text(bundles / "vega-embed.min.js", "var vegaEmbedMarker = 1;");
  write_text(bundles / "umap-js.min.js", "var umapMarker = '</script>';");
  const auto html = report(path, ReportFormat::html, "latent", bundles.string());

  // The table's autoencoder column, as the text formats have it.
  CHECK_THAT(html, Contains(">autoencoder<") && Contains(">latent_scale<"));
  CHECK_THAT(html, Contains("data-v=\"run 0\">run 0</td>"));

  // Run 1's two views at its final checkpoint (epoch 2, not epoch 1's), to 4 significant
  // digits, without their NaN rows; run 2's file is missing, and named.
  const auto views = page_data(html)["distributions"];
  REQUIRE(views.size() == 2);
  CHECK(views[0]["run"] == "#1");
  CHECK(views[0]["sampler"] == "ddpm");
  CHECK(views[0]["epoch"] == 2);
  CHECK(views[0]["components"] == 4);
  const auto json = [](const char* text) { return nlohmann::json::parse(text); };
  CHECK(views[0]["real"] == json("[[0.1235, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]"));
  CHECK(views[0]["generated"] == json("[[1, 2, 3, 4]]"));
  CHECK(views[0]["labels"] == json("[3, 1, 4]"));
  CHECK(views[0]["dropped"] == 1);
  CHECK(views[1]["sampler"] == "ddim(steps=10)");
  CHECK(views[1]["real"] == json("[[1, 1, 1, 1], [2, 2, 2, 2]]"));
  CHECK(views[1]["labels"] == json("[7, 9]"));  // the left-out row's label left out with it
  CHECK_THAT(html, Contains("missing or unreadable file " + (dir / "gone.json").string()));

  // The section: a choice per view, the element the page draws into, and the bundle inlined.
  CHECK_THAT(html, Contains("<h2>Distribution view</h2>"));
  CHECK(count(html, "<option value=") == 2);
  CHECK_THAT(html, Contains("<option value=\"1\">#1: ddim(steps=10) (epoch 2)</option>"));
  CHECK_THAT(html, Contains("id=\"umap-view\""));
  CHECK_THAT(html, Contains("<script>var umapMarker = '<\\/script>';</script>"));
  CHECK(html.find("umap-unavailable") == std::string::npos);

  // Pictures: the autoencoder's reconstructions and latent means, run 1's PCA pictures.
  CHECK(count(html, "data:image/png;base64,") == 4);
  CHECK_THAT(html, Contains("<figcaption>rows of test images, each followed by their "
                            "reconstructions</figcaption>"));
  CHECK_THAT(html, Contains("<figcaption>latent means of test images, coloured by class</figcaption>"));
  CHECK(count(html, "samples (blue) over the test images (grey), first two principal components") ==
        2 * 2);  // alt text and caption, per sampler

  SECTION("without umap-js the section says UMAP is unavailable") {
    fs::remove(bundles / "umap-js.min.js");
    const auto without = report(path, ReportFormat::html, "latent", bundles.string());
    CHECK_THAT(without, Contains("id=\"umap-unavailable\"") && Contains("id=\"umap-view\""));
    CHECK_THAT(without, Contains("var vegaMarker = 1;"));  // the charts still work
    CHECK(page_data(without)["distributions"].size() == 2);
  }
  SECTION("without chart bundles neither is inlined") {
    const auto without = report(path, ReportFormat::html, "latent", (dir / "none").string());
    CHECK_THAT(without, Contains("id=\"charts-unavailable\"") && Contains("id=\"umap-unavailable\""));
    CHECK(without.find("umapMarker") == std::string::npos);
  }
  SECTION("a page without distribution views has no such section, nor the bundle") {
    const auto plain = report(path, ReportFormat::html, "plain", bundles.string());
    CHECK(plain.find("Distribution view") == std::string::npos);
    CHECK(plain.find("umapMarker") == std::string::npos);
    CHECK(plain.find(">autoencoder<") == std::string::npos);
    CHECK(page_data(plain)["distributions"].empty());
  }
}
