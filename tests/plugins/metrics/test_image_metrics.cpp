// The image metrics: the statistics against closed forms, TorchScript networks given by path,
// and difflab's own feature network on a labelled toy image set.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>

#include <cmath>
#include <fstream>
#include <iostream>

#include <catch2/catch.hpp>

#include "difflab/errors.hpp"
#include "image_features.hpp"
#include "support.hpp"

using namespace difflab;
using namespace difflab::image_metrics;
namespace fs = std::filesystem;

namespace {

// Stands in for inception-2015-12-05.pt: same calling convention (uint8 RGB NCHW,
// forward(x, True) -> features, forward(x, False) -> probabilities), 6-d features.
fs::path fixture_inception(const fs::path& dir) {
  torch::jit::Module m("FixtureInception");
  m.define(R"(
def forward(self, x, return_features: bool):
    f = x.float() / 255.0
    features = torch.cat([torch.mean(f, [2, 3]), torch.amax(f, [2, 3])], 1)
    if return_features:
        return features
    return torch.softmax(features * 10.0, 1)
)");
  const auto path = dir / "fixture-inception.pt";
  m.save(path.string());
  return path;
}

// The fixture's features [mean, max per RGB channel] under a 3-class output layer with a large
// bias: forward(x, False) returns softmax(f W^T + b); with `no_output_bias_argument` it takes
// StyleGAN2-ADA's signature and drops b when asked.
const auto kOutputWeight = torch::tensor({{4.0, -2.0, 0.0, 1.0, 0.0, -3.0},
                                          {0.0, 3.0, -1.0, 0.0, 2.0, 0.0},
                                          {-1.0, 0.0, 5.0, -2.0, 0.0, 1.0}}, torch::kDouble);
const auto kOutputBias = torch::tensor({3.0, -2.0, 0.5}, torch::kDouble);

fs::path fixture_inception_with_output(const fs::path& dir, bool no_output_bias_argument) {
  torch::jit::Module m("FixtureInceptionOutput");
  torch::jit::Module output("FixtureOutput");
  output.register_parameter("weight", kOutputWeight.to(torch::kFloat), false);
  output.register_parameter("bias", kOutputBias.to(torch::kFloat), false);
  m.register_module("output", output);
  const std::string features = R"(
    f = x.float() / 255.0
    features = torch.cat([torch.mean(f, [2, 3]), torch.amax(f, [2, 3])], 1)
    if return_features:
        return features
)";
  m.define(no_output_bias_argument
               ? "def forward(self, x, return_features: bool = False, use_fp16: bool = False, "
                 "no_output_bias: bool = False):" + features + R"(
    if no_output_bias:
        return torch.softmax(torch.matmul(features, self.output.weight.t()), 1)
    return torch.softmax(torch.matmul(features, self.output.weight.t()) + self.output.bias, 1)
)"
               : "def forward(self, x, return_features: bool):" + features + R"(
    return torch.softmax(torch.matmul(features, self.output.weight.t()) + self.output.bias, 1)
)");
  const auto path = dir / (no_output_bias_argument ? "fixture-stylegan-inception.pt" : "fixture-inception-output.pt");
  m.save(path.string());
  return path;
}

// The Inception score written out: exp(mean_x sum_y p(y|x) log(p(y|x) / p(y))) per split of the
// rows [i N / s, (i + 1) N / s), averaged.
double inception_score_by_hand(const torch::Tensor& p, std::int64_t splits) {
  const auto n = p.size(0);
  double total = 0;
  for (std::int64_t i = 0; i < splits; ++i) {
    const auto part = p.slice(0, i * n / splits, (i + 1) * n / splits);
    total += std::exp((part * (part / part.mean(0, true)).log()).sum(1).mean().item<double>());
  }
  return total / static_cast<double>(splits);
}

// LPIPS-like: mean absolute difference per image.
fs::path fixture_lpips(const fs::path& dir) {
  torch::jit::Module m("FixtureLpips");
  m.define(R"(
def forward(self, x0, x1):
    return torch.mean(torch.abs(x0 - x1), [1, 2, 3])
)");
  const auto path = dir / "fixture-lpips.pt";
  m.save(path.string());
  return path;
}

// Four classes of 16x16 grey images: a bright 8x8 square in quadrant `label`, plus noise.
DataSplit quadrant_images(std::int64_t n, std::uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  const auto labels = torch::randint(0, 4, {n}, gen, torch::kLong);
  auto x = torch::full({n, 1, 16, 16}, -0.8) + 0.1 * torch::randn({n, 1, 16, 16}, gen);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto q = labels[i].item<std::int64_t>();
    x[i].slice(1, (q / 2) * 8, (q / 2) * 8 + 8).slice(2, (q % 2) * 8, (q % 2) * 8 + 8) += 1.4;
  }
  return {x.clamp(-1, 1), labels};
}

std::shared_ptr<Metric> make_metric(const std::string& name, const std::map<std::string, OptionValue>& values) {
  auto& registry = test::plugins();
  return registry.make_metric(name, resolve_options(registry.get(PluginKind::metric, name).info.options, values));
}

// A model that always predicts x0 = 0 (for PSNR's closed form).
class ZeroX0 final : public Denoiser {
 public:
  torch::Tensor forward(const torch::Tensor& x_t, const torch::Tensor&, const Conditioning&) override {
    return torch::zeros_like(x_t);
  }
  Prediction prediction() const override { return Prediction::x0; }
};

}  // namespace

