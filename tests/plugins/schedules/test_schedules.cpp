// The noise schedule plugins: every beta against its closed form, computed here independently.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <set>

#include "difflab/errors.hpp"
#include "support.hpp"

namespace {
using namespace difflab;

constexpr double kPi = 3.14159265358979323846;
constexpr double kTolerance = 1e-12;

Options schedule_options(const std::string& name, std::map<std::string, OptionValue> given) {
  const auto& entry = test::plugins().get(PluginKind::schedule, name);
  return resolve_options(entry.info.options, std::move(given), "schedule '" + name + "'");
}

torch::Tensor betas_of(const std::string& name, std::map<std::string, OptionValue> given = {}) {
  return test::plugins().make_schedule(name, schedule_options(name, std::move(given)))->betas();
}

// Length T, float64 on the CPU, each beta in (0, 1).
void check_shape_and_range(const torch::Tensor& betas, std::int64_t timesteps) {
  REQUIRE(betas.scalar_type() == torch::kFloat64);
  REQUIRE(betas.device().is_cpu());
  REQUIRE(betas.dim() == 1);
  REQUIRE(betas.size(0) == timesteps);
  REQUIRE(betas.gt(0).all().item<bool>());
  REQUIRE(betas.lt(1).all().item<bool>());
}

bool non_decreasing(const torch::Tensor& betas) {
  return betas.slice(0, 1).ge(betas.slice(0, 0, -1)).all().item<bool>();
}

bool strictly_increasing(const torch::Tensor& betas) {
  return betas.slice(0, 1).gt(betas.slice(0, 0, -1)).all().item<bool>();
}

// beta_t at 1-based timesteps t of a schedule with T steps, from the closed form.
void check_closed_form(const torch::Tensor& betas, std::int64_t timesteps,
                       const std::function<double(double t)>& closed_form) {
  const auto b = betas.accessor<double, 1>();
  const std::int64_t T = timesteps;
  for (std::int64_t t : {std::int64_t{1}, std::int64_t{2}, T / 2, T - 1, T}) {
    if (t < 1) continue;
    INFO("t = " << t << " of " << timesteps);
    REQUIRE(b[t - 1] == Approx(closed_form(double(t))).margin(kTolerance).epsilon(0));
  }
}

// Nichol & Dhariwal 2021, eq. 17.
double cosine_f(double t, double timesteps, double s) {
  const double c = std::cos((t / timesteps + s) / (1 + s) * kPi / 2);
  return c * c;
}

}  // namespace

TEST_CASE("linear schedule matches beta_1 + (beta_T - beta_1)(t - 1)/(T - 1)", "[schedules]") {
  for (std::int64_t T : {10, 1000}) {
    const auto betas = betas_of("linear", {{"timesteps", T}});
    check_shape_and_range(betas, T);
    REQUIRE(strictly_increasing(betas));
    check_closed_form(betas, T, [&](double t) { return 1e-4 + (0.02 - 1e-4) * (t - 1) / (T - 1); });
    REQUIRE(betas[0].item<double>() == Approx(1e-4).margin(kTolerance));
    REQUIRE(betas[T - 1].item<double>() == Approx(0.02).margin(kTolerance));
  }
}

TEST_CASE("cosine_beta schedule matches b0 + (b1 - b0)(1 - cos(pi t / 2T))", "[schedules]") {
  const double b0 = 1e-3, b1 = 0.05;
  for (std::int64_t T : {10, 1000}) {
    const auto betas =
        betas_of("cosine_beta", {{"timesteps", T}, {"beta_start", b0}, {"beta_end", b1}});
    check_shape_and_range(betas, T);
    REQUIRE(strictly_increasing(betas));
    check_closed_form(betas, T, [&](double t) {
      return b0 + (b1 - b0) * (1 - std::cos(kPi * t / (2.0 * T)));
    });
    REQUIRE(betas[T - 1].item<double>() == Approx(b1).margin(kTolerance));  // cos(pi/2) = 0
  }
}

