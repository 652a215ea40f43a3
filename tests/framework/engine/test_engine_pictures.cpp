#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <catch2/catch.hpp>

#include "difflab/plugin.hpp"
#include "engine/engine.hpp"
#include "io/image_io.hpp"
#include "io/npy.hpp"
#include "support.hpp"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

// Tiny synthetic pictures in [-1, 1]: a bright square on a dark ground at a random place.
class TestImages final : public Dataset {
 public:
  explicit TestImages(const Options& o)
      : channels_(o.integer("channels")), size_(o.integer("size")), count_(o.integer("count")) {}

  DataSplit load(Split split, std::uint64_t seed) const override {
    auto gen = split_generator(seed, split);
    auto x = torch::full({count_, channels_, size_, size_}, -1.0f);
    const auto corners = torch::randint(0, size_ - 1, {count_, 2}, gen, torch::kLong);
    for (std::int64_t i = 0; i < count_; ++i) {
      const auto r = corners[i][0].item<std::int64_t>(), c = corners[i][1].item<std::int64_t>();
      x[i].slice(1, r, r + 2).slice(2, c, c + 2).fill_(1.0f);
    }
    return {x, torch::Tensor()};
  }

 private:
  std::int64_t channels_, size_, count_;
};

void register_test_images() {
  static bool done = false;
  if (done) return;
  done = true;
  test::plugins().register_plugins([](Registrar& r) {
    r.add_dataset({"test_images", "1.0.0", "tiny synthetic pictures for the engine's picture test",
                   {OptionSpec::integer("channels", 1, "1 grey, 3 RGB"),
                    OptionSpec::integer("size", 6, "height and width (pixels)"),
                    OptionSpec::integer("count", 64, "pictures per split")}},
                  [](const Options& o) { return std::make_unique<TestImages>(o); });
  });
}

// 70 samples: the grid shows the first 64. The MLP flattens [N, C, 6, 6] to C * 36 features.
const char* kPictures = R"(name: pictures
seed: 3
device: cpu
dataset:  {plugin: test_images, channels: 1, size: 6, count: 64}
model:    {plugin: mlp, data_dim: 36, hidden: 32, layers: 1, time_embedding: 8}
schedule: {plugin: linear, timesteps: 50}
train:    {epochs: 2, batch_size: 32, checkpoint_every: 1}
evaluation:
  num_samples: 70
  samplers: [{plugin: ddpm}, {plugin: ddim, steps: 10}]
  metrics:  [{plugin: test_loss}]
)";

// The cell at (row, col) of a picture made by image_grid with padding 2 and 6x6 cells.
torch::Tensor cell(const torch::Tensor& picture, std::int64_t row, std::int64_t col) {
  return picture.slice(0, 2 + row * 8, 2 + row * 8 + 6).slice(1, 2 + col * 8, 2 + col * 8 + 6);
}

