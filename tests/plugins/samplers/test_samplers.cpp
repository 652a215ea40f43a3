// The sampler plugins, driven by an oracle denoiser that knows the exact answer for Gaussian data.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "difflab/errors.hpp"
#include "plugins/samplers/gaussian_oracle.hpp"

namespace {
using namespace difflab;

using test::GaussianOracle;
using test::linear_process;
using test::make_sampler;
using test::run;
using test::standard_noise;
using Case = test::SamplerCase;

const std::vector<Case>& all_samplers() {
  static const std::vector<Case> cases{
      {"ddpm", {{"variance", std::string("beta")}}},
      {"ddpm", {{"variance", std::string("posterior")}}},
      {"ddpm_x0", {}},
      {"ddpm_x0", {{"variance", std::string("beta")}}},
      {"ddim", {{"steps", std::int64_t{50}}, {"eta", 0.0}}},
      {"ddim", {{"steps", std::int64_t{20}}, {"eta", 1.0}}},
      {"euler", {}},
      {"euler_ancestral", {}},
      {"heun", {}},
      {"heun", {{"S_churn", 2.0}}},
      {"plms", {}},
      {"dpmpp_2m", {}},
      {"dpmpp_2m_sde", {}},
      {"dpmpp_3m_sde", {}},
      {"unipc", {}},
      {"unipc", {{"order", std::int64_t{3}}}},
  };
  return cases;
}

}  // namespace

TEST_CASE("every sampler lands on the data when the data is a single point", "[samplers]") {
  const auto process = linear_process(100, 0.2);
  const auto x_T = standard_noise(64, 2, 0);
  const auto mu = torch::tensor({1.5f, -0.5f}).expand({64, 2});
  for (const auto& c : all_samplers()) {
    for (const auto prediction : {Prediction::epsilon, Prediction::x0, Prediction::v}) {
      INFO(c.describe() << ", model predicts " << prediction_name(prediction));
      GaussianOracle oracle(process, {1.5, -0.5}, 0.0, prediction);
      const auto x0 = run(*make_sampler(c.name, c.options), oracle, process, x_T, 1);
      REQUIRE(x0.sizes() == x_T.sizes());
      REQUIRE((x0 - mu).abs().max().item<double>() < 1e-3);
    }
  }
}

TEST_CASE("samplers reproduce the spread of Gaussian data", "[samplers]") {
  const double s = 0.5;
  const auto process = linear_process(1000, 0.02);  // Ho et al. 2020's schedule
  const auto x_T = standard_noise(5000, 2, 3);
  const std::vector<Case> cases{
      {"ddpm", {{"variance", std::string("beta")}}},
      {"ddpm", {{"variance", std::string("posterior")}}},
      {"ddpm_x0", {}},
      {"ddim", {{"steps", std::int64_t{1000}}, {"eta", 0.0}}},
  };
  for (const auto& c : cases) {
    INFO(c.describe());
    GaussianOracle oracle(process, {1.0, -2.0}, s);
    const auto x0 = run(*make_sampler(c.name, c.options), oracle, process, x_T, 4);
    const auto mean = x0.mean(0);
    const double std = (x0 - mean).std().item<double>();  // both dimensions pooled
    CAPTURE(mean, std);
    REQUIRE(mean[0].item<double>() == Approx(1.0).margin(0.03));
    REQUIRE(mean[1].item<double>() == Approx(-2.0).margin(0.03));
    REQUIRE(std == Approx(s).epsilon(0.03));
  }
}