TEST_CASE("FID: 0 against itself, |c|^2 against a copy shifted by c, the Gaussian closed form", "[image_metrics]") {
  auto gen = at::detail::createCPUGenerator(3);
  const auto f = torch::randn({3000, 8}, gen, torch::kDouble) * torch::linspace(0.5, 3.0, 8, torch::kDouble);
  CHECK(frechet_distance(fit_gaussian(f), fit_gaussian(f)) == Approx(0.0).margin(1e-9));
  const auto c = torch::linspace(-1.0, 2.0, 8, torch::kDouble);
  CHECK(frechet_distance(fit_gaussian(f), fit_gaussian(f + c)) == Approx(c.dot(c).item<double>()).epsilon(1e-9));

  // Commuting covariances Q diag(s) Q^T: FID = |m1 - m2|^2 + sum (sqrt s1 - sqrt s2)^2.
  const auto q = std::get<0>(torch::linalg_qr(torch::randn({8, 8}, gen, torch::kDouble)));
  const auto s1 = torch::linspace(0.1, 4.0, 8, torch::kDouble), s2 = torch::linspace(2.0, 0.5, 8, torch::kDouble);
  const Gaussian a{torch::zeros({8}, torch::kDouble), q.mm(torch::diag(s1)).mm(q.t())};
  const Gaussian b{torch::ones({8}, torch::kDouble), q.mm(torch::diag(s2)).mm(q.t())};
  const double expected = 8.0 + (s1.sqrt() - s2.sqrt()).pow(2).sum().item<double>();
  CHECK(frechet_distance(a, b) == Approx(expected).epsilon(1e-9));
}

TEST_CASE("KID is near 0 for draws of one distribution and large for shifted ones, and IS of one-hot classes", "[image_metrics]") {
  auto gen = at::detail::createCPUGenerator(4);
  const auto x = torch::randn({1000, 16}, gen, torch::kDouble);
  const auto y = torch::randn({1000, 16}, gen, torch::kDouble);
  const double same = kernel_inception_distance(x, y, 20, 500, gen);
  const double shifted = kernel_inception_distance(x, y + 1.0, 20, 500, gen);
  std::cout << "KID same distribution " << same << ", shifted by 1: " << shifted << "\n";
  CHECK(std::abs(same) < 0.01 * shifted);
  CHECK(shifted > 1.0);

  // Balanced confident predictions over K classes score K; one class, or no confidence, 1.
  const auto labels = torch::arange(500) % 5;
  CHECK(inception_score(torch::one_hot(labels, 5).to(torch::kDouble), 1) == Approx(5.0).epsilon(1e-6));
  CHECK(inception_score(torch::one_hot(torch::zeros({500}, torch::kLong), 5).to(torch::kDouble), 1) ==
        Approx(1.0));
  CHECK(inception_score(torch::full({500, 5}, 0.2, torch::kDouble), 10) == Approx(1.0));
}

TEST_CASE("KID is torch-fidelity's unbiased MMD^2 with the kernel (x.y / d + 1)^3", "[image_metrics]") {
  // d = 2. k within X: k(x1,x2) = 1, k(x1,x3) = k(x2,x3) = 1.5^3 = 3.375 -> off-diagonal sum 15.5.
  // Within Y: k(y1,y2) = 1, k(y1,y3) = 2^3 = 8, k(y2,y3) = 1 -> 20. Across: 8 1 3.375 / 1 1 0.125 /
  // 8 1 1 -> 24.5. MMD^2_u = (15.5 + 20) / (3 * 2) - 2 * 24.5 / 3^2 = 17 / 36.
  const auto x = torch::tensor({{1.0, 0.0}, {0.0, 1.0}, {1.0, 1.0}}, torch::kDouble);
  const auto y = torch::tensor({{2.0, 0.0}, {0.0, 0.0}, {1.0, -1.0}}, torch::kDouble);
  auto gen = at::detail::createCPUGenerator(0);
  CHECK(kernel_inception_distance(x, y, 1, 3, gen) == Approx(17.0 / 36.0).epsilon(1e-12));
  // Every subset of all rows is a permutation of them, and the estimate ignores order.
  CHECK(kernel_inception_distance(x, y, 7, 3, gen) == Approx(17.0 / 36.0).epsilon(1e-12));
}

TEST_CASE("precision, recall, density, coverage: 1 against itself, 0 against a far set", "[image_metrics]") {
  auto gen = at::detail::createCPUGenerator(6);
  const auto x = torch::randn({300, 8}, gen, torch::kDouble);
  // Each row is inside its own ball (distance 0), and exactly k rows of the set lie strictly
  // inside a row's radius (itself and its k - 1 nearest), so density is k N / (k N) = 1.
  for (const std::int64_t k : {1, 3, 5}) {
    INFO("k = " << k);
    for (const auto& fake : {x, x.clone()}) {
      const auto v = precision_recall_density_coverage(x, fake, k);
      CHECK(v.precision == 1.0);
      CHECK(v.recall == 1.0);
      CHECK(v.density == 1.0);
      CHECK(v.coverage == 1.0);
    }
    const auto far = precision_recall_density_coverage(x, x + 100.0, k);
    CHECK(far.precision == 0.0);
    CHECK(far.recall == 0.0);
    CHECK(far.density == 0.0);
    CHECK(far.coverage == 0.0);
  }
  CHECK_THROWS_WITH(precision_recall_density_coverage(x.slice(0, 0, 3), x, 3),
                    Catch::Contains("need more than 3 rows in each set, got 3 real and 300 fake"));
  CHECK_THROWS_AS(precision_recall_density_coverage(x, x.slice(1, 0, 4), 3), InputError);
}

