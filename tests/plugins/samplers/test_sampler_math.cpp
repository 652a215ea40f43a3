// Every sampler against mathematics: the exact denoiser of Gaussian data makes the probability-
// flow ODE's solution and the data distribution known, so each sampler's convergence order, its
// spread and its identities with other samplers are checked against closed forms.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <set>
#include <vector>

#include "plugins/samplers/gaussian_oracle.hpp"

namespace {
using namespace difflab;
using test::GaussianOracle;
using test::make_sampler;
using test::run;
using test::SamplerCase;
using test::standard_noise;

const std::string kLeading = "leading";
const std::vector<double> kMean = {1.0, -2.0};
constexpr double kStd = 0.5;

// Every in-tree sampler in its default form (options as a user would write them).
std::vector<SamplerCase> every_sampler(std::int64_t steps) {
  return {{"ddpm", {{"steps", steps}}},
          {"ddpm_x0", {{"steps", steps}}},
          {"ddim", {{"steps", steps}}},
          {"ddim", {{"steps", steps}, {"eta", 1.0}}},
          {"euler", {{"steps", steps}}},
          {"euler_ancestral", {{"steps", steps}}},
          {"heun", {{"steps", steps}}},
          {"heun", {{"steps", steps}, {"S_churn", 0.15 * double(steps)}}},  // gamma 0.15, as EDM's ImageNet runs
          {"plms", {{"steps", steps}}},
          {"dpmpp_2m", {{"steps", steps}}},
          {"dpmpp_2m_sde", {{"steps", steps}}},
          {"dpmpp_3m_sde", {{"steps", steps}}},
          {"unipc", {{"steps", steps}}}};
}

const std::vector<std::string>& in_tree_schedules() {
  static const std::vector<std::string> names{"linear", "quadratic", "scaled_linear", "cosine",
                                              "cosine_beta", "sigmoid", "exponential"};
  return names;
}

// The least-squares slope of log(error) against log(steps): the order p of error ~ steps^-p.
double fitted_order(const std::vector<std::int64_t>& steps, const std::vector<double>& errors) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  const double n = static_cast<double>(steps.size());
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const double x = std::log(double(steps[i])), y = std::log(errors[i]);
    sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  return -(n * sxy - sx * sy) / (n * sxx - sx * sx);
}

struct Moments {
  double mean0, mean1, std;
};

Moments moments(const torch::Tensor& x) {
  const auto mean = x.to(torch::kFloat64).mean(0);
  return {mean[0].item<double>(), mean[1].item<double>(), (x.to(torch::kFloat64) - mean).std().item<double>()};
}

// Few steps are far from the exact answer for a Gaussian narrower than the noise (s = 0.5): the
// first-order samplers shrink its spread by up to a third at 10 steps, a quarter at 20 (the
// discretisation error). A sampler broken on a schedule is far outside: the old example Heun's
// spread was 15 times too wide on cosine.
void check_near_data(const Moments& m, std::int64_t steps) {
  const double spread = steps <= 10 ? 0.4 : 0.3;
  CHECK(std::abs(m.mean0 - kMean[0]) < 0.1 * kStd);
  CHECK(std::abs(m.mean1 - kMean[1]) < 0.1 * kStd);
  CHECK(m.std > (1 - spread) * kStd);
  CHECK(m.std < (1 + spread) * kStd);
}

}  // namespace

