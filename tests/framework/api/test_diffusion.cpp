// DiffusionProcess: its tables against closed forms, and the conversions between predictions.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "difflab/diffusion.hpp"
#include "difflab/errors.hpp"
#include "difflab/sampler.hpp"

namespace {
using namespace difflab;

const std::vector<double> kBetas{0.1, 0.2, 0.3, 0.4, 0.5};

DiffusionProcess small_process() {
  return DiffusionProcess(torch::tensor(kBetas, torch::kFloat64), torch::kCPU);
}

// abar_t for 1-based t, with abar_0 = 1.
double alpha_bar(std::int64_t t) {
  double a = 1;
  for (std::int64_t s = 0; s < t; ++s) a *= 1 - kBetas[s];
  return a;
}

// Returns the model output a tensor of its own, ignoring time (for the guidance check).
class LabelEcho final : public Denoiser {
 public:
  torch::Tensor forward(const torch::Tensor& x_t, const torch::Tensor&,
                        const Conditioning& cond) override {
    if (!cond.labels.defined()) return torch::zeros_like(x_t);
    return cond.labels.to(x_t.dtype()).view({-1, 1}).expand_as(x_t);
  }
};

// A fixed x0 guess, emitted in whatever form `prediction` asks for.
class FixedGuess final : public Denoiser {
 public:
  FixedGuess(const DiffusionProcess& process, torch::Tensor x0, torch::Tensor noise,
             Prediction prediction)
      : process_(process), x0_(std::move(x0)), noise_(std::move(noise)), prediction_(prediction) {}
  torch::Tensor forward(const torch::Tensor&, const torch::Tensor& t,
                        const Conditioning&) override {
    return process_.target(prediction_, x0_, noise_, t);  // float t: fractional allowed
  }
  Prediction prediction() const override { return prediction_; }

 private:
  const DiffusionProcess& process_;
  torch::Tensor x0_, noise_;
  Prediction prediction_;
};

}  // namespace

TEST_CASE("DiffusionProcess tables match Ho et al. 2020 eqs. 4 and 7", "[diffusion]") {
  const auto process = small_process();
  const std::int64_t T = 5;
  REQUIRE(process.timesteps() == T);
  REQUIRE(process.betas().scalar_type() == torch::kFloat32);
  REQUIRE(process.alpha_bars_f64().scalar_type() == torch::kFloat64);

  for (std::int64_t t = 1; t <= T; ++t) {
    INFO("t = " << t);
    const std::int64_t i = t - 1;
    const double beta = kBetas[i], a = alpha_bar(t), a_prev = alpha_bar(t - 1);
    REQUIRE(process.alpha_bars_f64()[i].item<double>() == Approx(a).epsilon(1e-14));
    REQUIRE(process.alpha_bars()[i].item<double>() == Approx(a).epsilon(1e-6));
    REQUIRE(process.alpha_bars_prev()[i].item<double>() == Approx(a_prev).epsilon(1e-6));
    REQUIRE(process.alphas()[i].item<double>() == Approx(1 - beta).epsilon(1e-6));
    REQUIRE(process.sqrt_alpha_bars()[i].item<double>() == Approx(std::sqrt(a)).epsilon(1e-6));
    REQUIRE(process.sqrt_one_minus_alpha_bars()[i].item<double>() ==
            Approx(std::sqrt(1 - a)).epsilon(1e-6));
    REQUIRE(process.sigmas()[i].item<double>() == Approx(std::sqrt((1 - a) / a)).epsilon(1e-6));

    // q(x_{t-1} | x_t, x0) by conditioning the joint Gaussian of x_{t-1} = sqrt(a_prev) x0 +
    // sqrt(1 - a_prev) e1 and x_t = sqrt(1 - beta) x_{t-1} + sqrt(beta) e2 on x_t:
    // cov(x_{t-1}, x_t) = sqrt(1 - beta)(1 - a_prev), var(x_t) = 1 - a.
    const double gain = std::sqrt(1 - beta) * (1 - a_prev) / (1 - a);
    const double variance = (1 - a_prev) - gain * std::sqrt(1 - beta) * (1 - a_prev);
    // mean = sqrt(a_prev) x0 + gain (x_t - sqrt(a) x0): coefficients of x0 and x_t.
    const double coef_x0 = std::sqrt(a_prev) - gain * std::sqrt(a);
    REQUIRE(process.posterior_variance()[i].item<double>() == Approx(variance).margin(1e-7));
    REQUIRE(process.posterior_mean_coef_x0()[i].item<double>() == Approx(coef_x0).margin(1e-6));
    REQUIRE(process.posterior_mean_coef_xt()[i].item<double>() == Approx(gain).margin(1e-6));
    // Eq. 7 as printed.
    REQUIRE(variance == Approx((1 - a_prev) / (1 - a) * beta).epsilon(1e-12));
    REQUIRE(coef_x0 == Approx(std::sqrt(a_prev) * beta / (1 - a)).epsilon(1e-12));
  }
  // t = 1: the posterior is x0 itself.
  REQUIRE(process.posterior_variance()[0].item<double>() == 0);
  REQUIRE(process.posterior_mean_coef_x0()[0].item<double>() == Approx(1).epsilon(1e-6));
}