TEST_CASE("precision, recall, density, coverage by hand: prdc's strict comparisons at the radius", "[image_metrics]") {
  // 1-D, k = 1. Real R = {-1, 0, 1}: radii (nearest other real) r(-1) = r(0) = r(1) = 1.
  // Fake F = {0, 0.5, 2}: radii r(0) = r(0.5) = 0.5, r(2) = 1.5.
  // precision: F=0 is inside R=0's ball (0 < 1); F=0.5 inside R=0's (0.5 < 1); F=2 is at
  //   distance 1 = r(1) of R=1, on the boundary, so outside: 2/3.
  // recall: R=-1 is 1, 1.5, 3 from the fakes, no radius above that: out; R=0 is inside F=0's
  //   ball (0 < 0.5); R=1 is on F=0.5's boundary (0.5) but inside F=2's (1 < 1.5): 2/3.
  // density: F=0 is strictly inside R=0's ball only (R=-1 and R=1 are at distance 1 = radius);
  //   F=0.5 inside R=0's and R=1's; F=2 inside none: (1 + 2 + 0) / (k M = 3) = 1.
  // coverage: nearest fakes 1 (R=-1, = its radius: not covered), 0 (R=0), 0.5 (R=1): 2/3.
  // (Counting distances equal to a radius in, as Kynkaanniemi et al. do, would give 1, 2/3, 2, 1.)
  const auto real = torch::tensor({-1.0, 0.0, 1.0}, torch::kDouble).unsqueeze(1);
  const auto fake = torch::tensor({0.0, 0.5, 2.0}, torch::kDouble).unsqueeze(1);
  const auto v = precision_recall_density_coverage(real, fake, 1);
  CHECK(v.precision == 2.0 / 3.0);
  CHECK(v.recall == 2.0 / 3.0);
  CHECK(v.density == 1.0);
  CHECK(v.coverage == 2.0 / 3.0);
}

TEST_CASE("precision, recall, density, coverage in blocks of rows equal the whole distance matrix's", "[image_metrics]") {
  // More rows than one block (1024) on both sides, the fakes a wider, shifted draw.
  auto gen = at::detail::createCPUGenerator(8);
  const auto real = torch::randn({1500, 4}, gen, torch::kDouble);
  const auto fake = 2.0 * torch::randn({1100, 4}, gen, torch::kDouble) + 1.0;
  const std::int64_t k = 3;
  const auto d_rr = torch::cdist(real, real, 2.0, 2), d_ff = torch::cdist(fake, fake, 2.0, 2);
  const auto d = torch::cdist(real, fake, 2.0, 2);  // [N, M], as prdc's distance_real_fake
  const auto radius_real = std::get<0>(d_rr.kthvalue(k + 1, 1)), radius_fake = std::get<0>(d_ff.kthvalue(k + 1, 1));
  const auto in_real_balls = d < radius_real.unsqueeze(1);
  const double precision = in_real_balls.any(0).to(torch::kDouble).mean().item<double>();
  const double recall = (d < radius_fake.unsqueeze(0)).any(1).to(torch::kDouble).mean().item<double>();
  const double density = in_real_balls.sum(0).to(torch::kDouble).mean().item<double>() / k;
  const double coverage = (d.amin({1}) < radius_real).to(torch::kDouble).mean().item<double>();
  const auto v = precision_recall_density_coverage(real, fake, k);
  std::cout << "precision " << v.precision << ", recall " << v.recall << ", density " << v.density << ", coverage "
            << v.coverage << "\n";
  CHECK(v.precision == Approx(precision).epsilon(1e-12));
  CHECK(v.recall == Approx(recall).epsilon(1e-12));
  CHECK(v.density == Approx(density).epsilon(1e-12));
  CHECK(v.coverage == Approx(coverage).epsilon(1e-12));
  CHECK(v.precision > 0.1);  // neither all nor nothing, so the comparison means something
  CHECK(v.precision < 0.9);
}

TEST_CASE("Inception score: split s holds rows i N / s up to (i + 1) N / s, and the mean divides by the splits made", "[image_metrics]") {
  const auto one_hot = [](std::vector<std::int64_t> classes) {
    return torch::one_hot(torch::tensor(classes, torch::kLong), 3).to(torch::kDouble);
  };
  // N = 10, s = 4: rows [0,2) [2,5) [5,7) [7,10) hold classes {0,1} {0,1,2} {0,0} {0,1,2}, each
  // split uniform over its classes, so IS = (2 + 3 + 1 + 3) / 4 (chunk(): 3,3,3,1 rows, 1.94).
  CHECK(inception_score(one_hot({0, 1, 0, 1, 2, 0, 0, 0, 1, 2}), 4) == Approx(9.0 / 4.0).epsilon(1e-9));
  // N = 10, s = 6: rows [0,1) [1,3) [3,5) [5,6) [6,8) [8,10) give 1 2 1 1 2 1, so 8 / 6 (chunk():
  // five splits of 2 rows, 9 / 6).
  CHECK(inception_score(one_hot({0, 1, 2, 0, 0, 1, 1, 2, 0, 0}), 6) == Approx(8.0 / 6.0).epsilon(1e-9));
}