TEST_CASE("ODE samplers converge to the exact probability-flow solution at their order", "[samplers][order]") {
  const auto process = test::linear_process(1000, 0.02);
  const auto x_T = standard_noise(256, 2, 11);
  struct Solver {
    SamplerCase sampler;
    double order;  // the paper's
  };
  const std::vector<Solver> solvers{
      {{"ddim", {}}, 1},
      {{"euler", {}}, 1},
      {{"heun", {}}, 2},
      {{"dpmpp_2m", {}}, 2},
      {{"unipc", {}}, 3},  // UniPC-2 with the UniC corrector: order 3 (Zhao et al. 2023, sec. 3.3)
      {{"dpmpp_3m_sde", {{"eta", 0.0}}}, 3},
      {{"plms", {}}, 2},
  };
  // On karras spacing from the schedule's sigma_max to its sigma_min (smooth in log sigma, and the
  // same end for every step count), measured where the last model call is made, before the final
  // step to the data: that step (x0 of the last call) has an error of its own.
  const std::vector<std::int64_t> steps{10, 20, 40, 80};
  for (const auto& s : solvers) {
    std::vector<double> errors;
    for (const auto n : steps) {
      auto options = s.sampler.options;
      options["steps"] = n;
      options["spacing"] = std::string("karras");
      options["sigma_max"] = 0.0;  // the schedule's (heun's own default is 80)
      GaussianOracle oracle(process, kMean, kStd);
      torch::Tensor before_last;
      run(*make_sampler(s.sampler.name, options), oracle, process, x_T, 0, [&](std::int64_t step, const torch::Tensor& x) {
        if (step == n - 2) before_last = x.clone();
      });
      const double last_t = oracle.seen.back();  // the last timestep visited
      const auto exact = oracle.ode_solution(x_T, double(process.timesteps() - 1), last_t);
      errors.push_back((before_last.to(torch::kFloat64) - exact).abs().max().item<double>());
    }
    const double order = fitted_order(steps, errors);
    std::printf("convergence order of %-22s %.2f (paper %.0f); max error at %lld steps %.2e, at %lld steps %.2e\n",
                s.sampler.describe().c_str(), order, s.order, static_cast<long long>(steps.front()), errors.front(),
                static_cast<long long>(steps.back()), errors.back());
    INFO(s.sampler.describe() << ": fitted order " << order);
    CHECK(order > s.order - 0.35);
  }
}

TEST_CASE("stochastic samplers reproduce the Gaussian data distribution", "[samplers]") {
  const auto process = test::linear_process(1000, 0.02);
  const auto x_T = standard_noise(20000, 2, 12);
  // On every timestep (1000 steps), where the discretisation error is below the sampling error.
  const std::int64_t all = 1000;
  const std::vector<SamplerCase> cases{
      {"ddpm", {}},
      {"ddpm", {{"steps", std::int64_t{100}}}},
      {"ddpm_x0", {{"steps", std::int64_t{100}}, {"variance", std::string("beta")}}},
      {"ddim", {{"steps", all}, {"eta", 1.0}}},
      {"euler_ancestral", {{"steps", all}}},
      {"heun", {{"steps", std::int64_t{500}}, {"S_churn", 40.0}}},
      {"dpmpp_2m_sde", {{"steps", all}}},
      {"dpmpp_3m_sde", {{"steps", all}}},
  };
  for (const auto& c : cases) {
    GaussianOracle oracle(process, kMean, kStd);
    const auto m = moments(run(*make_sampler(c.name, c.options), oracle, process, x_T, 13));
    std::printf("%-40s mean (%.4f, %.4f) std %.4f\n", c.describe().c_str(), m.mean0, m.mean1, m.std);
    INFO(c.describe() << ": mean (" << m.mean0 << ", " << m.mean1 << "), std " << m.std);
    // Sampling error of 20,000 draws: 0.0035 on a mean, 0.5% on the spread.
    CHECK(m.mean0 == Approx(kMean[0]).margin(0.02));
    CHECK(m.mean1 == Approx(kMean[1]).margin(0.02));
    CHECK(m.std == Approx(kStd).epsilon(0.02));
  }
}

TEST_CASE("every sampler on every in-tree schedule lands near the data at 10 and 20 steps", "[samplers]") {
  // The examples' old Heun sampler turned this Gaussian's samples 15 times too wide on the cosine
  // schedule (sigma_max ~ 1e4); DDIM's leading spacing started where abar was still 0.02 and
  // missed the mean by a fifth of a standard deviation. Nothing like that may pass.
  // x_T from the data's own marginal at T-1, N(sqrt(a) mean, a s^2 + 1 - a): what is measured is
  // the sampler, not how far the schedule's abar_T is from 0 (0.02 for `exponential`).
  const auto noise = standard_noise(4000, 2, 14);
  for (const auto& schedule : in_tree_schedules()) {
    const auto process = test::schedule_process(schedule);
    const double a = process.alpha_bar_at(double(process.timesteps() - 1));
    const auto x_T = std::sqrt(a) * torch::tensor({float(kMean[0]), float(kMean[1])}) +
                     std::sqrt(a * kStd * kStd + 1 - a) * noise;
    for (const std::int64_t steps : {10, 20}) {
      for (const auto& c : every_sampler(steps)) {
        GaussianOracle oracle(process, kMean, kStd);
        const auto m = moments(run(*make_sampler(c.name, c.options), oracle, process, x_T, 15));
        INFO(schedule << ", " << c.describe() << ": mean (" << m.mean0 << ", " << m.mean1 << "), std " << m.std);
        check_near_data(m, steps);
      }
    }
  }
}

