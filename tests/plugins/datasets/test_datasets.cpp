// The synthetic dataset plugins: shapes, seeding, and the distribution each promises.
#include <catch2/catch.hpp>

#include <cmath>

#include "difflab/errors.hpp"
#include "support.hpp"

namespace {
using namespace difflab;

std::shared_ptr<Dataset> make_dataset(const std::string& name,
                                      std::map<std::string, OptionValue> given = {}) {
  auto& registry = test::plugins();
  const auto& entry = registry.get(PluginKind::dataset, name);
  return registry.make_dataset(name, resolve_options(entry.info.options, std::move(given), name));
}

void check_split(const DataSplit& split, std::int64_t n, bool has_labels) {
  REQUIRE(split.x.device().is_cpu());
  REQUIRE(split.x.scalar_type() == torch::kFloat32);
  REQUIRE(split.x.sizes() == torch::IntArrayRef({n, 2}));
  REQUIRE(split.labels.defined() == has_labels);
  if (has_labels) {
    REQUIRE(split.labels.scalar_type() == torch::kLong);
    REQUIRE(split.labels.sizes() == torch::IntArrayRef({n}));
  }
}

// Same seed: bit-identical; other seed or other split: different points.
void check_seeding(const Dataset& dataset) {
  const auto a = dataset.load(Split::train, 7);
  const auto b = dataset.load(Split::train, 7);
  REQUIRE(torch::equal(a.x, b.x));
  if (a.labels.defined()) REQUIRE(torch::equal(a.labels, b.labels));
  REQUIRE_FALSE(torch::equal(a.x, dataset.load(Split::train, 8).x));
  const auto test = dataset.load(Split::test, 7);
  const auto n = std::min(a.x.size(0), test.x.size(0));
  REQUIRE_FALSE(torch::allclose(a.x.slice(0, 0, n), test.x.slice(0, 0, n)));
}

}  // namespace

TEST_CASE("gmm2d draws the configured mixture", "[datasets]") {
  const auto dataset = make_dataset("gmm2d", {{"components", std::int64_t{8}},
                                              {"radius", 5.0},
                                              {"std", 0.2},
                                              {"train_size", std::int64_t{12800}},
                                              {"test_size", std::int64_t{500}}});
  REQUIRE(dataset->num_classes() == 8);
  const auto train = dataset->load(Split::train, 0);
  check_split(train, 12800, true);
  check_split(dataset->load(Split::test, 0), 500, true);
  check_seeding(*dataset);

  REQUIRE(train.labels.min().item<std::int64_t>() == 0);
  REQUIRE(train.labels.max().item<std::int64_t>() == 7);
  const auto x = train.x.to(torch::kFloat64);
  auto residual = torch::zeros_like(x);
  for (std::int64_t k = 0; k < 8; ++k) {
    const auto mask = train.labels == k;
    const auto points = x.index({mask});
    INFO("component " << k);
    // Equal weights: 1600 expected, binomial std 37.
    CHECK(std::abs(points.size(0) - 1600) < 200);
    const double angle = 2.0 * M_PI * double(k) / 8.0;
    const auto mean = points.mean(0);
    CHECK(mean[0].item<double>() == Approx(5.0 * std::cos(angle)).margin(0.02));
    CHECK(mean[1].item<double>() == Approx(5.0 * std::sin(angle)).margin(0.02));
    // One component's std has a ~1.8% standard error: 10% per component, 3% pooled below.
    const auto spread = points.std(0);
    CHECK(spread[0].item<double>() == Approx(0.2).epsilon(0.10));
    CHECK(spread[1].item<double>() == Approx(0.2).epsilon(0.10));
    const double c = std::cos(angle) * 5.0, s = std::sin(angle) * 5.0;
    residual.index_put_({mask}, points - torch::tensor({c, s}, torch::kFloat64));
  }
  const auto pooled = residual.std(0);
  CHECK(pooled[0].item<double>() == Approx(0.2).epsilon(0.03));
  CHECK(pooled[1].item<double>() == Approx(0.2).epsilon(0.03));
}

TEST_CASE("gmm2d options are checked", "[datasets]") {
  const auto& entry = test::plugins().get(PluginKind::dataset, "gmm2d");
  CHECK_THROWS_AS(resolve_options(entry.info.options, {{"components", std::int64_t{0}}}),
                  InputError);
  CHECK_THROWS_AS(resolve_options(entry.info.options, {{"std", -1.0}}), InputError);
  CHECK_THROWS_AS(resolve_options(entry.info.options, {{"radus", 1.0}}), InputError);
}

TEST_CASE("swiss_roll lies on the scaled spiral", "[datasets]") {
  const auto dataset = make_dataset("swiss_roll");
  const auto train = dataset->load(Split::train, 0);
  check_split(train, 10000, false);
  check_split(dataset->load(Split::test, 0), 2000, false);
  check_seeding(*dataset);
  // Defaults: radius t in [1.5 pi, 4.5 pi] times 0.1, noise 0.05 after scaling.
  CHECK(train.x.abs().max().item<float>() < 1.7f);
  CHECK(train.x.abs().max().item<float>() > 1.3f);

  SECTION("without noise every point is (t cos t, t sin t) scaled") {
    const auto clean = make_dataset("swiss_roll", {{"noise", 0.0}, {"scale", 1.0}})
                           ->load(Split::train, 3).x.to(torch::kFloat64);
    const auto t = clean.norm(2, 1);
    CHECK(t.min().item<double>() >= 1.5 * M_PI - 1e-4);
    CHECK(t.max().item<double>() <= 4.5 * M_PI + 1e-4);
    const auto expected = torch::stack({t * t.cos(), t * t.sin()}, 1);
    CHECK((clean - expected).abs().max().item<double>() < 1e-4);
  }
}

TEST_CASE("moons matches make_moons", "[datasets]") {
  const auto dataset = make_dataset("moons");
  REQUIRE(dataset->num_classes() == 2);
  const auto train = dataset->load(Split::train, 0);
  check_split(train, 10000, true);
  check_split(dataset->load(Split::test, 0), 2000, true);
  check_seeding(*dataset);
  CHECK(train.labels.sum().item<std::int64_t>() == 5000);
  CHECK(train.x.select(1, 0).min().item<float>() > -1.4f);
  CHECK(train.x.select(1, 0).max().item<float>() < 2.4f);
  CHECK(train.x.select(1, 1).min().item<float>() > -0.9f);
  CHECK(train.x.select(1, 1).max().item<float>() < 1.4f);

  SECTION("without noise the moons are exact half circles") {
    const auto clean = make_dataset("moons", {{"noise", 0.0}, {"train_size", std::int64_t{101}}})
                           ->load(Split::train, 1);
    const auto x = clean.x.to(torch::kFloat64);
    const auto outer = x.index({clean.labels == 0});
    const auto inner = x.index({clean.labels == 1});
    CHECK(outer.size(0) == 50);
    CHECK(inner.size(0) == 51);
    CHECK((outer.norm(2, 1) - 1.0).abs().max().item<double>() < 1e-6);
    CHECK(outer.select(1, 1).min().item<double>() > -1e-6);
    const auto centred = inner - torch::tensor({1.0, 0.5}, torch::kFloat64);
    CHECK((centred.norm(2, 1) - 1.0).abs().max().item<double>() < 1e-6);
    CHECK(inner.select(1, 1).max().item<double>() < 0.5 + 1e-6);
  }
}