TEST_CASE("Inception score from the logits without the output bias", "[image_metrics]") {
  const auto dir = test::temp_dir("inception-unbiased");
  // Colour images of varied brightness per channel, so p(y|x) varies from image to image.
  auto gen = at::detail::createCPUGenerator(31);
  const DataSplit images{torch::rand({40, 3, 8, 8}, gen) * torch::rand({40, 3, 1, 1}, gen) * 2 - 1, torch::Tensor()};
  auto model = std::make_shared<ZeroX0>();
  DiffusionProcess process(torch::linspace(1e-4, 0.02, 100, torch::kFloat64), torch::kCPU);
  MetricContext ctx{*model, process, images, images, images.x, at::detail::createCPUGenerator(0)};
  for (const bool stylegan_signature : {false, true}) {
    const auto path = fixture_inception_with_output(dir, stylegan_signature);
    INFO(path.filename());
    const auto features = load_inception(path)->features(images.x);
    const double unbiased = inception_score_by_hand(torch::softmax(features.mm(kOutputWeight.t()), 1), 3);
    const double biased = inception_score_by_hand(torch::softmax(features.mm(kOutputWeight.t()) + kOutputBias, 1), 3);
    const auto values = make_metric("inception_score", {{"network", path.string()}, {"splits", std::int64_t{3}}})->evaluate(ctx);
    REQUIRE(values.size() == 1);
    CHECK(values[0].variant == "splits=3,unbiased,inception:" + path.filename().string());
    CHECK(values[0].better == Better::higher);
    CHECK(values[0].value == Approx(unbiased).epsilon(1e-5));
    CHECK(std::abs(unbiased - biased) > 0.01);  // the bias would matter (0.017, far above 1e-5)
  }
  // A network with neither the argument nor an output layer cannot give unbiased logits.
  auto plain = make_metric("inception_score", {{"network", fixture_inception(dir).string()}});
  CHECK_THROWS_WITH(plain->evaluate(ctx), Catch::Contains("fixture-inception.pt: the Inception score needs logits "
                                                          "without the output bias"));
}

TEST_CASE("a TorchScript Inception given by path is loaded, used and named", "[image_metrics]") {
  const auto dir = test::temp_dir("inception");
  const auto path = fixture_inception(dir);
  const auto inception = load_inception(path);
  CHECK(inception->name() == "inception:fixture-inception.pt");
  const auto black = torch::full({4, 1, 8, 8}, -1.0), white = torch::full({4, 1, 8, 8}, 1.0);
  CHECK(torch::equal(inception->features(black), torch::zeros({4, 6}, torch::kDouble)));  // 0..255 input
  CHECK(torch::allclose(inception->features(white), torch::ones({4, 6}, torch::kDouble)));

  const auto data = quadrant_images(300, 1), test = quadrant_images(200, 2);
  auto model = std::make_shared<ZeroX0>();
  DiffusionProcess process(torch::linspace(1e-4, 0.02, 100, torch::kFloat64), torch::kCPU);
  auto fid = make_metric("fid", {{"network", path.string()}});
  MetricContext same{*model, process, data, test, test.x, at::detail::createCPUGenerator(0)};
  const auto values = fid->evaluate(same);
  REQUIRE(values.size() == 1);
  CHECK(values[0].variant == "inception:fixture-inception.pt,ref=test");
  CHECK(values[0].value == Approx(0.0).margin(1e-9));
  MetricContext noise{*model, process, data, test, torch::rand({200, 1, 16, 16}) * 2 - 1,
                      at::detail::createCPUGenerator(0)};
  CHECK(fid->evaluate(noise)[0].value > 0.1);

  auto lpips = make_metric("lpips", {{"network", fixture_lpips(dir).string()}, {"pairs", std::int64_t{64}}});
  const auto diversity = lpips->evaluate(same);
  REQUIRE(diversity.size() == 1);
  CHECK(diversity[0].variant == "diversity(pairs=64),lpips:fixture-lpips.pt");
  CHECK(diversity[0].value > 0);

  // A missing or wrong file is an input error that names it, raised when the metric is made.
  CHECK_THROWS_WITH(make_metric("fid", {{"network", (dir / "missing.pt").string()}}),
                    Catch::Contains("missing.pt: no such network file"));
  std::ofstream(dir / "text.pt") << "not a TorchScript archive\n";
  CHECK_THROWS_WITH(make_metric("kid", {{"network", (dir / "text.pt").string()}}),
                    Catch::Contains("text.pt: not a TorchScript module"));
  CHECK_THROWS_AS(make_metric("lpips", {{"network", (dir / "text.pt").string()}}), InputError);
}

