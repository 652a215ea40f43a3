// Pictures of 2-D runs: the scatter's pixels, GIFs through giflib and back, and the engine
// writing both per checkpoint (the animation for the first sampler only).
#include <filesystem>
#include <fstream>
#include <map>

#include <catch2/catch.hpp>

#include "difflab/errors.hpp"
#include "engine/engine.hpp"
#include "io/gif_io.hpp"
#include "io/image_io.hpp"
#include "io/npy.hpp"
#include "engine/point_pictures.hpp"
#include "support.hpp"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

// Pixel (row, col) of a point in a window of `pixels` (as scatter_indices maps it).
std::pair<std::int64_t, std::int64_t> pixel_of(double x, double y, const PlotWindow& w,
                                               std::int64_t pixels) {
  const double scale = static_cast<double>(pixels - 1) / w.size;
  return {std::lround((w.y_min + w.size - y) * scale), std::lround((x - w.x_min) * scale)};
}

std::uint8_t pixel_at(const torch::Tensor& picture, std::pair<std::int64_t, std::int64_t> p) {
  return picture[p.first][p.second].item<std::uint8_t>();
}

const char* kPoints = R"(name: points
seed: 1
device: cpu
dataset:  {plugin: gmm2d, components: 4, radius: 3.0, std: 0.1, train_size: 256, test_size: 64}
model:    {plugin: mlp, hidden: 16, layers: 1, time_embedding: 8}
schedule: {plugin: linear, timesteps: 40}
train:    {epochs: 2, batch_size: 64, checkpoint_every: 1}
evaluation:
  num_samples: 100
  samplers: [{plugin: ddpm}, {plugin: ddim, steps: 10}]
  metrics:  [{plugin: test_loss}]
)";

}  // namespace

TEST_CASE("the plot window is the data's box, squared and centred, with a margin", "[pictures]") {
  const auto data = torch::tensor({{-1.0, 0.0}, {3.0, 1.0}, {1.0, 2.0}});
  const auto w = plot_window(data, 0.1);
  CHECK(w.size == Approx(4 * 1.2));  // the x extent 4 is the longer side
  CHECK(w.x_min == Approx(1 - 2.4));
  CHECK(w.y_min == Approx(1 - 2.4));
  const auto nan = torch::tensor({{std::nan(""), 0.0}, {0.0, 0.0}});
  CHECK(std::isfinite(plot_window(nan).size));  // a single finite point still gives a window
}

TEST_CASE("the scatter draws data grey, samples blue over them, axes and a border", "[pictures]") {
  const PlotWindow w{-4, -4, 8};
  constexpr std::int64_t kPixels = 81;  // 10 pixels per unit
  const auto data = torch::tensor({{2.0, 2.0}, {-2.0, 1.0}});
  const auto samples = torch::tensor({{2.0, 2.0}, {1.0, -3.0}, {100.0, 0.0}, {std::nan(""), 0.0}});
  const auto picture = scatter_indices(data, samples, w, kPixels);
  REQUIRE(picture.sizes() == torch::IntArrayRef({kPixels, kPixels}));
  CHECK(pixel_at(picture, pixel_of(-2, 1, w, kPixels)) == kData);
  CHECK(pixel_at(picture, pixel_of(2, 2, w, kPixels)) == kSample);  // samples cover the data
  CHECK(pixel_at(picture, pixel_of(1, -3, w, kPixels)) == kSample);
  CHECK(pixel_of(1, -3, w, kPixels) == std::make_pair<std::int64_t, std::int64_t>(70, 50));
  CHECK(pixel_at(picture, {40, 10}) == kAxis);  // y = 0
  CHECK(pixel_at(picture, {10, 40}) == kAxis);  // x = 0
  CHECK(pixel_at(picture, {0, 20}) == kFrame);
  CHECK(pixel_at(picture, {20, 0}) == kFrame);
  CHECK(pixel_at(picture, {20, 20}) == kBackground);
  // 9 sample pixels each for the two samples inside, 4 for the uncovered data point.
  CHECK((picture == static_cast<int>(kSample)).sum().item<std::int64_t>() == 18);
  CHECK((picture == static_cast<int>(kData)).sum().item<std::int64_t>() == 4);
  const auto rgb = palette_rgb(picture);
  REQUIRE(rgb.sizes() == torch::IntArrayRef({kPixels, kPixels, 3}));
  const auto p = pixel_of(1, -3, w, kPixels);
  CHECK(rgb[p.first][p.second][2].item<int>() == point_palette()[kSample][2]);
}