// The study writes quadratic as b0 + (b1 - b0)(t/T)^2; Ho et al.'s "quad" is scaled_linear.
TEST_CASE("quadratic schedule matches the study's b0 + (b1 - b0)(t/T)^2", "[schedules]") {
  for (std::int64_t T : {10, 1000}) {
    const auto betas = betas_of("quadratic", {{"timesteps", T}});
    check_shape_and_range(betas, T);
    REQUIRE(strictly_increasing(betas));
    check_closed_form(betas, T, [&](double t) { return 1e-4 + (0.02 - 1e-4) * (t / T) * (t / T); });
    REQUIRE(betas[T - 1].item<double>() == Approx(0.02).margin(kTolerance));
  }
  // The two formulas are different schedules: abar at t = 500 of 1000 is 0.414 against 0.333.
  const auto abar = [](const torch::Tensor& b) { return torch::cumprod(1 - b, 0)[499].item<double>(); };
  REQUIRE(abar(betas_of("quadratic")) == Approx(0.414).margin(5e-4));
  REQUIRE(abar(betas_of("scaled_linear")) == Approx(0.333).margin(5e-4));
}

TEST_CASE("scaled_linear schedule matches (sqrt b0 + (sqrt b1 - sqrt b0)(t - 1)/(T - 1))^2",
          "[schedules]") {
  for (std::int64_t T : {10, 1000}) {
    const auto betas = betas_of("scaled_linear", {{"timesteps", T}});
    check_shape_and_range(betas, T);
    REQUIRE(strictly_increasing(betas));
    check_closed_form(betas, T, [&](double t) {
      const double root = std::sqrt(1e-4) + (std::sqrt(0.02) - std::sqrt(1e-4)) * (t - 1) / (T - 1);
      return root * root;
    });
    REQUIRE(betas[0].item<double>() == Approx(1e-4).margin(kTolerance));
    REQUIRE(betas[T - 1].item<double>() == Approx(0.02).margin(kTolerance));
  }
}

TEST_CASE("exponential schedule matches the study's b0 (b1 / b0)^(t/T)", "[schedules]") {
  for (std::int64_t T : {10, 1000}) {
    const auto betas = betas_of("exponential", {{"timesteps", T}});
    check_shape_and_range(betas, T);
    REQUIRE(strictly_increasing(betas));
    check_closed_form(betas, T, [&](double t) { return 1e-4 * std::pow(0.02 / 1e-4, t / T); });
    // Geometric: a constant ratio between neighbours.
    const auto ratios = betas.slice(0, 1) / betas.slice(0, 0, -1);
    const double expected_ratio = std::pow(0.02 / 1e-4, 1.0 / T);
    REQUIRE(torch::allclose(ratios, torch::full_like(ratios, expected_ratio), 1e-12, 0));
  }
  // t = T = 1: the single step is beta_end, as the study's t/T = 1 says.
  const auto single = betas_of("exponential", {{"timesteps", std::int64_t{1}}});
  check_shape_and_range(single, 1);
  REQUIRE(single[0].item<double>() == Approx(0.02).margin(kTolerance));
}

TEST_CASE("cosine schedule gives alpha bar = f(t)/f(0) (Nichol & Dhariwal eq. 17)", "[schedules]") {
  for (std::int64_t T : {10, 1000}) {
    const auto betas = betas_of("cosine", {{"timesteps", T}});
    check_shape_and_range(betas, T);
    REQUIRE(non_decreasing(betas));
    const double s = 0.008;
    check_closed_form(betas, T, [&](double t) {
      return std::min(1 - cosine_f(t, T, s) / cosine_f(t - 1, T, s), 0.999);
    });
    // Below the cap, the cumulative product recovers f(t)/f(0) itself.
    const auto alpha_bars = torch::cumprod(1 - betas, 0);
    const auto a = alpha_bars.accessor<double, 1>();
    for (std::int64_t t : {std::int64_t{1}, std::int64_t{2}, T / 2, T - 1}) {
      INFO("t = " << t << " of " << T);
      REQUIRE(a[t - 1] == Approx(cosine_f(t, T, s) / cosine_f(0, T, s)).epsilon(1e-10));
    }
    // f(T) = 0 would make beta_T = 1: the cap holds it at max_beta.
    REQUIRE(betas[T - 1].item<double>() == 0.999);
  }
  const auto capped = betas_of("cosine", {{"timesteps", std::int64_t{50}}, {"max_beta", 0.1}});
  REQUIRE(capped.max().item<double>() == 0.1);
  const auto wider = betas_of("cosine", {{"timesteps", std::int64_t{50}}, {"s", 0.1}});
  check_closed_form(wider, 50, [&](double t) {
    return std::min(1 - cosine_f(t, 50, 0.1) / cosine_f(t - 1, 50, 0.1), 0.999);
  });
}