TEST_CASE("precision_recall through the registry: samples equal to the test images give precision and recall 1", "[image_metrics]") {
  const auto dir = test::temp_dir("precision-recall");
  const auto path = fixture_inception(dir);
  const auto inception = load_inception(path);
  const auto data = quadrant_images(300, 1), test = quadrant_images(200, 2);
  auto model = std::make_shared<ZeroX0>();
  DiffusionProcess process(torch::linspace(1e-4, 0.02, 100, torch::kFloat64), torch::kCPU);
  const auto metric = make_metric("precision_recall", {{"network", path.string()}});
  CHECK(metric->measures_reconstructions());
  MetricContext same{*model, process, data, test, test.x, at::detail::createCPUGenerator(0)};
  const auto values = metric->evaluate(same);
  REQUIRE(values.size() == 4);
  const std::vector<std::string> names = {"precision", "recall", "density", "coverage"};
  const auto features = inception->features(test.x);
  const auto expected = precision_recall_density_coverage(features, features, 3);
  const std::vector<double> expected_values = {expected.precision, expected.recall, expected.density, expected.coverage};
  for (std::size_t i = 0; i < values.size(); ++i) {
    INFO(names[i]);
    CHECK(values[i].name == names[i]);
    CHECK(values[i].variant == "k=3,real=200,fake=200,inception:fixture-inception.pt");
    CHECK(values[i].better == Better::higher);
    CHECK(values[i].value == expected_values[i]);
  }
  CHECK(values[0].value == 1.0);  // precision
  CHECK(values[1].value == 1.0);  // recall
  CHECK(values[3].value == 1.0);  // coverage: each real row's own copy is at distance 0

  // Reconstructions in the samples' place give the same values.
  const ReconstructionContext recon_ctx{data, test, test.x, test.x.clone(), at::detail::createCPUGenerator(0)};
  const auto recon = metric->evaluate_reconstructions(recon_ctx);
  REQUIRE(recon.size() == 4);
  for (std::size_t i = 0; i < recon.size(); ++i) {
    CHECK(recon[i].name == values[i].name);
    CHECK(recon[i].variant == values[i].variant);
    CHECK(recon[i].value == values[i].value);
  }

  // Uniform noise is nowhere near the test images' features, nor they near its.
  auto gen = at::detail::createCPUGenerator(9);
  MetricContext noise{*model, process, data, test, torch::rand({200, 1, 16, 16}, gen) * 2 - 1,
                      at::detail::createCPUGenerator(0)};
  const auto far = metric->evaluate(noise);
  REQUIRE(far.size() == 4);
  for (const auto& v : far) {
    INFO(v.name << " " << v.value);
    CHECK(v.value < 0.05);
  }

  // Caps: max_real rows of the test split in a fixed random order (seed 0, kept in the split's
  // order), the first max_fake samples; k in the variant.
  const auto capped = make_metric("precision_recall", {{"network", path.string()},
                                                       {"k", std::int64_t{2}},
                                                       {"max_real", std::int64_t{50}},
                                                       {"max_fake", std::int64_t{40}}});
  const auto capped_values = capped->evaluate(same);
  REQUIRE(capped_values.size() == 4);
  auto perm_gen = at::detail::createCPUGenerator(0);
  const auto picked = std::get<0>(torch::randperm(200, perm_gen, torch::kLong).slice(0, 0, 50).sort());
  const auto by_hand = precision_recall_density_coverage(inception->features(test.x.index_select(0, picked)),
                                                         inception->features(test.x.slice(0, 0, 40)), 2);
  CHECK(capped_values[0].variant == "k=2,real=50,fake=40,inception:fixture-inception.pt");
  CHECK(capped_values[0].value == by_hand.precision);
  CHECK(capped_values[1].value == by_hand.recall);
  CHECK(capped_values[2].value == by_hand.density);
  CHECK(capped_values[3].value == by_hand.coverage);
  CHECK(capped->evaluate(same)[2].value == capped_values[2].value);  // the same rows at the next checkpoint

  CHECK_THROWS_WITH(make_metric("precision_recall", {{"k", std::int64_t{5}}, {"max_fake", std::int64_t{5}}}),
                    Catch::Contains("must exceed k (5)"));
}

TEST_CASE("fid per_class: one FID per class of class-conditional samples and their mean; off by default", "[image_metrics]") {
  const auto dir = test::temp_dir("fid-per-class");
  const auto path = fixture_inception(dir).string();
  const auto data = quadrant_images(300, 1), test = quadrant_images(200, 2);
  auto model = std::make_shared<ZeroX0>();
  DiffusionProcess process(torch::linspace(1e-4, 0.02, 100, torch::kFloat64), torch::kCPU);
  // The samples are the test rows, each drawn with its own class.
  const MetricContext ctx{*model, process, data, test, test.x, at::detail::createCPUGenerator(0),
                          Conditioning{test.labels, 1.0}, true};
  const auto plain = make_metric("fid", {{"network", path}})->evaluate(ctx);
  REQUIRE(plain.size() == 1);
  CHECK(plain[0].variant == "inception:fixture-inception.pt,ref=test");
  const auto features = load_inception(path)->features(test.x);
  CHECK(plain[0].value == frechet_distance(fit_gaussian(features), fit_gaussian(features)));

  const auto per_class = make_metric("fid", {{"network", path}, {"per_class", true}});
  const auto values = per_class->evaluate(ctx);
  REQUIRE(values.size() == 1 + 4 + 1);  // the usual FID, classes 0..3, their mean
  CHECK(values[0].variant == plain[0].variant);
  CHECK(values[0].value == plain[0].value);
  for (std::size_t i = 0; i < values.size(); ++i) {
    const auto expected_variant =
        i == 0 ? plain[0].variant
               : plain[0].variant + ",class=" + (i == values.size() - 1 ? std::string("mean") : std::to_string(i - 1));
    INFO(expected_variant);
    CHECK(values[i].name == "fid");
    CHECK(values[i].variant == expected_variant);
    CHECK(values[i].better == Better::lower);
    CHECK(values[i].value == Approx(0.0).margin(1e-6));
  }

  // Class 3 with one sample row is skipped; the mean is over the classes measured.
  auto labels = test.labels.clone();
  labels.masked_fill_(labels == 3, 0);
  labels[0] = 3;
  const MetricContext sparse{*model, process, data, test, test.x, at::detail::createCPUGenerator(0),
                             Conditioning{labels, 1.0}, true};
  const auto skipped = per_class->evaluate(sparse);
  REQUIRE(skipped.size() == 1 + 3 + 1);
  CHECK(skipped[0].value == plain[0].value);
  CHECK(skipped[3].variant == plain[0].variant + ",class=2");
  CHECK(skipped[4].variant == plain[0].variant + ",class=mean");
  CHECK(skipped[4].value == Approx((skipped[1].value + skipped[2].value + skipped[3].value) / 3).epsilon(1e-12));
  // Class 0 of the samples now holds class 3's rows too; the reference rows of class 0 are unchanged.
  const auto rows_of = [](const torch::Tensor& l, std::int64_t k) { return (l == k).nonzero().squeeze(1); };
  CHECK(skipped[1].value == Approx(frechet_distance(fit_gaussian(features.index_select(0, rows_of(labels, 0))),
                                                    fit_gaussian(features.index_select(0, rows_of(test.labels, 0)))))
                                .epsilon(1e-9)
                                .margin(1e-15));

  // Without sampling labels, or for reconstructions, only the usual value.
  const MetricContext unlabelled{*model, process, data, test, test.x, at::detail::createCPUGenerator(0)};
  const auto alone = per_class->evaluate(unlabelled);
  REQUIRE(alone.size() == 1);
  CHECK(alone[0].value == plain[0].value);
  const ReconstructionContext recon{data, test, test.x, test.x, at::detail::createCPUGenerator(0)};
  CHECK(per_class->evaluate_reconstructions(recon).size() == 1);
}