TEST_CASE("ddim with eta = 0 is the deterministic map of Song et al. eq. 12", "[samplers]") {
  const double s = 0.5;
  const std::int64_t T = 1000, steps = 50;
  const auto process = linear_process(T, 0.02);
  GaussianOracle oracle(process, {0.0, 0.0}, s);
  const auto ddim = make_sampler("ddim", {{"steps", steps}, {"eta", 0.0}, {"spacing", std::string("leading")}});
  const auto x_T = standard_noise(256, 2, 5);

  // For N(0, s^2) data every step scales x by (sqrt(a_prev a) s^2 + sqrt((1 - a_prev)(1 - a)))
  // / (a s^2 + 1 - a), on the leading timesteps i floor(T / steps) of the DDIM paper.
  const auto alpha_bars = process.alpha_bars_f64().accessor<double, 1>();
  double scale = 1;
  for (std::int64_t i = steps - 1; i >= 0; --i) {
    const double a = alpha_bars[i * T / steps];
    const double a_prev = i > 0 ? alpha_bars[(i - 1) * T / steps] : 1.0;
    const double numerator = std::sqrt(a_prev * a) * s * s + std::sqrt((1 - a_prev) * (1 - a));
    scale *= numerator / (a * s * s + 1 - a);
  }
  const auto x0 = run(*ddim, oracle, process, x_T, 6);
  REQUIRE(torch::allclose(x0, scale * x_T, 1e-4, 1e-5));
  // Fifty steps shrink the spread a little (0.47 instead of 0.5): discretisation, not a bug.
  REQUIRE(scale == Approx(0.4724).margin(1e-3));

  // Another generator, the same samples: eta = 0 draws no noise.
  REQUIRE(torch::equal(x0, run(*ddim, oracle, process, x_T, 7)));
  const auto noisy = make_sampler("ddim", {{"steps", steps}, {"eta", 0.5}, {"spacing", std::string("leading")}});
  REQUIRE_FALSE(torch::allclose(run(*noisy, oracle, process, x_T, 6),
                                run(*noisy, oracle, process, x_T, 7)));
}

TEST_CASE("ddpm draws its noise from the context's generator", "[samplers]") {
  const auto process = linear_process(50, 0.3);
  GaussianOracle oracle(process, {0.0, 0.0}, 1.0);
  const auto x_T = standard_noise(32, 2, 0);
  for (const std::string name : {"ddpm", "ddpm_x0"}) {
    INFO(name);
    const auto sampler = make_sampler(name);
    const auto a = run(*sampler, oracle, process, x_T, 1);
    REQUIRE(torch::equal(a, run(*sampler, oracle, process, x_T, 1)));
    REQUIRE_FALSE(torch::allclose(a, run(*sampler, oracle, process, x_T, 2)));
  }
}

TEST_CASE("samplers that should agree do, step for step", "[samplers]") {
  const auto process = linear_process(100, 0.2);
  GaussianOracle oracle(process, {0.3, -0.7}, 0.8);
  const auto x_T = standard_noise(128, 2, 8);
  const auto sample = [&](const std::string& name, std::map<std::string, OptionValue> options) {
    return run(*make_sampler(name, std::move(options)), oracle, process, x_T, 9);
  };
  const auto ddpm_beta = sample("ddpm", {{"variance", std::string("beta")}});
  const auto ddpm_posterior = sample("ddpm", {{"variance", std::string("posterior")}});
  REQUIRE_FALSE(torch::allclose(ddpm_beta, ddpm_posterior));
  // DDIM with eta = 1 on every timestep is DDPM with the posterior variance (Song et al. sec. 4.1).
  REQUIRE(torch::allclose(sample("ddim", {{"steps", std::int64_t{100}}, {"eta", 1.0}}),
                          ddpm_posterior, 1e-4, 1e-4));
  // The posterior mean of the predicted x0 is the epsilon-form mean of Algorithm 2.
  REQUIRE(torch::allclose(sample("ddpm_x0", {{"variance", std::string("beta")}}), ddpm_beta, 1e-4,
                          1e-4));
  REQUIRE(torch::allclose(sample("ddpm_x0", {}), ddpm_posterior, 1e-4, 1e-4));
  // A clip far outside the data changes nothing.
  REQUIRE(torch::allclose(sample("ddpm", {{"clip_x0", true}, {"clip_range", 1e3}}), ddpm_beta, 1e-4, 1e-4));
  REQUIRE(torch::allclose(sample("ddim", {{"steps", std::int64_t{100}}, {"eta", 1.0}, {"clip_x0", true},
                                          {"clip_range", 1e3}}),
                          ddpm_posterior, 1e-4, 1e-4));
}

