// The distribution view's projection: principal components of known data, and the files it writes.
#include <cmath>
#include <fstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "engine/distribution_view.hpp"
#include "support.hpp"

using namespace difflab;

TEST_CASE("fit_pca finds the principal axes of data of known covariance", "[distribution]") {
  // Independent N(0, 9) and N(0, 1) coordinates rotated by 30 degrees, shifted by (2, -1): the
  // first component is (cos 30, sin 30) with variance 9, the second (-sin 30, cos 30) with 1.
  auto gen = at::detail::createCPUGenerator(11);
  const std::int64_t n = 200000;
  const auto raw = torch::randn({n, 2}, gen, torch::kFloat64) * torch::tensor({3.0, 1.0}, torch::kFloat64);
  const double c = std::cos(M_PI / 6), s = std::sin(M_PI / 6);
  const auto rotation = torch::tensor({{c, s}, {-s, c}}, torch::kFloat64);  // rows: the axes
  const auto x = torch::matmul(raw, rotation) + torch::tensor({2.0, -1.0}, torch::kFloat64);
  const auto pca = fit_pca(x, 2);
  CHECK(pca.mean[0].item<double>() == Approx(2.0).margin(0.02));
  CHECK(pca.mean[1].item<double>() == Approx(-1.0).margin(0.02));
  // Signs fixed: each component's largest entry is positive.
  CHECK(pca.components[0][0].item<double>() == Approx(c).margin(0.005));
  CHECK(pca.components[1][0].item<double>() == Approx(s).margin(0.005));
  CHECK(std::abs(pca.components[0][1].item<double>()) == Approx(s).margin(0.005));
  const auto projected = pca.project(x);
  CHECK(projected.select(1, 0).var().item<double>() == Approx(9.0).epsilon(0.01));
  CHECK(projected.select(1, 1).var().item<double>() == Approx(1.0).epsilon(0.01));
  CHECK(std::abs(projected.mean().item<double>()) < 0.02);
}

TEST_CASE("the distribution view writes a PNG and the projected points for the report's UMAP", "[distribution]") {
  const auto dir = test::temp_dir("distribution-view");
  auto gen = at::detail::createCPUGenerator(2);
  const auto real = torch::rand({300, 1, 8, 8}, gen) * 2 - 1;
  const auto labels = torch::arange(300) % 10;
  const auto generated = torch::rand({50, 1, 8, 8}, gen);
  const auto pca = fit_pca(real, kDistributionComponents);
  const auto artifacts = write_distribution_view(dir, "ddim", pca, real, labels, generated, 7, "ddim");
  REQUIRE(artifacts.size() == 2);
  CHECK(artifacts[0].kind == "distribution_png");
  CHECK(artifacts[1].kind == "distribution_json");
  CHECK(std::filesystem::exists(artifacts[0].path));
  std::ifstream in(artifacts[1].path);
  const auto view = nlohmann::json::parse(in);
  CHECK(view.at("components") == 32);
  CHECK(view.at("real").size() == kDistributionPoints);
  CHECK(view.at("generated").size() == 50);
  CHECK(view.at("real").at(0).size() == 32);
  CHECK(view.at("real_labels").at(13) == 3);
  // The generated points are the samples projected with the real images' components.
  const auto expected = pca.project(generated);
  CHECK(view.at("generated").at(4).at(1).get<double>() == Approx(expected[4][1].item<double>()).epsilon(1e-5));
}