TEST_CASE("difflab's feature network: trained once on the labels, cached, far from noise", "[image_metrics]") {
  const auto cache = test::temp_dir("feature-cache");
  const auto train = quadrant_images(512, 11), test = quadrant_images(256, 12);
  FeatureNetConfig config;
  config.steps = 150;
  config.cache_dir = cache;
  const auto net = difflab_feature_net(train, config);
  CHECK_THAT(net->name(), Catch::StartsWith("difflab-cnn:"));
  REQUIRE(std::distance(fs::directory_iterator(cache), fs::directory_iterator()) == 1);
  const auto again = difflab_feature_net(train, config);  // loaded from the cache
  CHECK(again->name() == net->name());
  CHECK(torch::allclose(again->features(test.x), net->features(test.x)));
  config.steps = 151;
  CHECK(difflab_feature_net(train, config)->name() != net->name());  // another config, another net

  const auto reference = fit_gaussian(net->features(test.x));
  const double to_train = frechet_distance(fit_gaussian(net->features(train.x)), reference);
  const double to_noise = frechet_distance(fit_gaussian(net->features(torch::rand({512, 1, 16, 16}) * 2 - 1)), reference);
  std::cout << "difflab-cnn FID test vs train " << to_train << ", test vs uniform noise " << to_noise << "\n";
  CHECK(to_noise > 20 * to_train);
  CHECK(inception_score(net->probabilities(test.x), 1) > 3.0);  // 4 balanced, recognisable classes

  // LPIPS baseline: 0 between an image and itself, positive between different ones.
  auto model = std::make_shared<ZeroX0>();
  DiffusionProcess process(torch::linspace(1e-4, 0.02, 100, torch::kFloat64), torch::kCPU);
  auto lpips = make_metric("lpips", {{"feature_steps", std::int64_t{150}}, {"cache_dir", cache.string()}});
  MetricContext ctx{*model, process, train, test, test.x, at::detail::createCPUGenerator(0)};
  const auto diversity = lpips->evaluate(ctx);
  CHECK(diversity.at(0).variant == "diversity(pairs=256),layer-sum:" + net->name());
  CHECK(diversity.at(0).value > 0.01);
}

