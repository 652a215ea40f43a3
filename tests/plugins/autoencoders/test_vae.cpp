// The autoencoder API and the in-tree vae: the KL term against its closed form, the latent shapes
// the options give, and an encode/decode round trip of a briefly trained VAE.
#include <cmath>

#include <catch2/catch.hpp>

#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"
#include "support.hpp"

using namespace difflab;

namespace {

std::shared_ptr<Autoencoder> make_vae(const std::map<std::string, OptionValue>& values) {
  auto& registry = test::plugins();
  return registry.make_autoencoder("vae", resolve_options(registry.get(PluginKind::autoencoder, "vae").info.options, values));
}

}  // namespace

TEST_CASE("gaussian_kl is KL(N(m, s^2) || N(0, 1)) = -log s + (s^2 + m^2) / 2 - 1/2, summed per row", "[autoencoder]") {
  // Two rows of two dimensions: (m, s^2) = (1, 4), (0, 1) | (-2, 0.25), (0.5, 1).
  const auto mean = torch::tensor({{1.0, 0.0}, {-2.0, 0.5}}, torch::kFloat64);
  const auto var = torch::tensor({{4.0, 1.0}, {0.25, 1.0}}, torch::kFloat64);
  const auto kl = gaussian_kl({mean, var.log()});
  const auto closed = [](double m, double v) { return -0.5 * std::log(v) + (v + m * m) / 2 - 0.5; };
  CHECK(kl[0].item<double>() == Approx(closed(1, 4) + closed(0, 1)).epsilon(1e-12));
  CHECK(kl[1].item<double>() == Approx(closed(-2, 0.25) + closed(0.5, 1)).epsilon(1e-12));
  CHECK(closed(1, 4) == Approx(2.0 - std::log(2.0)).epsilon(1e-12));  // the formula itself: 1.3069

  // And as an expectation: E_q[log q(z) - log p(z)] over draws of sample_latent (Monte Carlo).
  auto gen = at::detail::createCPUGenerator(7);
  const std::int64_t n = 400000;
  const LatentDistribution q{torch::full({n, 1}, 1.0, torch::kFloat64), torch::full({n, 1}, std::log(4.0), torch::kFloat64)};
  const auto z = sample_latent(q, gen);
  const auto log_q = -0.5 * ((z - 1.0) / 2.0).pow(2) - std::log(2.0);  // the 1/sqrt(2 pi) cancels
  const auto log_p = -0.5 * z.pow(2);
  const double estimate = (log_q - log_p).mean().item<double>();
  CHECK(estimate == Approx(2.0 - std::log(2.0)).margin(0.01));
  CHECK(z.mean().item<double>() == Approx(1.0).margin(0.01));
  CHECK(z.std().item<double>() == Approx(2.0).margin(0.01));
}

TEST_CASE("vae: channel_mult sets the downsamplings; the defaults take 1x32x32 to 2x4x4", "[autoencoder]") {
  auto vae = make_vae({});
  CHECK(vae->latent_shape({1, 32, 32}) == std::vector<std::int64_t>{2, 4, 4});
  torch::NoGradGuard no_grad;
  const auto q = vae->encode(torch::zeros({3, 1, 32, 32}));
  CHECK(q.mean.sizes().vec() == std::vector<std::int64_t>{3, 2, 4, 4});
  CHECK(q.logvar.sizes().vec() == std::vector<std::int64_t>{3, 2, 4, 4});
  CHECK(vae->decode(q.mean).sizes().vec() == std::vector<std::int64_t>{3, 1, 32, 32});

  auto two_levels = make_vae({{"channel_mult", std::vector<std::int64_t>{1, 2}}, {"latent_channels", std::int64_t{4}},
                              {"base_channels", std::int64_t{8}}});
  CHECK(two_levels->latent_shape({1, 32, 32}) == std::vector<std::int64_t>{4, 8, 8});
  CHECK_THROWS_WITH(two_levels->latent_shape({1, 30, 30}),
                    Catch::Contains("30x30 pixels cannot be halved 2 times") && Catch::Contains("divisible by 4"));
  CHECK_THROWS_AS(two_levels->latent_shape({3, 32, 32}), InputError);
}

TEST_CASE("vae: a briefly trained VAE reconstructs held-out images above 15 dB PSNR", "[autoencoder]") {
  // 32x32 Fashion-MNIST to a 2x8x8 latent.
  auto& registry = test::plugins();
  const auto dataset = registry.make_dataset(
      "fashion_mnist", resolve_options(registry.get(PluginKind::dataset, "fashion_mnist").info.options,
                                       {{"train_size", std::int64_t{512}},
                                        {"test_size", std::int64_t{128}}}));
  const auto train = dataset->load(Split::train, 0);
  const auto test = dataset->load(Split::test, 0);
  torch::manual_seed(0);
  auto vae = make_vae({{"base_channels", std::int64_t{8}}, {"channel_mult", std::vector<std::int64_t>{1, 2}}});
  torch::optim::Adam adam(vae->parameters(), torch::optim::AdamOptions(2e-3));
  auto gen = at::detail::createCPUGenerator(1);
  const auto psnr = [&] {
    torch::NoGradGuard no_grad;
    vae->eval();
    const auto mse = (vae->decode(vae->encode(test.x).mean).clamp(-1, 1) - test.x).pow(2).flatten(1).mean(1);
    vae->train();
    return (10.0 * torch::log10(4.0 / mse)).mean().item<double>();
  };
  const double before = psnr();
  for (int step = 0; step < 300; ++step) {
    const auto rows = torch::randint(train.x.size(0), {32}, gen, torch::kLong);
    const auto x = train.x.index_select(0, rows);
    const auto q = vae->encode(x);
    const auto loss = torch::mse_loss(vae->decode(sample_latent(q, gen)), x) + 1e-4 * gaussian_kl(q).mean();
    adam.zero_grad();
    loss.backward();
    adam.step();
  }
  const double after = psnr();
  INFO("PSNR before " << before << " dB, after " << after << " dB");
  CHECK(after > 15.0);
  CHECK(after > before + 5.0);
}
