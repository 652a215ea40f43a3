// The latent cache of latent diffusion: encoded once per autoencoder checkpoint, read back while
// the key (the autoencoder's training identity and step) is the same, written anew when it is not.
#include <filesystem>

#include <catch2/catch.hpp>

#include "difflab/plugin.hpp"
#include "engine/latent_data.hpp"
#include "support.hpp"

using namespace difflab;
namespace fs = std::filesystem;

TEST_CASE("the latent cache is reused for the same autoencoder and invalidated by another's hash", "[autoencoder]") {
  const auto dir = test::temp_dir("latent-cache");
  auto& registry = test::plugins();
  torch::manual_seed(3);
  auto vae = registry.make_autoencoder(
      "vae", resolve_options(registry.get(PluginKind::autoencoder, "vae").info.options,
                             {{"base_channels", std::int64_t{4}}, {"channel_mult", std::vector<std::int64_t>{1, 2}}}));
  auto gen = at::detail::createCPUGenerator(5);
  const DataSplit train{torch::rand({40, 1, 16, 16}, gen) * 2 - 1, torch::arange(40) % 10};
  const DataSplit test{torch::rand({12, 1, 16, 16}, gen) * 2 - 1, torch::arange(12) % 10};

  const auto key = latent_cache_key("0123456789abcdef", 80);
  const auto first = encode_dataset(*vae, train, test, dir, key, torch::kCPU);
  CHECK_FALSE(first.reused);
  REQUIRE(fs::exists(first.file));
  CHECK(first.train.x.sizes().vec() == std::vector<std::int64_t>{40, 2, 4, 4});
  CHECK(first.test.x.sizes().vec() == std::vector<std::int64_t>{12, 2, 4, 4});
  CHECK(torch::equal(first.train.labels, train.labels));
  // Scaled to unit variance over the train split (Rombach et al. 2022): std of the scaled is 1.
  CHECK(first.train.x.to(torch::kFloat64).std().item<double>() == Approx(1.0).epsilon(1e-5));
  {
    torch::NoGradGuard no_grad;
    vae->eval();
    const auto means = vae->encode(test.x).mean;
    CHECK(torch::allclose(first.test.x, means * first.scale, 1e-5, 1e-6));
    vae->train();
  }

  // The same key: read back, not encoded (the weights changed, the cache did not).
  const auto written = fs::last_write_time(first.file);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : vae->parameters()) p.add_(0.1);
  }
  const auto second = encode_dataset(*vae, train, test, dir, key, torch::kCPU);
  CHECK(second.reused);
  CHECK(fs::last_write_time(second.file) == written);
  CHECK(torch::equal(second.train.x, first.train.x));
  CHECK(second.scale == first.scale);

  // Another autoencoder (another hash) or another checkpoint: its own file, encoded again.
  const auto other = encode_dataset(*vae, train, test, dir, latent_cache_key("fedcba9876543210", 80), torch::kCPU);
  CHECK_FALSE(other.reused);
  CHECK(other.file != first.file);
  CHECK_FALSE(torch::equal(other.train.x, first.train.x));
  CHECK(latent_cache_key("0123456789abcdef", 80) != latent_cache_key("0123456789abcdef", 160));
}
