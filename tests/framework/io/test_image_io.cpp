#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <catch2/catch.hpp>

#include "difflab/errors.hpp"
#include "io/image_io.hpp"
#include "support.hpp"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

// A uint8 tensor of the given shape from a flat list of values.
torch::Tensor bytes(std::vector<int> values, std::vector<std::int64_t> shape) {
  return torch::tensor(std::vector<std::int64_t>(values.begin(), values.end()))
      .to(torch::kUInt8)
      .reshape(shape);
}

bool has_partial_files(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("write_png and read_png round-trip grey and RGB images pixel for pixel", "[images]") {
  const auto dir = test::temp_dir("png");
  // Grey 3 x 5: every value distinct, 0 and 255 included.
  const auto grey = bytes({0, 1, 2, 3, 4, 50, 60, 70, 80, 90, 128, 200, 253, 254, 255}, {3, 5});
  write_png((dir / "grey.png").string(), grey);
  const auto grey_back = read_png((dir / "grey.png").string());
  CHECK(grey_back.scalar_type() == torch::kUInt8);
  CHECK(grey_back.sizes() == torch::IntArrayRef({3, 5}));
  CHECK(torch::equal(grey_back, grey));

  // RGB 4 x 6 of all kinds of values, from a fixed generator.
  const auto rgb = torch::randint(0, 256, {4, 6, 3}, at::detail::createCPUGenerator(7),
                                  torch::TensorOptions().dtype(torch::kUInt8));
  write_png((dir / "rgb.png").string(), rgb);
  const auto rgb_back = read_png((dir / "rgb.png").string());
  CHECK(rgb_back.sizes() == torch::IntArrayRef({4, 6, 3}));
  CHECK(torch::equal(rgb_back, rgb));

  // [H, W, 1] is grey too; a non-contiguous view is written as it reads.
  write_png((dir / "grey1.png").string(), grey.t().unsqueeze(2));
  CHECK(torch::equal(read_png((dir / "grey1.png").string()), grey.t()));

  // The file is a real PNG (signature) and nothing temporary is left.
  std::ifstream in(dir / "rgb.png", std::ios::binary);
  char signature[8];
  in.read(signature, 8);
  CHECK(std::string(signature, 8) == "\x89PNG\r\n\x1a\n");
  CHECK_FALSE(has_partial_files(dir));
}

TEST_CASE("image_grid tiles samples row-major with padding of the stated colour", "[images]") {
  // Three 2x2 grey images; -1 -> 0, -0.5 -> 64 (63.75), 0.5 -> 191 (191.25), 1 -> 255.
  const auto samples = torch::tensor({-1.0f, -0.5f, 0.5f, 1.0f,    // a
                                      1.0f, 0.5f, -0.5f, -1.0f,    // b
                                      -1.0f, 1.0f, 1.0f, -1.0f})  // c
                           .reshape({3, 1, 2, 2});
  const auto grid = image_grid(samples, /*columns=*/2, /*padding=*/1, /*pad_value=*/100);
  // 2 rows x 2 columns of 2x2 cells, 1 pixel of padding between and around: 7 x 7.
  const int P = 100;
  const auto expected = bytes({P, P,   P,   P, P,   P,   P,   //
                               P, 0,   64,  P, 255, 191, P,   // a | b
                               P, 191, 255, P, 64,  0,   P,   //
                               P, P,   P,   P, P,   P,   P,   //
                               P, 0,   255, P, P,   P,   P,   // c | empty cell
                               P, 255, 0,   P, P,   P,   P,   //
                               P, P,   P,   P, P,   P,   P},
                              {7, 7});
  CHECK(grid.sizes() == torch::IntArrayRef({7, 7}));
  CHECK(torch::equal(grid, expected));

  // Fewer samples than columns: the grid is as wide as the samples; default padding 2, white.
  const auto row = image_grid(samples, 8);
  CHECK(row.sizes() == torch::IntArrayRef({2 + 2 + 2, 3 * (2 + 2) + 2}));
  CHECK(row[0][0].item<int>() == 255);
  CHECK(row[2][2].item<int>() == 0);
  CHECK(row[3][3].item<int>() == 255);

  // Colour: channels stay in R, G, B order in the last dimension.
  const auto colour = torch::tensor({-1.0f, 0.5f, 1.0f}).reshape({1, 3, 1, 1});
  const auto picture = image_grid(colour, 1, 0);
  CHECK(picture.sizes() == torch::IntArrayRef({1, 1, 3}));
  CHECK(torch::equal(picture, bytes({0, 191, 255}, {1, 1, 3})));
}

TEST_CASE("image_grid clamps values outside [-1, 1]", "[images]") {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto samples = torch::tensor({-3.0f, -1.5f, 1.5f, 40.0f, -inf, inf, nan, 0.9f}).reshape({1, 1, 2, 4});
  const auto grid = image_grid(samples, 1, 0);
  // 0.9 -> 242.25 -> 242; NaN reads as 0 -> 127.5 -> 128 (round half to even).
  CHECK(torch::equal(grid, bytes({0, 0, 255, 255, 0, 255, 128, 242}, {2, 4})));
}

TEST_CASE("image errors name the file and what is wrong", "[images]") {
  const auto dir = test::temp_dir("png-errors");
  const auto image = bytes({1, 2, 3, 4}, {2, 2});
  const auto missing = (dir / "no-such-folder" / "x.png").string();
  try {
    write_png(missing, image);
    FAIL("writing into a missing folder must throw");
  } catch (const RunError& e) {
    CHECK_THAT(e.what(), Catch::Contains("cannot write " + missing) &&
                             Catch::Contains("No such file or directory"));
  }
  CHECK_FALSE(fs::exists(missing));
  CHECK_FALSE(fs::exists(missing + ".tmp"));

  const auto path = (dir / "wrong.png").string();
  CHECK_THROWS_WITH(write_png(path, image.to(torch::kFloat32)),
                    Catch::Contains(path) && Catch::Contains("uint8"));
  CHECK_THROWS_WITH(write_png(path, torch::zeros({2, 2, 2}, torch::kUInt8)),
                    Catch::Contains(path) && Catch::Contains("[2, 2, 2]"));
  CHECK_FALSE(fs::exists(path));
  CHECK_THROWS_WITH(image_grid(torch::zeros({4, 2}), 2), Catch::Contains("[N, C, H, W]"));

  CHECK_THROWS_AS(read_png((dir / "absent.png").string()), InputError);
  std::ofstream(dir / "text.png") << "not a picture";
  CHECK_THROWS_WITH(read_png((dir / "text.png").string()),
                    Catch::Contains((dir / "text.png").string()) && Catch::Contains("PNG"));
  CHECK_FALSE(has_partial_files(dir));
}