TEST_CASE("difflab's feature network: IS without the head's bias, LPIPS baseline clamped and summed", "[image_metrics]") {
  const auto cache = test::temp_dir("feature-cache-unbiased");
  const auto train = quadrant_images(512, 11), test = quadrant_images(64, 12);
  FeatureNetConfig config;
  config.steps = 150;
  config.cache_dir = cache;
  const auto net = difflab_feature_net(train, config);
  const auto file = fs::directory_iterator(cache)->path();
  torch::serialize::InputArchive archive, head;
  archive.load_from(file.string());
  archive.read("head", head);
  torch::Tensor weight, bias;
  head.read("weight", weight);
  head.read("bias", bias);
  const auto logits = net->features(test.x).mm(weight.to(torch::kDouble).t());
  const double unbiased = inception_score_by_hand(torch::softmax(logits, 1), 2);
  const double biased = inception_score_by_hand(torch::softmax(logits + bias.to(torch::kDouble), 1), 2);
  std::cout << "difflab-cnn IS without the head's bias " << unbiased << ", with it " << biased << "\n";
  CHECK(std::abs(unbiased - biased) > 1e-6);

  auto model = std::make_shared<ZeroX0>();
  DiffusionProcess process(torch::linspace(1e-4, 0.02, 100, torch::kFloat64), torch::kCPU);
  const std::map<std::string, OptionValue> net_options{{"feature_steps", std::int64_t{150}},
                                                       {"cache_dir", cache.string()}};
  auto is_options = net_options;
  is_options.emplace("splits", std::int64_t{2});
  MetricContext ctx{*model, process, train, test, test.x, at::detail::createCPUGenerator(0)};
  CHECK(make_metric("inception_score", is_options)->evaluate(ctx).at(0).value == Approx(unbiased).epsilon(1e-5));

  // LPIPS baseline of two samples: every pair is (0, 1) or (1, 0), so the value is their distance.
  auto lpips_options = net_options;
  lpips_options.emplace("pairs", std::int64_t{16});
  const auto lpips = make_metric("lpips", lpips_options);
  // An image three times too bright is its clamp to the network: distance exactly 0.
  const auto bright = 3 * test.x.slice(0, 0, 1);
  MetricContext clamped{*model, process, train, test, torch::cat({bright.clamp(-1, 1), bright}),
                        at::detail::createCPUGenerator(0)};
  const auto same = lpips->evaluate(clamped);
  CHECK(same.at(0).variant == "diversity(pairs=16),layer-sum:" + net->name());
  CHECK(same.at(0).better == Better::higher);  // diversity among samples
  CHECK(same.at(0).value == 0.0);
  // Two test images: sum over layers of the spatial mean of |unit(f_a) - unit(f_b)|^2 over
  // channels, as the reference's lpips=False sums its layers.
  const auto a = test.x.slice(0, 0, 1), b = test.x.slice(0, 1, 2);
  const auto la = net->layers(a), lb = net->layers(b);
  REQUIRE(la.size() == 3);
  double expected = 0;
  for (std::size_t l = 0; l < la.size(); ++l) {
    const auto unit_a = la[l] / (la[l].norm(2, 1, true) + 1e-10), unit_b = lb[l] / (lb[l].norm(2, 1, true) + 1e-10);
    expected += (unit_a - unit_b).pow(2).sum(1).mean().item<double>();
  }
  MetricContext pair{*model, process, train, test, torch::cat({a, b}), at::detail::createCPUGenerator(0)};
  CHECK(lpips->evaluate(pair).at(0).value == Approx(expected).epsilon(1e-5));
}

TEST_CASE("PSNR and LPIPS of reconstructions from x_t at the stated timesteps", "[image_metrics]") {
  const auto train = quadrant_images(128, 21), test = quadrant_images(64, 22);
  auto model = std::make_shared<ZeroX0>();  // reconstructs every image as 0
  DiffusionProcess process(torch::linspace(1e-4, 0.02, 101, torch::kFloat64), torch::kCPU);
  auto psnr = make_metric("psnr", {{"t_fractions", std::vector<double>{0.0, 0.5}}});
  CHECK(psnr->scope() == Metric::Scope::checkpoint);
  MetricContext ctx{*model, process, train, test, torch::Tensor(), at::detail::createCPUGenerator(0)};
  const auto values = psnr->evaluate(ctx);
  REQUIRE(values.size() == 2);
  CHECK(values[0].variant == "recon(t=0)");
  CHECK(values[1].variant == "recon(t=50)");
  // PSNR_i = 10 log10(2^2 / mean(x0_i^2)), averaged over the images.
  const double expected = (10 * torch::log10(4.0 / test.x.pow(2).flatten(1).mean(1))).mean().item<double>();
  CHECK(values[0].value == Approx(expected).epsilon(1e-5));
  CHECK(values[1].value == Approx(expected).epsilon(1e-5));

  const auto dir = test::temp_dir("lpips-recon");
  auto lpips = make_metric("lpips", {{"network", fixture_lpips(dir).string()}, {"t_fractions", std::vector<double>{0.5}}});
  CHECK(lpips->scope() == Metric::Scope::both);
  const auto recon = lpips->evaluate(ctx);
  REQUIRE(recon.size() == 1);
  CHECK(recon[0].variant == "recon(t=50),lpips:fixture-lpips.pt");
  CHECK(recon[0].value == Approx(test.x.abs().mean().item<double>()).epsilon(1e-5));
}

TEST_CASE("autoencoder reconstructions equal to the originals: PSNR at its MSE floor, LPIPS 0, FID 0", "[image_metrics]") {
  const auto dir = test::temp_dir("autoencoder-perfect");
  const auto train = quadrant_images(128, 41), test = quadrant_images(64, 42);
  const ReconstructionContext ctx{train, test, test.x, test.x.clone(), at::detail::createCPUGenerator(0)};

  // MSE_i = 0 is floored at 1e-12: 10 log10(4 / 1e-12) = 126.02 dB, not infinity.
  const auto psnr = make_metric("psnr", {})->evaluate_reconstructions(ctx);
  REQUIRE(psnr.size() == 1);
  CHECK(psnr[0].name == "psnr");
  CHECK(psnr[0].variant == "autoencoder(images=64)");
  CHECK(psnr[0].better == Better::higher);
  CHECK(std::isfinite(psnr[0].value));
  CHECK(psnr[0].value == Approx(10 * std::log10(4.0 / 1e-12)).epsilon(1e-6));

  const auto lpips = make_metric("lpips", {{"network", fixture_lpips(dir).string()}})->evaluate_reconstructions(ctx);
  REQUIRE(lpips.size() == 1);
  CHECK(lpips[0].variant == "autoencoder(images=64),lpips:fixture-lpips.pt");
  CHECK(lpips[0].better == Better::lower);
  CHECK(lpips[0].value == 0.0);

  // The originals are the test rows, so against the test split FID is 0 up to round-off.
  const auto fid = make_metric("fid", {{"network", fixture_inception(dir).string()}})->evaluate_reconstructions(ctx);
  REQUIRE(fid.size() == 1);
  CHECK(fid[0].variant == "inception:fixture-inception.pt,ref=test");
  CHECK(fid[0].better == Better::lower);
  CHECK(fid[0].value == Approx(0.0).margin(1e-9));
}