TEST_CASE("q_sample and posterior_mean follow the closed forms", "[diffusion]") {
  const auto process = small_process();
  torch::manual_seed(0);
  const auto x0 = torch::randn({5, 3, 2});
  const auto noise = torch::randn({5, 3, 2});
  const auto t = torch::arange(5, torch::kLong);  // one timestep per sample
  const auto x_t = process.q_sample(x0, t, noise);
  const auto posterior = process.posterior_mean(x0, x_t, t);
  REQUIRE(x_t.sizes() == x0.sizes());
  for (std::int64_t i = 0; i < 5; ++i) {
    INFO("t = " << i + 1);
    const double a = alpha_bar(i + 1), a_prev = alpha_bar(i);
    const double beta = kBetas[i];
    const auto expected_x_t = std::sqrt(a) * x0[i] + std::sqrt(1 - a) * noise[i];
    REQUIRE(torch::allclose(x_t[i], expected_x_t, 1e-5, 1e-6));
    // The mean of x_{t-1} given (x_t, x0), via Gaussian conditioning (see the test above).
    const double gain = std::sqrt(1 - beta) * (1 - a_prev) / (1 - a);
    const auto expected_mean = std::sqrt(a_prev) * x0[i] + gain * (x_t[i] - std::sqrt(a) * x0[i]);
    REQUIRE(torch::allclose(posterior[i], expected_mean, 1e-5, 1e-5));
  }
  // gather broadcasts a table against any batch shape.
  REQUIRE(DiffusionProcess::gather(process.betas(), t, x0).sizes() ==
          torch::IntArrayRef({5, 1, 1}));
}

TEST_CASE("prediction conversions invert each other for epsilon, x0 and v", "[diffusion]") {
  const auto process = small_process();
  torch::manual_seed(1);
  const auto x0 = torch::randn({5, 4});
  const auto noise = torch::randn({5, 4});
  const auto t = torch::arange(5, torch::kLong);
  const auto x_t = process.q_sample(x0, t, noise);
  for (const auto prediction : {Prediction::epsilon, Prediction::x0, Prediction::v}) {
    INFO(prediction_name(prediction));
    REQUIRE(parse_prediction(prediction_name(prediction)) == prediction);
    const auto output = process.target(prediction, x0, noise, t);
    REQUIRE(torch::allclose(process.to_epsilon(prediction, output, x_t, t), noise, 1e-4, 1e-4));
    REQUIRE(torch::allclose(process.to_x0(prediction, output, x_t, t), x0, 1e-4, 1e-4));
    // Back again: the recovered pair gives the same target.
    const auto round_trip = process.target(prediction, process.to_x0(prediction, output, x_t, t),
                                           process.to_epsilon(prediction, output, x_t, t), t);
    REQUIRE(torch::allclose(round_trip, output, 1e-4, 1e-4));
  }
  // v = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans & Ho 2022), checked at t = 3.
  const auto v = process.target(Prediction::v, x0, noise, t);
  const double a = alpha_bar(3);
  REQUIRE(torch::allclose(v[2], std::sqrt(a) * noise[2] - std::sqrt(1 - a) * x0[2], 1e-5, 1e-6));
  REQUIRE_THROWS_AS(parse_prediction("score"), InputError);
}