TEST_CASE("every sampler starts at T-1, makes the calls it reports and steps as it says", "[samplers]") {
  const auto process = test::linear_process(100, 0.2);
  const auto x_T = standard_noise(8, 2, 0);
  for (const auto& c : every_sampler(10)) {
    INFO(c.describe());
    GaussianOracle oracle(process, kMean, kStd);
    const auto sampler = make_sampler(c.name, c.options);
    std::int64_t reported = 0;
    const auto x0 = run(*sampler, oracle, process, x_T, 0, [&](std::int64_t step, const torch::Tensor&) {
      CHECK(step == reported);
      ++reported;
    });
    CHECK(reported == sampler->steps(100));
    CHECK(std::int64_t(oracle.seen.size()) == sampler->nfe(100));
    CHECK(oracle.seen.front() == 99.0);  // trailing spacing, the default, starts at the last timestep
    CHECK(torch::isfinite(x0).all().item<bool>());
  }
  // leading spacing stays available to reproduce the DDIM paper: it starts at (S-1) floor(T/S).
  GaussianOracle oracle(process, kMean, kStd);
  run(*make_sampler("ddim", {{"steps", std::int64_t{10}}, {"spacing", kLeading}}), oracle, process, x_T, 0);
  CHECK(oracle.seen.front() == 90.0);
}

TEST_CASE("samplers that are the same method agree: Euler in sigma and DPM-Solver++ order 1 are DDIM", "[samplers]") {
  const auto process = test::schedule_process("cosine");
  const auto x_T = standard_noise(64, 2, 16);
  const auto sample = [&](const std::string& name, std::map<std::string, OptionValue> options) {
    GaussianOracle oracle(process, kMean, kStd);
    std::vector<torch::Tensor> states;
    run(*make_sampler(name, std::move(options)), oracle, process, x_T, 0,
        [&](std::int64_t, const torch::Tensor& x) { states.push_back(x.clone()); });
    return states;
  };
  for (const std::string spacing : {"trailing", "karras", "leading"}) {
    INFO(spacing);
    const std::map<std::string, OptionValue> options{{"steps", std::int64_t{12}}, {"spacing", spacing}};
    const auto ddim = sample("ddim", options);
    const auto euler = sample("euler", options);
    REQUIRE(ddim.size() == euler.size());
    for (std::size_t i = 0; i < ddim.size(); ++i) CHECK(torch::allclose(euler[i], ddim[i], 1e-4, 1e-5));
    // DPM-Solver++ of order 1 is DDIM (Lu et al. 2022b, sec. 4.1), and so is UniPC's first step.
    auto first_order = options;
    first_order["order"] = std::int64_t{1};
    const auto dpm1 = sample("dpmpp_2m", first_order);
    REQUIRE(dpm1.size() == ddim.size());
    for (std::size_t i = 0; i < ddim.size(); ++i) CHECK(torch::allclose(dpm1[i], ddim[i], 1e-4, 1e-5));
    CHECK(torch::allclose(sample("dpmpp_2m", options).front(), ddim.front(), 1e-4, 1e-5));
    CHECK(torch::allclose(sample("unipc", options).front(), ddim.front(), 1e-4, 1e-5));
  }
}

