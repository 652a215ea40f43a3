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

TEST_CASE("fid, kid, inception_score, psnr and lpips measure reconstructions; test_loss, mmd, wasserstein do not", "[image_metrics]") {
  for (const auto* name : {"fid", "kid", "inception_score", "psnr", "lpips"}) {
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