TEST_CASE("denoise gives the same epsilon and x0 whatever the model predicts", "[diffusion]") {
  const auto process = small_process();
  torch::manual_seed(2);
  const auto x0 = torch::randn({5, 2});
  const auto noise = torch::randn({5, 2});
  const auto t_index = torch::arange(5, torch::kLong);
  const auto x_t = process.q_sample(x0, t_index, noise);
  for (const auto prediction : {Prediction::epsilon, Prediction::x0, Prediction::v}) {
    INFO(prediction_name(prediction));
    FixedGuess model(process, x0, noise, prediction);
    const auto d = denoise(model, process, x_t, t_index.to(torch::kFloat32));
    REQUIRE(torch::allclose(d.epsilon, noise, 1e-4, 1e-4));
    REQUIRE(torch::allclose(d.x0, x0, 1e-4, 1e-4));
  }
}

TEST_CASE("denoise applies classifier-free guidance", "[diffusion]") {
  const auto process = small_process();
  LabelEcho model;
  const auto x_t = torch::zeros({3, 2});
  const auto t = torch::full({3}, 2.0);
  Conditioning cond{torch::tensor({1, 2, 3}, torch::kLong), 3.0};
  // uncond + w (cond - uncond) with uncond = 0: w times the label.
  const auto d = denoise(model, process, x_t, t, cond);
  const auto expected = torch::tensor({3.0f, 6.0f, 9.0f}).view({3, 1}).expand({3, 2});
  REQUIRE(torch::allclose(d.epsilon, expected));
  cond.guidance_scale = 1.0;
  REQUIRE(torch::allclose(denoise(model, process, x_t, t, cond).epsilon, expected / 3));
}

TEST_CASE("DiffusionProcess refuses betas outside (0, 1)", "[diffusion]") {
  REQUIRE_THROWS_AS(DiffusionProcess(torch::tensor({1.0, 0.1}, torch::kFloat64), torch::kCPU),
                    InputError);
  REQUIRE_THROWS_AS(DiffusionProcess(torch::tensor({0.1, 1.5}, torch::kFloat64), torch::kCPU),
                    InputError);
  // The last beta may be exactly 1: a zero terminal SNR (Lin et al. 2024).
  REQUIRE(DiffusionProcess(torch::tensor({0.1, 1.0}, torch::kFloat64), torch::kCPU).zero_terminal_snr());
  REQUIRE_THROWS_AS(DiffusionProcess(torch::tensor({0.0, 0.1}, torch::kFloat64), torch::kCPU),
                    InputError);
  REQUIRE_THROWS_AS(DiffusionProcess(torch::zeros({0}, torch::kFloat64), torch::kCPU), InputError);
}

TEST_CASE("continuous time: log-SNR linear between table entries, sigma and lambda inverse to t", "[diffusion]") {
  const auto process = small_process();
  const auto log_snr = [](double a) { return std::log(a / (1 - a)); };
  for (std::int64_t t = 0; t < 5; ++t) {
    INFO("t = " << t);
    const double a = alpha_bar(t + 1);
    CHECK(process.alpha_bar_at(double(t)) == a);  // whole t: the table itself
    CHECK(process.sigma_at(double(t)) == Approx(std::sqrt((1 - a) / a)).epsilon(1e-12));
    CHECK(process.lambda_at(double(t)) == Approx(0.5 * log_snr(a)).epsilon(1e-12));
    CHECK(process.t_from_sigma(process.sigma_at(double(t))) == Approx(double(t)).margin(1e-9));
  }
  // Between entries: the log-SNR a quarter of the way, and back.
  const double l = 0.75 * log_snr(alpha_bar(2)) + 0.25 * log_snr(alpha_bar(3));
  CHECK(process.alpha_bar_at(1.25) == Approx(1 / (1 + std::exp(-l))).epsilon(1e-12));
  CHECK(process.lambda_at(1.25) == Approx(0.5 * l).epsilon(1e-12));
  CHECK(process.t_from_lambda(0.5 * l) == Approx(1.25).epsilon(1e-12));
  CHECK(process.t_from_sigma(std::exp(-0.5 * l)) == Approx(1.25).epsilon(1e-12));
  // Outside the schedule's range t clamps to [0, T-1].
  CHECK(process.t_from_sigma(1e-9) == 0.0);
  CHECK(process.t_from_sigma(1e9) == 4.0);
  // The device tables interpolate the same way, in float32.
  const auto t = torch::tensor({0.0f, 1.25f, 3.0f, 3.5f});
  const auto abar = process.alpha_bar_at(t, torch::zeros({4, 2})).flatten();
  for (int i = 0; i < 4; ++i) {
    CHECK(abar[i].item<double>() == Approx(process.alpha_bar_at(t[i].item<double>())).epsilon(1e-6));
  }
}