TEST_CASE("clip_x0 keeps the predicted x0 inside [-clip_range, clip_range]", "[samplers]") {
  const auto process = linear_process(100, 0.2);
  const auto x_T = standard_noise(16, 2, 0);
  for (const std::string name : {"ddpm", "ddpm_x0", "ddim"}) {
    INFO(name);
    GaussianOracle oracle(process, {3.0, -3.0}, 0.0);
    const auto clipped = run(*make_sampler(name, {{"clip_x0", true}}), oracle, process, x_T, 1);
    // The last step returns the clipped x0 itself.
    REQUIRE(torch::allclose(clipped, torch::tensor({1.0f, -1.0f}).expand({16, 2}), 0, 1e-5));
    const auto wider = run(*make_sampler(name, {{"clip_x0", true}, {"clip_range", 2.0}}), oracle, process, x_T, 1);
    REQUIRE(torch::allclose(wider, torch::tensor({2.0f, -2.0f}).expand({16, 2}), 0, 1e-5));
    const auto free = run(*make_sampler(name), oracle, process, x_T, 1);
    REQUIRE(torch::allclose(free, torch::tensor({3.0f, -3.0f}).expand({16, 2}), 0, 1e-3));
  }
}

TEST_CASE("ddim with clip_x0 steps from the clipped x0 and the epsilon it implies", "[samplers]") {
  const std::int64_t T = 100, steps = 10;
  const auto process = linear_process(T, 0.2);
  GaussianOracle oracle(process, {3.0, -3.0}, 0.0);  // predicts x0 = (3, -3), outside [-1, 1]
  const auto x_T = standard_noise(8, 2, 2);
  const auto alpha_bars = process.alpha_bars_f64().accessor<double, 1>();
  const auto c = torch::tensor({1.0, -1.0}, torch::kDouble);  // the clipped x0
  // improved-diffusion's ddim_sample: eps' = (x_t - sqrt(a) c) / sqrt(1 - a), then Song et al.
  // eq. 12 with eta = 0: x_prev = sqrt(a_prev) c + sqrt(1 - a_prev) eps'.
  std::vector<torch::Tensor> expected;
  auto x = x_T.to(torch::kDouble);
  for (std::int64_t i = steps - 1; i >= 0; --i) {
    const double a = alpha_bars[i * T / steps];
    const double a_prev = i > 0 ? alpha_bars[(i - 1) * T / steps] : 1.0;
    x = std::sqrt(a_prev) * c + std::sqrt(1 - a_prev) * (x - std::sqrt(a) * c) / std::sqrt(1 - a);
    expected.push_back(x);
  }
  std::vector<torch::Tensor> seen;
  const auto record = [&](std::int64_t, const torch::Tensor& x_prev) { seen.push_back(x_prev.clone()); };
  const auto ddim = make_sampler("ddim", {{"steps", steps}, {"clip_x0", true}, {"spacing", std::string("leading")}});
  const auto x0 = run(*ddim, oracle, process, x_T, 0, record);
  REQUIRE(seen.size() == expected.size());
  for (std::size_t k = 0; k < seen.size(); ++k) {
    INFO("step " << k);
    REQUIRE(torch::allclose(seen[k].to(torch::kDouble), expected[k], 1e-4, 1e-4));
  }
  // First step by hand for one coordinate: a = abar[90], a_prev = abar[80].
  const double a = alpha_bars[90], a_prev = alpha_bars[80], x_t = x_T[0][0].item<double>();
  const double eps = (x_t - std::sqrt(a) * 1.0) / std::sqrt(1 - a);
  REQUIRE(seen[0][0][0].item<double>() == Approx(std::sqrt(a_prev) + std::sqrt(1 - a_prev) * eps).epsilon(1e-5));
  REQUIRE(torch::allclose(x0, c.to(torch::kFloat).expand({8, 2}), 0, 1e-5));
  // Without clipping the same denoiser lands on its own x0, (3, -3).
  const auto free = run(*make_sampler("ddim", {{"steps", steps}, {"spacing", std::string("leading")}}), oracle,
                        process, x_T, 0);
  REQUIRE(torch::allclose(free, torch::tensor({3.0f, -3.0f}).expand({8, 2}), 0, 1e-4));
}