TEST_CASE("a zero terminal SNR: abar_T = 0 exactly and every sampler of a v model stays finite and right", "[samplers][zero-snr]") {
  const auto process = test::schedule_process("linear", {}, true);
  const auto abar = process.alpha_bars_f64();
  CHECK(abar[-1].item<double>() == 0.0);
  CHECK(std::isinf(process.sigma_at(999.0)));
  CHECK(process.alpha_bar_at(998.5) == 0.0);  // the last interval has no signal either
  const auto plain = test::schedule_process("linear");
  // Lin et al. 2024, Alg. 1 keeps sqrt(abar_1) and shifts and scales the rest to end at 0.
  CHECK(abar[0].item<double>() == Approx(plain.alpha_bars_f64()[0].item<double>()).epsilon(1e-12));
  const double first = std::sqrt(plain.alpha_bars_f64()[0].item<double>());
  const double last = std::sqrt(plain.alpha_bars_f64()[-1].item<double>());
  const double mid = std::sqrt(plain.alpha_bars_f64()[500].item<double>());
  CHECK(std::sqrt(abar[500].item<double>()) == Approx((mid - last) * first / (first - last)).epsilon(1e-12));

  const auto x_T = standard_noise(4000, 2, 17);
  for (const auto prediction : {Prediction::v, Prediction::x0}) {
    for (const std::int64_t steps : {10, 20}) {
      for (const auto& c : every_sampler(steps)) {
        GaussianOracle oracle(process, kMean, kStd, prediction);
        const auto x0 = run(*make_sampler(c.name, c.options), oracle, process, x_T, 18);
        const auto m = moments(x0);
        INFO(c.describe() << ", " << prediction_name(prediction) << ": mean (" << m.mean0 << ", " << m.mean1
                          << "), std " << m.std);
        REQUIRE(torch::isfinite(x0).all().item<bool>());
        check_near_data(m, steps);
      }
    }
  }
}

TEST_CASE("every sampler is a plugin of its own library", "[samplers]") {
  const std::vector<std::string> names{"ddpm", "ddpm_x0", "ddim", "euler", "euler_ancestral", "heun", "plms",
                                       "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde", "unipc"};
  std::set<std::string> libraries;
  for (const auto& name : names) {
    INFO(name);
    const auto& entry = test::plugins().get(PluginKind::sampler, name);
    CHECK_THAT(entry.library, Catch::EndsWith("libdifflab_sampler_" + name + ".so"));
    libraries.insert(entry.library);
  }
  CHECK(libraries.size() == names.size());
}

namespace {

// The exact epsilon of data that is one point per class: (label, -label) for a labelled row, the
// origin unconditioned (label -1 or none), eps = (x_t - sqrt(a) m) / sqrt(1 - a).
class PointPerClass final : public Denoiser {
 public:
  explicit PointPerClass(const DiffusionProcess& process) : process_(process) {}
  torch::Tensor forward(const torch::Tensor& x_t, const torch::Tensor& t, const Conditioning& cond) override {
    const double a = process_.alpha_bar_at(t[0].item<double>());
    auto m = torch::zeros_like(x_t);
    if (cond.labels.defined()) {
      const auto label = cond.labels.to(x_t.dtype()).clamp_min(0).view({-1, 1});
      m = torch::cat({label, -label}, 1) * (cond.labels >= 0).to(x_t.dtype()).view({-1, 1});
    }
    return (x_t - std::sqrt(a) * m) / std::sqrt(1 - a);
  }

 private:
  const DiffusionProcess& process_;
};

}  // namespace

TEST_CASE("every sampler passes the labels and the guidance scale to the model", "[samplers]") {
  // Guided x0 = x0(uncond) + s (x0(cond) - x0(uncond)) = s m for a point per class: at the last
  // model call every sampler returns it.
  const auto process = test::linear_process(100, 0.2);
  const auto x_T = standard_noise(6, 2, 19);
  const auto labels = torch::tensor({0, 1, 2, 0, 1, 2}, torch::kLong);
  for (const double scale : {1.0, 2.0}) {
    const auto expected = scale * torch::stack({labels.to(torch::kFloat), -labels.to(torch::kFloat)}, 1);
    for (const auto& c : every_sampler(10)) {
      INFO(c.describe() << ", guidance " << scale);
      PointPerClass model(process);
      test::SingleThread single_thread;
      torch::NoGradGuard no_grad;
      SamplingContext ctx{model, process, at::detail::createCPUGenerator(0), Conditioning{labels, scale}, {}};
      const auto x0 = make_sampler(c.name, c.options)->sample(ctx, x_T);
      CHECK(torch::allclose(x0, expected, 1e-4, 1e-4));
    }
  }
}