TEST_CASE("denoise is exact at fractional t, not at a truncated timestep", "[diffusion]") {
  const auto process = small_process();
  const auto x0 = torch::tensor({{0.5f, -1.0f}});
  const auto noise = torch::tensor({{1.0f, 2.0f}});
  for (const double time : {0.5, 1.25, 2.75, 3.9}) {
    const double a = process.alpha_bar_at(time);
    const auto x_t = std::sqrt(a) * x0 + std::sqrt(1 - a) * noise;
    for (const auto prediction : {Prediction::epsilon, Prediction::x0, Prediction::v}) {
      INFO("t = " << time << ", " << prediction_name(prediction));
      FixedGuess model(process, x0, noise, prediction);
      const auto d = denoise(model, process, x_t, torch::full({1}, time, torch::kFloat32));
      CHECK(torch::allclose(d.x0, x0, 1e-4, 1e-5));
      CHECK(torch::allclose(d.epsilon, noise, 1e-4, 1e-5));
    }
  }
}

TEST_CASE("timestep spacings match diffusers' and Karras et al.'s formulas", "[diffusion][spacing]") {
  const auto process = DiffusionProcess(torch::linspace(1e-4, 0.02, 1000, torch::kFloat64), torch::kCPU);
  const auto spaced = [&](const std::string& spacing, std::int64_t steps, double rho = 7.0) {
    Options options({{"spacing", spacing}, {"rho", rho}, {"sigma_min", 0.0}, {"sigma_max", 0.0}});
    return TimestepSpacing::from(options).timesteps(process, steps, "test");
  };
  CHECK(spaced("leading", 10) == std::vector<double>{900, 800, 700, 600, 500, 400, 300, 200, 100, 0});
  CHECK(spaced("trailing", 10) == std::vector<double>{999, 899, 799, 699, 599, 499, 399, 299, 199, 99});
  CHECK(spaced("linspace", 10) == std::vector<double>{999, 888, 777, 666, 555, 444, 333, 222, 111, 0});
  CHECK(spaced("trailing", 3) == std::vector<double>{999, 666, 332});  // round(1000 - i 333.3) - 1
  // Karras et al. 2022, eq. 5 from the schedule's sigma_max to its sigma_min.
  const double s_min = process.sigma_at(0.0), s_max = process.sigma_at(999.0);
  const auto karras = spaced("karras", 5);
  for (int i = 0; i < 5; ++i) {
    const double a = std::pow(s_max, 1 / 7.0), b = std::pow(s_min, 1 / 7.0);
    CHECK(process.sigma_at(karras[i]) == Approx(std::pow(a + i / 4.0 * (b - a), 7.0)).epsilon(1e-9));
  }
  const auto exponential = spaced("exponential", 5);
  for (int i = 0; i < 5; ++i) {
    CHECK(std::log(process.sigma_at(exponential[i])) ==
          Approx(std::log(s_max) + i / 4.0 * (std::log(s_min) - std::log(s_max))).epsilon(1e-9));
  }
  CHECK_THROWS_WITH(spaced("trailing", 1001), Catch::Contains("test: steps (1001) must lie in 1..1000"));
  Options too_low({{"spacing", std::string("karras")}, {"rho", 7.0}, {"sigma_min", 1e-5}, {"sigma_max", 0.0}});
  CHECK_THROWS_WITH(TimestepSpacing::from(too_low).timesteps(process, 5, "test"),
                    Catch::Contains("sigma_min") && Catch::Contains("the schedule's range"));
}
