// The IDX image datasets (mnist, fashion_mnist): exact pixels of tiny written fixtures, the
// errors for broken files, seeded subsets, and the real Fashion-MNIST of Debian's package.
#include <chrono>
#include <fstream>
#include <iostream>

#include <catch2/catch.hpp>
#include <zlib.h>

#include "difflab/errors.hpp"
#include "support.hpp"

namespace {
using namespace difflab;
namespace fs = std::filesystem;

constexpr const char* kFashionMnistRoot = "/usr/share/datasets/fashion-mnist";

std::shared_ptr<Dataset> make_dataset(const std::string& name,
                                      std::map<std::string, OptionValue> given = {}) {
  auto& registry = test::plugins();
  const auto& entry = registry.get(PluginKind::dataset, name);
  return registry.make_dataset(name, resolve_options(entry.info.options, std::move(given), name));
}

std::shared_ptr<Dataset> make_mnist(const fs::path& root, std::int64_t image_size = 8,
                                    std::map<std::string, OptionValue> more = {}) {
  more["root"] = root.string();
  more["image_size"] = image_size;
  return make_dataset("mnist", std::move(more));
}

std::string big_endian(std::uint32_t v) {
  return {char(v >> 24), char(v >> 16 & 0xff), char(v >> 8 & 0xff), char(v & 0xff)};
}

// An IDX file: magic, big-endian dimensions, payload; gzipped with zlib when `gz`.
void write_file(const fs::path& path, const std::string& bytes, bool gz) {
  if (gz) {
    const gzFile file = gzopen(path.c_str(), "wb");
    REQUIRE(file != nullptr);
    REQUIRE(gzwrite(file, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
    REQUIRE(gzclose(file) == Z_OK);
  } else {
    std::ofstream(path, std::ios::binary) << bytes;
  }
}

std::string idx(std::uint32_t magic, const std::vector<std::uint32_t>& dims,
                const std::vector<std::uint8_t>& payload) {
  std::string bytes = big_endian(magic);
  for (const auto d : dims) bytes += big_endian(d);
  bytes.append(payload.begin(), payload.end());
  return bytes;
}

std::string images_idx(std::uint32_t n, std::uint32_t rows, std::uint32_t cols,
                       const std::vector<std::uint8_t>& pixels) {
  return idx(0x803, {n, rows, cols}, pixels);
}

std::string labels_idx(const std::vector<std::uint8_t>& labels) {
  return idx(0x801, {std::uint32_t(labels.size())}, labels);
}

// Pixel j of image i of a 4x4 fixture: spans 0..255 with both ends present.
std::uint8_t fixture_pixel(int i, int j) {
  return std::uint8_t(i == 0 ? j * 17 : 255 - 17 * j - i);
}

// train: 3 images 4x4 labelled 7, 0, 9; test: 2 images labelled 3, 3.
fs::path write_fixture(const std::string& name, bool gz) {
  const auto dir = test::temp_dir(name);
  const auto suffix = gz ? ".gz" : "";
  for (const auto& [prefix, n, labels] :
       {std::tuple<std::string, int, std::vector<std::uint8_t>>{"train", 3, {7, 0, 9}},
        {"t10k", 2, {3, 3}}}) {
    std::vector<std::uint8_t> pixels;
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < 16; ++j) pixels.push_back(fixture_pixel(i, j));
    }
    write_file(dir / (prefix + "-images-idx3-ubyte" + suffix), images_idx(n, 4, 4, pixels), gz);
    write_file(dir / (prefix + "-labels-idx1-ubyte" + suffix), labels_idx(labels), gz);
  }
  return dir;
}

// Each broken file as the only change to a good fixture; load() or construction must name it.
std::string load_error(const fs::path& root, Split split = Split::train) {
  try {
    make_mnist(root)->load(split, 0);
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("mnist reads IDX files, plain or gzipped, padded with -1 and scaled to [-1, 1]",
          "[datasets]") {
  for (const bool gz : {false, true}) {
    INFO("gzipped = " << gz);
    const auto root = write_fixture("idx", gz);
    const auto dataset = make_mnist(root, 8);
    REQUIRE(dataset->num_classes() == 10);
    const auto train = dataset->load(Split::train, 0);
    REQUIRE(train.x.scalar_type() == torch::kFloat32);
    REQUIRE(train.x.sizes() == torch::IntArrayRef({3, 1, 8, 8}));
    REQUIRE(train.labels.scalar_type() == torch::kLong);
    REQUIRE(torch::equal(train.labels, torch::tensor({7, 0, 9}, torch::kLong)));
    // The 4x4 image sits in rows and columns 2..5; the border of 2 is -1.
    const auto inner = train.x.select(1, 0).narrow(1, 2, 4).narrow(2, 2, 4);
    auto border = train.x.clone();
    border.select(1, 0).narrow(1, 2, 4).narrow(2, 2, 4).fill_(-1.0f);
    REQUIRE(torch::equal(border, torch::full({3, 1, 8, 8}, -1.0f)));
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 16; ++j) {
        CHECK(inner[i][j / 4][j % 4].item<float>() ==
              Approx(fixture_pixel(i, j) / 127.5 - 1.0).margin(1e-6));
      }
    }
    CHECK(inner[0][0][0].item<float>() == -1.0f);  // pixel 0
    CHECK(inner[0][3][3].item<float>() == 1.0f);   // pixel 255
    CHECK(inner[1][0][0].item<float>() == Approx(254 / 127.5 - 1.0).margin(1e-7));

    const auto test = dataset->load(Split::test, 0);
    REQUIRE(test.x.sizes() == torch::IntArrayRef({2, 1, 8, 8}));
    REQUIRE(torch::equal(test.labels, torch::tensor({3, 3}, torch::kLong)));
    REQUIRE(torch::equal(test.x, train.x.slice(0, 0, 2)));

    // image_size 4: no padding; an odd margin puts the extra pixel bottom right.
    const auto unpadded = make_mnist(root, 4)->load(Split::train, 0).x;
    REQUIRE(torch::equal(unpadded, inner.unsqueeze(1)));
    const auto odd = make_mnist(root, 7)->load(Split::train, 0).x;
    REQUIRE(torch::equal(odd.select(1, 0).narrow(1, 1, 4).narrow(2, 1, 4), inner));
    REQUIRE(odd.select(1, 0).select(1, 6).eq(-1.0f).all().item<bool>());
    REQUIRE(odd.select(1, 0).select(2, 6).eq(-1.0f).all().item<bool>());
  }
}

TEST_CASE("mnist subsets are a seeded random choice in file order", "[datasets]") {
  // 20 train images, image i filled with the value 10 i; 12 test images.
  const auto root = test::temp_dir("idx-subset");
  for (const auto& [prefix, n] : {std::pair<std::string, int>{"train", 20}, {"t10k", 12}}) {
    std::vector<std::uint8_t> pixels, labels;
    for (int i = 0; i < n; ++i) {
      pixels.insert(pixels.end(), 4, std::uint8_t(10 * i));
      labels.push_back(std::uint8_t(i % 10));
    }
    write_file(root / (prefix + "-images-idx3-ubyte"), images_idx(n, 2, 2, pixels), false);
    write_file(root / (prefix + "-labels-idx1-ubyte"), labels_idx(labels), false);
  }
  const auto dataset =
      make_mnist(root, 2, {{"train_size", std::int64_t{5}}, {"test_size", std::int64_t{0}}});
  const auto chosen = [&](std::uint64_t seed) {
    const auto split = dataset->load(Split::train, seed);
    REQUIRE(split.x.sizes() == torch::IntArrayRef({5, 1, 2, 2}));
    // Pixel (x + 1) * 127.5 = 10 i gives back the image's index i in the file.
    const auto index =
        ((split.x.select(1, 0).select(1, 0).select(1, 0) + 1.0) * 12.75).round().to(torch::kLong);
    REQUIRE(torch::equal(split.labels, index.remainder(10)));  // labels follow their images
    return index;
  };
  const auto a = chosen(3);
  CAPTURE(a);
  REQUIRE(torch::equal(a, chosen(3)));
  REQUIRE_FALSE(torch::equal(a, chosen(4)));
  REQUIRE(torch::equal(a, std::get<0>(a.sort())));  // file order
  REQUIRE(std::get<0>(torch::_unique(a)).numel() == 5);
  REQUIRE(dataset->load(Split::test, 3).x.size(0) == 12);  // test_size 0: all
  CHECK_THROWS_WITH(make_mnist(root, 2, {{"train_size", std::int64_t{21}}})->load(Split::train, 0),
                    Catch::Contains("train_size 21 is more than the 20 images of") &&
                        Catch::Contains("train-images-idx3-ubyte"));
}

TEST_CASE("broken IDX files are refused with an InputError naming the file", "[datasets]") {
  const auto images_of = [](int n) {
    return images_idx(n, 4, 4, std::vector<std::uint8_t>(16 * n, 9));
  };
  const auto fixture_with = [&](const std::string& name, const std::string& file,
                                const std::string& bytes, bool gz = false) {
    const auto root = write_fixture(name, false);
    if (gz) fs::remove(root / file);
    write_file(root / (gz ? file + ".gz" : file), bytes, gz);
    return root;
  };

  SECTION("missing") {
    const auto root = write_fixture("idx-missing", false);
    fs::remove(root / "t10k-labels-idx1-ubyte");
    CHECK_THROWS_AS(make_mnist(root), InputError);
    CHECK_THROWS_WITH(make_mnist(root),
                      Catch::Contains("t10k-labels-idx1-ubyte[.gz]: no such file") &&
                          Catch::Contains(root.string()));
    CHECK_THROWS_WITH(make_mnist(root / "nowhere"), Catch::Contains("is not a folder"));
    const auto& entry = test::plugins().get(PluginKind::dataset, "mnist");
    CHECK_THROWS_WITH(resolve_options(entry.info.options, {}, "dataset 'mnist'"),
                      Catch::Contains("'root' is required"));
  }
  SECTION("pixels truncated") {
    auto bytes = images_of(3);
    bytes.resize(bytes.size() - 5);
    const auto root = fixture_with("idx-short", "train-images-idx3-ubyte", bytes);
    CHECK_THAT(load_error(root), Catch::Contains("train-images-idx3-ubyte: truncated") &&
                                     Catch::Contains("3 images of 4x4 pixels (48 bytes") &&
                                     Catch::Contains("only 43 follow"));
  }
  SECTION("gzip stream truncated") {
    const auto root = write_fixture("idx-short-gz", true);
    const auto file = root / "train-images-idx3-ubyte.gz";
    std::ifstream in(file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    std::ofstream(file, std::ios::binary) << bytes.substr(0, bytes.size() - 20);
    CHECK_THAT(load_error(root), Catch::Contains("train-images-idx3-ubyte.gz: truncated"));
  }
  SECTION("header truncated") {
    const auto root =
        fixture_with("idx-header", "t10k-labels-idx1-ubyte", std::string("\0\0\x08", 3));
    CHECK_THAT(load_error(root, Split::test),
               Catch::Contains("t10k-labels-idx1-ubyte: truncated header: 3 bytes"));
  }
  SECTION("bad magic number") {
    // A label file where the images should be.
    const auto root =
        fixture_with("idx-magic", "train-images-idx3-ubyte", labels_idx({1, 2, 3}), true);
    CHECK_THAT(load_error(root), Catch::Contains("train-images-idx3-ubyte.gz: bad magic number "
                                                 "0x00000801, expected 0x00000803"));
  }
  SECTION("more bytes than the header declares") {
    auto bytes = images_of(3) + "xy";
    const auto root = fixture_with("idx-long", "train-images-idx3-ubyte", bytes);
    CHECK_THAT(load_error(root),
               Catch::Contains("train-images-idx3-ubyte: longer than its header"));
  }
  SECTION("label count differs from image count") {
    const auto root = fixture_with("idx-count", "train-labels-idx1-ubyte", labels_idx({1, 2}));
    CHECK_THAT(load_error(root), Catch::Contains("train-labels-idx1-ubyte: holds 2 labels but "
                                                 "train-images-idx3-ubyte holds 3 images"));
  }
  SECTION("label outside 0..9") {
    const auto root = fixture_with("idx-label", "train-labels-idx1-ubyte", labels_idx({1, 12, 3}));
    CHECK_THAT(load_error(root),
               Catch::Contains("train-labels-idx1-ubyte: label 12 is outside 0..9"));
  }
  SECTION("images larger than image_size") {
    const auto root = write_fixture("idx-size", false);
    CHECK_THROWS_WITH(make_mnist(root, 3)->load(Split::train, 0),
                      Catch::Contains("image_size 3 is smaller than the 4x4 images of") &&
                          Catch::Contains("train-images-idx3-ubyte"));
  }
}

TEST_CASE("fashion_mnist loads Debian's Fashion-MNIST", "[datasets]") {
  INFO("needs Debian's dataset-fashion-mnist in " << kFashionMnistRoot
                                                  << " (scripts/install-deps.sh)");
  REQUIRE(fs::is_directory(kFashionMnistRoot));
  const auto dataset = make_dataset("fashion_mnist");
  REQUIRE(dataset->num_classes() == 10);
  const auto start = std::chrono::steady_clock::now();
  const auto train = dataset->load(Split::train, 0);
  const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
  std::cout << "fashion_mnist: 60000 train images loaded in " << seconds.count() << " s\n";
  REQUIRE(train.x.sizes() == torch::IntArrayRef({60000, 1, 32, 32}));
  REQUIRE(train.x.scalar_type() == torch::kFloat32);
  CHECK(train.x.min().item<float>() == -1.0f);
  CHECK(train.x.max().item<float>() == 1.0f);
  // The 2-pixel border is padding.
  CHECK(train.x.narrow(2, 0, 2).eq(-1.0f).all().item<bool>());
  CHECK(train.x.narrow(3, 30, 2).eq(-1.0f).all().item<bool>());
  REQUIRE(torch::equal(train.labels.bincount(), torch::full({10}, 6000, torch::kLong)));

  const auto test = dataset->load(Split::test, 0);
  REQUIRE(test.x.sizes() == torch::IntArrayRef({10000, 1, 32, 32}));
  REQUIRE(torch::equal(test.labels.bincount(), torch::full({10}, 1000, torch::kLong)));

  // A subset of 1000 is the same for the same seed, another for another seed, from the full set.
  const auto subset = make_dataset(
      "fashion_mnist", {{"train_size", std::int64_t{1000}}, {"test_size", std::int64_t{100}}});
  const auto a = subset->load(Split::train, 5);
  REQUIRE(a.x.sizes() == torch::IntArrayRef({1000, 1, 32, 32}));
  REQUIRE(torch::equal(a.x, subset->load(Split::train, 5).x));
  REQUIRE(torch::equal(a.labels, subset->load(Split::train, 5).labels));
  REQUIRE_FALSE(torch::equal(a.x, subset->load(Split::train, 6).x));
  REQUIRE(subset->load(Split::test, 5).x.size(0) == 100);
  CHECK(a.labels.bincount({}, 10).min().item<std::int64_t>() > 60);  // ~100 per class
}