TEST_CASE("autoencoder reconstructions shifted by 0.1: PSNR's closed form, LPIPS > 0, FID/KID/IS as of samples", "[image_metrics]") {
  const auto dir = test::temp_dir("autoencoder-shifted");
  const auto train = quadrant_images(128, 43), test = quadrant_images(64, 44);
  const auto shifted = (test.x + 0.1).clamp(-1, 1);
  const ReconstructionContext ctx{train, test, test.x, shifted, at::detail::createCPUGenerator(7)};

  // PSNR_i = 10 log10(2^2 / MSE_i), averaged over the images (26.02 dB where no pixel clamps).
  const auto mse = (shifted - test.x).pow(2).flatten(1).mean(1);
  const double expected = (10 * torch::log10(4.0 / mse)).mean().item<double>();
  const auto psnr = make_metric("psnr", {})->evaluate_reconstructions(ctx);
  REQUIRE(psnr.size() == 1);
  CHECK(psnr[0].variant == "autoencoder(images=64)");
  CHECK(psnr[0].value == Approx(expected).epsilon(1e-6));
  CHECK(psnr[0].value == Approx(10 * std::log10(400.0)).margin(0.5));

  // The fixture LPIPS is the mean absolute difference per image.
  const auto lpips = make_metric("lpips", {{"network", fixture_lpips(dir).string()}})->evaluate_reconstructions(ctx);
  REQUIRE(lpips.size() == 1);
  CHECK(lpips[0].value > 0);
  CHECK(lpips[0].value == Approx((shifted - test.x).abs().mean().item<double>()).epsilon(1e-5));

  // FID, KID and IS of the reconstructions are the sample values of the same images.
  auto model = std::make_shared<ZeroX0>();
  DiffusionProcess process(torch::linspace(1e-4, 0.02, 100, torch::kFloat64), torch::kCPU);
  const MetricContext as_samples{*model, process, train, test, shifted, at::detail::createCPUGenerator(7)};
  const auto inception = fixture_inception(dir).string();
  const std::vector<std::pair<std::string, std::map<std::string, OptionValue>>> metrics = {
      {"fid", {{"network", inception}}},
      {"fid", {{"network", inception}, {"reference", std::string("train")}}},
      {"kid", {{"network", inception}, {"subsets", std::int64_t{10}}, {"subset_size", std::int64_t{32}}}},
      {"inception_score", {{"network", fixture_inception_with_output(dir, true).string()}, {"splits", std::int64_t{4}}}}};
  for (const auto& [name, options] : metrics) {
    INFO(name);
    const auto metric = make_metric(name, options);
    const auto recon = metric->evaluate_reconstructions(ctx), samples = metric->evaluate(as_samples);
    REQUIRE(recon.size() == 1);
    REQUIRE(samples.size() == 1);
    CHECK(recon[0].name == samples[0].name);
    CHECK(recon[0].variant == samples[0].variant);
    CHECK(recon[0].better == samples[0].better);
    CHECK(recon[0].value == samples[0].value);
  }
  const auto fid = make_metric("fid", {{"network", inception}})->evaluate_reconstructions(ctx);
  CHECK(fid.at(0).value > 1e-3);  // the shift moves the features' mean
}

TEST_CASE("fid, kid, precision_recall, inception_score, psnr and lpips measure reconstructions; test_loss, mmd, wasserstein do not", "[image_metrics]") {
  for (const auto* name : {"fid", "kid", "precision_recall", "inception_score", "psnr", "lpips"}) {
    INFO(name);
    CHECK(make_metric(name, {})->measures_reconstructions());
  }
  const auto train = quadrant_images(8, 45), test = quadrant_images(8, 46);
  const ReconstructionContext ctx{train, test, test.x, test.x, at::detail::createCPUGenerator(0)};
  for (const auto* name : {"test_loss", "mmd", "wasserstein"}) {
    INFO(name);
    const auto metric = make_metric(name, {});
    CHECK_FALSE(metric->measures_reconstructions());
    CHECK(metric->evaluate_reconstructions(ctx).empty());
  }
}

TEST_CASE("Fashion-MNIST: FID of test against train is far below FID of test against noise", "[image_metrics]") {
  auto& registry = test::plugins();
  const auto& entry = registry.get(PluginKind::dataset, "fashion_mnist");
  const auto dataset = registry.make_dataset(
      "fashion_mnist", resolve_options(entry.info.options, {{"train_size", std::int64_t{2000}},
                                                            {"test_size", std::int64_t{1000}}}));
  const auto train = dataset->load(Split::train, 0), test = dataset->load(Split::test, 0);
  FeatureNetConfig config;
  config.steps = 200;
  config.cache_dir = test::temp_dir("fashion-features");
  test::SingleThread single_thread;
  const auto net = difflab_feature_net(train, config);
  const auto reference = fit_gaussian(net->features(test.x));
  const double to_train = frechet_distance(fit_gaussian(net->features(train.x)), reference);
  auto gen = at::detail::createCPUGenerator(5);
  const auto noise = torch::rand({1000, 1, 32, 32}, gen) * 2 - 1;
  const double to_noise = frechet_distance(fit_gaussian(net->features(noise)), reference);
  std::cout << "Fashion-MNIST, " << net->name() << ": FID test vs train " << to_train
            << ", test vs uniform noise " << to_noise << "\n";
  CHECK(to_noise > 20 * to_train);
}