TEST_CASE("a GIF written with giflib reads back frame by frame", "[pictures]") {
  const auto dir = test::temp_dir("gif");
  GifAnimation gif;
  gif.palette = point_palette();
  gif.frames = torch::randint(0, 8, {5, 7, 9}, torch::kUInt8);
  gif.delays = {1, 2, 3, 4, 50};
  const auto path = (dir / "a.gif").string();
  write_gif(path, gif);
  CHECK_FALSE(fs::exists(path + ".tmp"));
  const auto back = read_gif(path);
  CHECK(torch::equal(back.frames, gif.frames));
  CHECK(back.delays == gif.delays);
  CHECK((back.palette == gif.palette));  // parenthesised: Catch cannot print the palette
  CHECK(back.loops == 0);

  GifAnimation bad = gif;
  bad.frames = torch::full({1, 2, 2}, 8, torch::kUInt8);
  CHECK_THROWS_WITH(write_gif(path, bad), Catch::Contains("past the 8-colour palette"));
  bad.palette.pop_back();
  CHECK_THROWS_WITH(write_gif(path, bad), Catch::Contains("2, 4, ..., 256 colours"));
  CHECK_THROWS_AS(read_gif((dir / "missing.gif").string()), InputError);
  std::ofstream(dir / "text.gif") << "not a gif";
  CHECK_THROWS_AS(read_gif((dir / "text.gif").string()), InputError);
}

TEST_CASE("2-D runs get a scatter per checkpoint and sampler and a GIF of the first sampler",
          "[engine][pictures]") {
  test::SingleThread one_thread;
  const auto dir = test::temp_dir("points");
  const auto file = dir / "points.yaml";
  std::ofstream(file) << kPoints;
  const auto grid = load_sweep(file.string(), {}, test::plugins());
  SweepOptions options;
  options.engine.out_dir = dir / "runs";
  RunStore store((dir / "s.sqlite").string());
  REQUIRE(run_sweep(grid, store, test::plugins(), options).done == 1);
  const auto run = store.runs("points").at(0);
  const auto checkpoints = store.checkpoints(run.id);
  REQUIRE(checkpoints.size() == 2);
  for (const auto& c : checkpoints) {
    INFO("epoch " << c.epoch);
    std::map<std::string, std::string> files;  // kind/sampler -> path
    for (const auto& a : store.artifacts(c.id)) files[a.kind + "/" + a.sampler] = a.path;
    CHECK(files.size() == 5);  // .npy and scatter for each sampler, one GIF
    // The run's own evaluation folder, not the (shareable) checkpoint's.
      const auto folder = evaluation_dir(options.engine.out_dir, grid.runs.at(0)) / fmt::format("epoch-{:06d}", c.epoch);
    REQUIRE(files["scatter_png/ddpm"] == (folder / "scatter-ddpm.png").string());
    REQUIRE(files["scatter_png/ddim(steps=10)"] == (folder / "scatter-ddim_steps-10.png").string());
    REQUIRE(files["reverse_gif/ddpm"] == (folder / "reverse-ddpm.gif").string());
    CHECK_FALSE(files.count("reverse_gif/ddim(steps=10)"));

    // The scatter: each sample inside the window is blue where scatter_indices puts it.
    const auto samples = read_npy(files["samples_npy/ddpm"]).to(torch::kDouble);
    const auto scatter = read_png(files["scatter_png/ddpm"]);
    REQUIRE(scatter.sizes() == torch::IntArrayRef({320, 320, 3}));
    const auto data = test::plugins()
                          .make_dataset("gmm2d", grid.runs[0].dataset.options)
                          ->load(Split::train, derive_seed(1, "data"))
                          .x;
    const auto window = plot_window(data);  // 256 rows: all of them are drawn
    const auto expected = palette_rgb(scatter_indices(data, samples, window, 320));
    CHECK(torch::equal(scatter, expected));
    std::int64_t blue = 0, inside = 0;
    for (std::int64_t i = 0; i < samples.size(0); ++i) {
      const double x = samples[i][0].item<double>(), y = samples[i][1].item<double>();
      const auto p = pixel_of(x, y, window, 320);
      if (p.first < 2 || p.second < 2 || p.first > 317 || p.second > 317) continue;
      ++inside;
      blue += scatter[p.first][p.second][2].item<int>() == point_palette()[kSample][2];
    }
    CHECK(inside > 50);
    CHECK(blue == inside);

    // The GIF: x_T, 28 states between and the final samples (ddpm's 40 steps give 30 frames),
    // 240 px; the last frame is the scatter of the final samples' first 500, x_T is not.
    const auto gif = read_gif(files["reverse_gif/ddpm"]);
    REQUIRE(gif.frames.sizes() == torch::IntArrayRef({30, 240, 240}));
    CHECK(gif.delays.front() == 8);
    CHECK(gif.delays.back() == 200);
    CHECK(torch::equal(gif.frames[29], scatter_indices(data, samples, window, 240)));
    const auto moved = (gif.frames[0] != gif.frames[29]).sum().item<std::int64_t>();
    CHECK(moved > 100);
    std::int64_t changes = 0;  // sample pixels move from frame to frame
    for (std::int64_t f = 1; f < 30; ++f) {
      changes += !torch::equal(gif.frames[f] == static_cast<int>(kSample), gif.frames[f - 1] == static_cast<int>(kSample));
    }
    CHECK(changes >= 25);
  }
}