TEST_CASE("sigmoid schedule matches b0 + (b1 - b0) sigmoid(linspace(start, end, T))",
          "[schedules]") {
  for (std::int64_t T : {10, 1000}) {
    const auto betas = betas_of("sigmoid", {{"timesteps", T}});
    check_shape_and_range(betas, T);
    REQUIRE(strictly_increasing(betas));
    check_closed_form(betas, T, [&](double t) {
      const double x = -6 + 12 * (t - 1) / (T - 1);
      return 1e-4 + (0.02 - 1e-4) / (1 + std::exp(-x));
    });
    // sigmoid(x) + sigmoid(-x) = 1: a symmetric logit range gives beta_t + beta_{T+1-t} = b0 + b1.
    const auto sums = betas + betas.flip(0);
    REQUIRE(torch::allclose(sums, torch::full_like(sums, 1e-4 + 0.02), 0, 1e-15));
  }
  const auto shifted = betas_of("sigmoid", {{"timesteps", std::int64_t{20}}, {"start", -2.0},
                                            {"end", 3.0}});
  check_closed_form(shifted, 20, [&](double t) {
    return 1e-4 + (0.02 - 1e-4) / (1 + std::exp(-(-2 + 5 * (t - 1) / 19)));
  });
  REQUIRE_THROWS_AS(betas_of("sigmoid", {{"start", 1.0}, {"end", -1.0}}), InputError);
}

TEST_CASE("the GMM study's schedules take the same keys, so a sweep can swap them", "[schedules]") {
  const std::set<std::string> keys{"timesteps", "beta_start", "beta_end"};
  for (const std::string name : {"linear", "cosine_beta", "quadratic", "exponential", "scaled_linear"}) {
    INFO(name);
    std::set<std::string> declared;
    for (const auto& spec : test::plugins().get(PluginKind::schedule, name).info.options) {
      declared.insert(spec.name);
    }
    REQUIRE(declared == keys);
    const auto betas = betas_of(name, {{"timesteps", std::int64_t{100}}, {"beta_start", 1e-3},
                                       {"beta_end", 0.05}});
    check_shape_and_range(betas, 100);
    // Every schedule of the study starts near beta_start (exponential's t/T = 1/100 puts beta_1
    // 4% above it) and ends at beta_end.
    REQUIRE(betas[0].item<double>() == Approx(1e-3).epsilon(0.05));
    REQUIRE(betas[99].item<double>() == Approx(0.05).margin(kTolerance));

    // Equal ends give a constant schedule; swapped ends are refused, naming both values.
    const auto flat = betas_of(name, {{"timesteps", std::int64_t{5}}, {"beta_start", 0.01},
                                      {"beta_end", 0.01}});
    REQUIRE(torch::allclose(flat, torch::full_like(flat, 0.01), 0, kTolerance));
    REQUIRE_THROWS_WITH(betas_of(name, {{"beta_start", 0.02}, {"beta_end", 1e-4}}),
                        Catch::Contains("beta_start (0.02) exceeds beta_end (0.0001)"));
    REQUIRE_THROWS_AS(betas_of(name, {{"beta_end", 1.0}}), InputError);
    REQUIRE_THROWS_AS(betas_of(name, {{"timesteps", std::int64_t{0}}}), InputError);
  }
}

TEST_CASE("every schedule gives a usable single-step schedule", "[schedules]") {
  for (const std::string name :
       {"linear", "cosine_beta", "quadratic", "scaled_linear", "exponential", "cosine", "sigmoid"}) {
    INFO(name);
    check_shape_and_range(betas_of(name, {{"timesteps", std::int64_t{1}}}), 1);
  }
}