void check_pictures(const std::string& name, std::int64_t channels) {
  register_test_images();
  const auto dir = test::temp_dir("pictures-" + name);
  const auto file = dir / "pictures.yaml";
  std::ofstream(file) << kPictures;
  const auto grid = load_sweep(file.string(),
                               {"name=" + name, "dataset.channels=" + std::to_string(channels),
                                "model.data_dim=" + std::to_string(channels * 36)},
                               test::plugins());
  SweepOptions options;
  options.engine.out_dir = dir / "runs";
  RunStore store((dir / "s.sqlite").string());
  REQUIRE(run_sweep(grid, store, test::plugins(), options).done == 1);

  const auto run = store.runs(name).at(0);
  const auto checkpoints = store.checkpoints(run.id);
  REQUIRE(checkpoints.size() == 2);
  const std::vector<std::int64_t> colour =
      channels == 3 ? std::vector<std::int64_t>{3} : std::vector<std::int64_t>{};
  const auto shape = [&](std::int64_t h, std::int64_t w) {
    auto s = std::vector<std::int64_t>{h, w};
    s.insert(s.end(), colour.begin(), colour.end());
    return s;
  };
  for (const auto& c : checkpoints) {
    // kind/sampler -> path
    std::map<std::string, std::string> files;
    for (const auto& a : store.artifacts(c.id)) files[a.kind + "/" + a.sampler] = a.path;
    // .npy, grid, strip and the distribution view (PNG and JSON) for each of the two samplers
    CHECK(files.size() == 10);
    for (const std::string sampler : {"ddpm", "ddim(steps=10)"}) {
      INFO("epoch " << c.epoch << ", " << sampler);
      const auto label = sampler == "ddpm" ? std::string("ddpm") : std::string("ddim_steps-10");
      // The run's own evaluation folder, not the (shareable) checkpoint's.
      const auto folder = evaluation_dir(options.engine.out_dir, grid.runs.at(0)) / fmt::format("epoch-{:06d}", c.epoch);
      REQUIRE(files.count("samples_grid_png/" + sampler));
      REQUIRE(files.count("progression_png/" + sampler));
      const auto grid_path = files["samples_grid_png/" + sampler];
      const auto strip_path = files["progression_png/" + sampler];
      CHECK(grid_path == (folder / ("samples-" + label + ".png")).string());
      CHECK(strip_path == (folder / ("progression-" + label + ".png")).string());
      REQUIRE(fs::exists(grid_path));
      REQUIRE(fs::exists(strip_path));

      // The grid: 8 x 8 cells of 6 pixels with 2 of padding, exactly the first 64 .npy samples.
      const auto picture = read_png(grid_path);
      CHECK(picture.sizes() == torch::IntArrayRef(shape(8 * 8 + 2, 8 * 8 + 2)));
      const auto samples = read_npy(files["samples_npy/" + sampler]);
      REQUIRE(samples.sizes() == torch::IntArrayRef({70, channels, 6, 6}));
      CHECK(torch::equal(picture, image_grid(samples.slice(0, 0, 64), 8)));

      // The strip: x_T, 8 states between, the final sample: 10 cells in one row; its last cell
      // is the first sample of the grid and its first is noise, not that sample.
      const auto strip = read_png(strip_path);
      CHECK(strip.sizes() == torch::IntArrayRef(shape(6 + 4, 10 * 8 + 2)));
      CHECK(torch::equal(cell(strip, 0, 9), cell(picture, 0, 0)));
      CHECK_FALSE(torch::equal(cell(strip, 0, 0), cell(picture, 0, 0)));
    }
  }
  for (const auto& e : fs::recursive_directory_iterator(dir / "runs")) {
    CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
  }
}

}  // namespace

TEST_CASE("image samples get a PNG grid and a progression strip per checkpoint and sampler",
          "[engine][images]") {
  SECTION("grey") { check_pictures("pictures_grey", 1); }
  SECTION("RGB") { check_pictures("pictures_rgb", 3); }
}

TEST_CASE("2-D point samples get a scatter and a reverse-process GIF, no image grids", "[engine][images]") {
  const auto dir = test::temp_dir("pictures-points");
  const auto file = dir / "points.yaml";
  std::ofstream(file) << R"(name: points
seed: 1
device: cpu
dataset:  {plugin: moons, train_size: 128, test_size: 64}
model:    {plugin: mlp, hidden: 16, layers: 1, time_embedding: 8}
schedule: {plugin: linear, timesteps: 20}
train:    {epochs: 1, batch_size: 64}
evaluation:
  num_samples: 16
  samplers: [{plugin: ddim, steps: 5}]
  metrics:  [{plugin: test_loss}]
)";
  SweepOptions options;
  options.engine.out_dir = dir / "runs";
  RunStore store((dir / "s.sqlite").string());
  REQUIRE(run_sweep(load_sweep(file.string(), {}, test::plugins()), store, test::plugins(), options)
              .done == 1);
  const auto checkpoints = store.checkpoints(store.runs("points").at(0).id);
  REQUIRE(checkpoints.size() == 1);
  const auto artifacts = store.artifacts(checkpoints[0].id);
  std::vector<std::string> kinds;
  for (const auto& a : artifacts) {
    kinds.push_back(a.kind);
    CHECK(fs::is_regular_file(a.path));
  }
  CHECK(kinds == std::vector<std::string>{"samples_npy", "scatter_png", "reverse_gif"});
  for (const auto& e : fs::recursive_directory_iterator(dir / "runs")) {  // grids are for images
    const auto name = e.path().filename().string();
    CHECK((name.rfind("samples-", 0) != 0 || e.path().extension() == ".npy"));
    CHECK(name.rfind("progression-", 0) != 0);
  }
}