TEST_CASE("samplers visit the timesteps they promise and report each step", "[samplers]") {
  const std::int64_t T = 10;
  const auto process = linear_process(T, 0.5);
  const auto x_T = standard_noise(4, 2, 0);
  const auto check = [&](const Sampler& sampler, const std::vector<double>& expected) {
    GaussianOracle oracle(process, {0.0, 0.0}, 1.0);
    std::vector<std::int64_t> steps;
    torch::Tensor last;
    const auto record = [&](std::int64_t step, const torch::Tensor& x) {
      steps.push_back(step);
      last = x.clone();
    };
    const auto x0 = run(sampler, oracle, process, x_T, 0, record);
    REQUIRE(oracle.seen == expected);
    REQUIRE(std::int64_t(steps.size()) == sampler.steps(T));
    for (std::size_t i = 0; i < steps.size(); ++i) REQUIRE(steps[i] == std::int64_t(i));
    REQUIRE(torch::equal(last, x0));
  };
  check(*make_sampler("ddpm"), {9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
  check(*make_sampler("ddpm_x0"), {9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
  const std::string leading = "leading", trailing = "trailing", linspace = "linspace";
  // diffusers' set_timesteps: leading i floor(T/S); trailing round(T - i T/S) - 1; linspace
  // round(linspace(0, T-1, S)), numpy rounding half to even (4.5 -> 4).
  check(*make_sampler("ddim", {{"steps", std::int64_t{5}}, {"spacing", leading}}), {8, 6, 4, 2, 0});
  check(*make_sampler("ddim", {{"steps", std::int64_t{3}}, {"spacing", leading}}), {6, 3, 0});
  check(*make_sampler("ddim", {{"steps", std::int64_t{5}}}), {9, 7, 5, 3, 1});  // trailing, the default
  check(*make_sampler("ddim", {{"steps", std::int64_t{3}}, {"spacing", trailing}}), {9, 6, 2});
  check(*make_sampler("ddim", {{"steps", std::int64_t{3}}, {"spacing", linspace}}), {9, 4, 0});
  check(*make_sampler("ddpm", {{"steps", std::int64_t{4}}, {"spacing", leading}}), {6, 4, 2, 0});
  check(*make_sampler("ddim", {{"steps", std::int64_t{10}}, {"eta", 1.0}}),
        {9, 8, 7, 6, 5, 4, 3, 2, 1, 0});

  REQUIRE(make_sampler("ddpm")->steps(1000) == 1000);
  REQUIRE(make_sampler("ddpm_x0")->steps(1000) == 1000);
  REQUIRE(make_sampler("ddim")->steps(1000) == 50);
  REQUIRE(make_sampler("ddim", {{"steps", std::int64_t{50}}})->steps(20) == 50);  // refused by validation
}

TEST_CASE("sampler options are checked", "[samplers]") {
  const auto process = linear_process(10, 0.5);
  GaussianOracle oracle(process, {0.0, 0.0}, 1.0);
  REQUIRE_THROWS_WITH(run(*make_sampler("ddim", {{"steps", std::int64_t{50}}}), oracle, process,
                          standard_noise(4, 2, 0), 0),
                      Catch::Contains("ddim: steps (50) must lie in 1..10, the schedule's timesteps"));
  REQUIRE_THROWS_AS(make_sampler("ddim", {{"eta", -0.1}}), InputError);
  REQUIRE_THROWS_AS(make_sampler("ddim", {{"steps", std::int64_t{0}}}), InputError);
  REQUIRE_THROWS_AS(make_sampler("ddpm", {{"variance", std::string("fixed")}}), InputError);
  REQUIRE_THROWS_AS(make_sampler("ddpm_x0", {{"clip_range", -1.0}}), InputError);
  REQUIRE_THROWS_AS(make_sampler("ddim", {{"clip_range", 0.0}}), InputError);
}
