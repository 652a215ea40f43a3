// The metric plugins against closed forms and reference computations.
#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>
#include <numeric>

#include "support.hpp"

namespace {
using namespace difflab;

std::shared_ptr<Metric> make_metric(const std::string& name,
                                    std::map<std::string, OptionValue> given = {}) {
  auto& registry = test::plugins();
  const auto& entry = registry.get(PluginKind::metric, name);
  return registry.make_metric(name, resolve_options(entry.info.options, std::move(given), name));
}

DataSplit load_gmm(Split split, std::uint64_t seed, std::int64_t n) {
  auto& registry = test::plugins();
  const auto& entry = registry.get(PluginKind::dataset, "gmm2d");
  const auto dataset = registry.make_dataset(
      "gmm2d", resolve_options(entry.info.options,
                               {{"train_size", n}, {"test_size", n}}, "gmm2d"));
  return dataset->load(split, seed);
}

DiffusionProcess small_process() {
  return DiffusionProcess(torch::linspace(1e-4, 0.02, 100, torch::kFloat64), torch::kCPU);
}

// Knows the data is one point x0: returns the exact target of the given prediction type.
class ExactDenoiser final : public Denoiser {
 public:
  ExactDenoiser(const DiffusionProcess& process, torch::Tensor x0, Prediction prediction)
      : process_(process), x0_(std::move(x0)), prediction_(prediction) {}
  torch::Tensor forward(const torch::Tensor& x_t, const torch::Tensor& t,
                        const Conditioning&) override {
    const auto index = t.to(torch::kLong);
    const auto a = DiffusionProcess::gather(process_.sqrt_alpha_bars(), index, x_t);
    const auto s = DiffusionProcess::gather(process_.sqrt_one_minus_alpha_bars(), index, x_t);
    const auto eps = (x_t - a * x0_) / s;
    switch (prediction_) {
      case Prediction::epsilon: return eps;
      case Prediction::x0: return x0_.expand_as(x_t);
      case Prediction::v: return a * eps - s * x0_;
    }
    return eps;
  }
  Prediction prediction() const override { return prediction_; }

 private:
  const DiffusionProcess& process_;
  torch::Tensor x0_;
  Prediction prediction_;
};

class ZeroDenoiser final : public Denoiser {
 public:
  explicit ZeroDenoiser(Prediction prediction = Prediction::epsilon) : prediction_(prediction) {}
  torch::Tensor forward(const torch::Tensor& x_t, const torch::Tensor&,
                        const Conditioning&) override {
    return torch::zeros_like(x_t);
  }
  Prediction prediction() const override { return prediction_; }

 private:
  Prediction prediction_;
};

// Evaluates a samples-scope metric of `samples` against `reference` (as the test split).
MetricValue evaluate_samples(const Metric& metric, const torch::Tensor& samples,
                             const torch::Tensor& reference, std::uint64_t seed = 0) {
  static const auto process = small_process();
  ZeroDenoiser model;
  const DataSplit data{reference, torch::Tensor()};
  const MetricContext ctx{model, process, data, data, samples,
                          at::detail::createCPUGenerator(seed)};
  const auto values = metric.evaluate(ctx);
  REQUIRE(values.size() == 1);
  return values[0];
}

double brute_force_w1(const torch::Tensor& x, const torch::Tensor& y) {
  const auto cost = torch::cdist(x, y);
  std::vector<std::int64_t> perm(x.size(0));
  std::iota(perm.begin(), perm.end(), 0);
  double best = std::numeric_limits<double>::infinity();
  do {
    double total = 0.0;
    for (std::size_t i = 0; i < perm.size(); ++i) total += cost[i][perm[i]].item<double>();
    best = std::min(best, total);
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best / double(x.size(0));
}

// Textbook O(n^3) Hungarian method (Kuhn-Munkres with potentials), an independent reference.
double hungarian_w1(const torch::Tensor& x, const torch::Tensor& y) {
  const auto cost_tensor = torch::cdist(x, y).contiguous();
  const auto n = x.size(0);
  const auto* c = cost_tensor.data_ptr<double>();
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0), v(n + 1, 0), minv(n + 1);
  std::vector<std::int64_t> p(n + 1, 0), way(n + 1, 0);
  std::vector<char> used(n + 1);
  for (std::int64_t i = 1; i <= n; ++i) {
    p[0] = i;
    std::int64_t j0 = 0;
    std::fill(minv.begin(), minv.end(), kInf);
    std::fill(used.begin(), used.end(), 0);
    do {
      used[j0] = 1;
      const std::int64_t i0 = p[j0];
      double delta = kInf;
      std::int64_t j1 = 0;
      for (std::int64_t j = 1; j <= n; ++j) {
        if (used[j]) continue;
        const double cur = c[(i0 - 1) * n + (j - 1)] - u[i0] - v[j];
        if (cur < minv[j]) minv[j] = cur, way[j] = j0;
        if (minv[j] < delta) delta = minv[j], j1 = j;
      }
      for (std::int64_t j = 0; j <= n; ++j) {
        if (used[j]) u[p[j]] += delta, v[j] -= delta;
        else minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const std::int64_t j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  double total = 0.0;
  for (std::int64_t j = 1; j <= n; ++j) total += c[(p[j] - 1) * n + (j - 1)];
  return total / double(n);
}

}  // namespace

TEST_CASE("exact wasserstein solves the assignment problem", "[metrics]") {
  const auto metric = make_metric("wasserstein");
  auto gen = at::detail::createCPUGenerator(42);

  SECTION("equals brute force over all permutations (n <= 7)") {
    for (std::int64_t trial = 0; trial < 40; ++trial) {
      const std::int64_t n = 1 + trial % 7;
      // Every other trial on a small integer grid: ties and degenerate optima.
      auto x = torch::randn({n, 2}, gen, torch::kFloat64);
      auto y = torch::randn({n, 2}, gen, torch::kFloat64);
      if (trial % 2) {
        x = torch::randint(0, 3, {n, 2}, gen, torch::kFloat64);
        y = torch::randint(0, 3, {n, 2}, gen, torch::kFloat64);
      }
      const auto value = evaluate_samples(*metric, x, y);
      INFO("trial " << trial << ", n = " << n);
      CHECK(value.variant == "exact");
      CHECK(value.value == Approx(brute_force_w1(x, y)).epsilon(1e-12).margin(1e-12));
    }
  }

  SECTION("equals an independent Hungarian solver (n = 300)") {
    const auto x = torch::randn({300, 2}, gen, torch::kFloat64);
    const auto y = torch::randn({300, 2}, gen, torch::kFloat64) * 1.5 + 0.3;
    CHECK(evaluate_samples(*metric, x, y).value == Approx(hungarian_w1(x, y)).epsilon(1e-12));
    const auto a = torch::randn({200, 5}, gen, torch::kFloat64);
    const auto b = torch::rand({200, 5}, gen, torch::kFloat64);
    CHECK(evaluate_samples(*metric, a, b).value == Approx(hungarian_w1(a, b)).epsilon(1e-12));
  }

  SECTION("equals the sorted matching in 1D") {
    const auto s = torch::randn({500}, gen, torch::kFloat64);
    const auto r = torch::rand({500}, gen, torch::kFloat64) * 3.0;
    const auto zeros = torch::zeros({500}, torch::kFloat64);
    const double closed_form =
        (std::get<0>(s.sort()) - std::get<0>(r.sort())).abs().mean().item<double>();
    const auto value =
        evaluate_samples(*metric, torch::stack({s, zeros}, 1), torch::stack({r, zeros}, 1));
    CHECK(value.value == Approx(closed_form).epsilon(1e-10));
  }

  SECTION("is 0 against itself and |d| against a copy shifted by d") {
    const auto x = load_gmm(Split::test, 0, 1000).x;
    CHECK(evaluate_samples(*metric, x, x).value == 0.0);
    const auto d = torch::tensor({0.3f, -0.4f});
    const auto shifted = evaluate_samples(*metric, x + d, x).value;
    CHECK(shifted == Approx(0.5).epsilon(1e-5));
  }

  SECTION("subsamples the larger set to the smaller one, repeatably") {
    const auto x = load_gmm(Split::train, 1, 700).x;
    const auto y = load_gmm(Split::test, 1, 400).x;
    const auto a = evaluate_samples(*metric, x, y, 5).value;
    CHECK(a == evaluate_samples(*metric, x, y, 5).value);
    CHECK(a != evaluate_samples(*metric, x, y, 6).value);
    CHECK(a > 0.0);
  }
}

TEST_CASE("exact wasserstein timing at n = 2000", "[metrics]") {
  const auto metric = make_metric("wasserstein");
  const auto x = load_gmm(Split::train, 0, 2000).x;
  const auto y = load_gmm(Split::test, 0, 2000).x;
  auto gen = at::detail::createCPUGenerator(3);
  // Same distribution (a good model) and a wide Gaussian (an untrained one: longer paths).
  for (const auto& [label, reference] : {std::pair<std::string, torch::Tensor>{"gmm2d", y},
                                         {"N(0, 9 I)", 3.0 * torch::randn({2000, 2}, gen)}}) {
    const auto start = std::chrono::steady_clock::now();
    const auto value = evaluate_samples(*metric, x, reference);
    const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
    std::cout << "exact W1, n = 2000, gmm2d vs " << label << ": " << value.value << " in "
              << seconds.count() << " s\n";
    CHECK(value.variant == "exact");
    CHECK(value.value > 0.0);
  }
  CHECK(evaluate_samples(*metric, x, y).value < 0.5);
}

TEST_CASE("wasserstein and mmd of non-finite samples are NaN", "[metrics]") {
  const auto x = load_gmm(Split::test, 0, 50).x;
  auto broken = x.clone();
  broken[3][1] = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(evaluate_samples(*make_metric("wasserstein"), broken, x).value));
  const auto sliced = make_metric("wasserstein", {{"exact_max", std::int64_t{0}}});
  CHECK(std::isnan(evaluate_samples(*sliced, broken, x).value));
  CHECK(std::isnan(evaluate_samples(*make_metric("mmd"), broken, x).value));
}

TEST_CASE("sliced wasserstein of a shifted copy is 2|d|/pi in 2D", "[metrics]") {
  const auto metric = make_metric(
      "wasserstein", {{"exact_max", std::int64_t{0}}, {"projections", std::int64_t{2048}}});
  const auto x = load_gmm(Split::test, 0, 2000).x;
  const auto d = torch::tensor({1.2f, 1.6f});  // |d| = 2
  const auto value = evaluate_samples(*metric, x + d, x);
  CHECK(value.variant == "sliced(projections=2048)");
  // Each direction gives |theta . d| exactly; E|cos| = 2/pi, sampling error ~1% at 2048.
  CHECK(value.value == Approx(2.0 * 2.0 / M_PI).epsilon(0.04));
  CHECK(evaluate_samples(*metric, x, x).value == Approx(0.0).margin(1e-6));
}

TEST_CASE("mmd is the unbiased RBF estimate", "[metrics]") {
  SECTION("closed form between two point masses, one bandwidth") {
    const auto metric = make_metric("mmd", {{"bandwidths", std::vector<double>{0.7}}});
    const auto a = torch::tensor({0.5, -1.0}, torch::kFloat64).repeat({30, 1});
    const auto b = torch::tensor({1.5, 0.0}, torch::kFloat64).repeat({20, 1});
    // Every k(x, x') and k(y, y') is 1: MMD^2_u = 2 - 2 exp(-|a - b|^2 / (2 s^2)).
    const double expected = 2.0 - 2.0 * std::exp(-2.0 / (2.0 * 0.49));
    const auto value = evaluate_samples(*metric, a, b);
    CHECK(value.name == "mmd");
    CHECK(value.variant == "rbf(bandwidths=0.7)");
    CHECK(value.value == Approx(expected).epsilon(1e-12));
  }

  const auto metric = make_metric("mmd");
  const auto x = load_gmm(Split::train, 0, 2000).x;
  const auto y = load_gmm(Split::test, 0, 2000).x;
  SECTION("two draws of one distribution are near 0, a shifted one is far") {
    const auto same = evaluate_samples(*metric, x, y);
    CHECK(same.variant == "rbf(bandwidths=0.1,0.2,0.5,1,2,5)");
    const auto shifted = evaluate_samples(*metric, x + torch::tensor({0.5f, 0.0f}), y).value;
    std::cout << "mmd of two gmm2d draws (n = 2000): " << same.value
              << ", with one shifted by 0.5: " << shifted << "\n";
    // Over seeds 0..11 the null values spread with std ~1.4e-3 (max |v| 2.2e-3).
    CHECK(std::abs(same.value) < 5e-3);
    CHECK(shifted > 0.1);
  }
  SECTION("a set against itself is the estimator's small negative bias") {
    // Identical sets: MMD^2_u = 2 (mean off-diagonal k - k(a, a)) / n, in [-2 * 6 / n, 0].
    const auto value = evaluate_samples(*metric, x, x).value;
    CHECK(value <= 0.0);
    CHECK(value > -2.0 * 6.0 / 2000.0);
  }
  SECTION("subsampling above max_points is repeatable") {
    const auto small = make_metric("mmd", {{"max_points", std::int64_t{500}}});
    const auto a = evaluate_samples(*small, x, y, 3).value;
    CHECK(a == evaluate_samples(*small, x, y, 3).value);
    CHECK(a != evaluate_samples(*small, x, y, 4).value);
  }
}

TEST_CASE("test_loss is the denoising MSE in the model's prediction space", "[metrics]") {
  const auto process = small_process();
  const auto point = torch::tensor({0.5f, -1.0f});
  const DataSplit data{point.repeat({2000, 1}), torch::Tensor()};
  const auto evaluate = [&](const Metric& metric, Denoiser& model, std::uint64_t seed = 0) {
    const MetricContext ctx{model, process, data, data, torch::Tensor(),
                            at::detail::createCPUGenerator(seed)};
    const auto values = metric.evaluate(ctx);
    REQUIRE(values.size() == 1);
    return values[0];
  };
  const auto metric = make_metric("test_loss", {{"batch_size", std::int64_t{512}}});
  REQUIRE(metric->scope() == Metric::Scope::checkpoint);

  SECTION("an exact model has loss 0 whatever it predicts") {
    for (const auto prediction : {Prediction::epsilon, Prediction::x0, Prediction::v}) {
      ExactDenoiser model(process, point, prediction);
      const auto value = evaluate(*metric, model);
      INFO(value.variant);
      CHECK(value.name == "test_loss");
      CHECK(value.variant == std::string("mse(prediction=") + prediction_name(prediction) +
                                 ",repeats=4,timesteps=all)");
      CHECK(value.value < 1e-8);
    }
  }
  SECTION("a zero epsilon model has loss E[eps^2] = 1, a zero x0 model |x0|^2 / 2") {
    ZeroDenoiser eps_model;
    const auto value = evaluate(*metric, eps_model).value;
    CHECK(value == Approx(1.0).epsilon(0.05));  // 16000 chi^2 draws: std 0.011
    CHECK(value == evaluate(*metric, eps_model).value);
    CHECK(value != evaluate(*metric, eps_model, 1).value);
    ZeroDenoiser x0_model(Prediction::x0);
    CHECK(evaluate(*metric, x0_model).value == Approx((0.25 + 1.0) / 2.0).epsilon(1e-6));
  }
  SECTION("train split and chosen timesteps") {
    const auto train = make_metric("test_loss", {{"split", std::string("train")},
                                                 {"timesteps", std::vector<std::int64_t>{0, 99}}});
    ZeroDenoiser model;
    const auto value = evaluate(*train, model);
    CHECK(value.name == "train_loss");
    CHECK(value.variant == "mse(prediction=epsilon,repeats=4,timesteps=[0,99])");
    const auto out_of_range =
        make_metric("test_loss", {{"timesteps", std::vector<std::int64_t>{100}}});
    CHECK_THROWS_WITH(evaluate(*out_of_range, model), Catch::Contains("out of range"));
  }
}


TEST_CASE("a class-conditional model is evaluated with the data's labels, not its null label",
          "[metrics]") {
  test::SingleThread single_thread;
  auto& registry = test::plugins();
  // Four classes far apart: at large t only the label says which one x_t came from.
  const auto dataset = registry.make_dataset(
      "gmm2d", resolve_options(registry.get(PluginKind::dataset, "gmm2d").info.options,
                               {{"components", std::int64_t{4}}, {"radius", 2.0},
                                {"train_size", std::int64_t{4096}}, {"test_size", std::int64_t{1024}}},
                               "gmm2d"));
  const auto train = dataset->load(Split::train, 0), test = dataset->load(Split::test, 0);
  torch::manual_seed(0);  // the MLP's initial weights
  const auto model = registry.make_model(
      "mlp", resolve_options(registry.get(PluginKind::model, "mlp").info.options,
                             {{"hidden", std::int64_t{64}}, {"layers", std::int64_t{2}},
                              {"time_embedding", std::int64_t{16}}, {"num_classes", std::int64_t{4}}},
                             "mlp"));
  const DiffusionProcess process(torch::linspace(1e-4, 0.2, 100, torch::kFloat64), torch::kCPU);

  // Classifier-free guidance training (Ho & Salimans 2022): a fifth of the labels dropped to -1.
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(3e-3));
  auto gen = at::detail::createCPUGenerator(1);
  for (int step = 0; step < 600; ++step) {
    const auto rows = torch::randint(0, train.x.size(0), {256}, gen, torch::kLong);
    const auto x0 = train.x.index_select(0, rows);
    const auto dropped = torch::rand({256}, gen) < 0.2;
    const auto labels = torch::where(dropped, torch::full({256}, -1, torch::kLong),
                                     train.labels.index_select(0, rows));
    const auto t = torch::randint(0, process.timesteps(), {256}, gen, torch::kLong);
    const auto noise = torch::randn(x0.sizes(), gen);
    const auto output = model->forward(process.q_sample(x0, t, noise), t.to(torch::kFloat32),
                                       Conditioning{labels});
    const auto loss = torch::mse_loss(output, noise);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  model->eval();
  torch::NoGradGuard no_grad;

  const auto evaluate = [&](const std::string& name, std::map<std::string, OptionValue> options,
                            bool class_conditional) {
    const MetricContext ctx{*model, process, train, test, torch::Tensor(),
                            at::detail::createCPUGenerator(5), Conditioning{}, class_conditional};
    return make_metric(name, std::move(options))->evaluate(ctx).at(0);
  };
  const auto with_labels = evaluate("test_loss", {}, true);
  const auto null_label = evaluate("test_loss", {}, false);
  CHECK(with_labels.better == Better::lower);
  // Measured with labels or without: two variants, never one column.
  CHECK(with_labels.variant == "mse(prediction=epsilon,repeats=4,timesteps=all,labels)");
  CHECK(null_label.variant == "mse(prediction=epsilon,repeats=4,timesteps=all)");
  CHECK(evaluate("psnr", {{"t_fractions", std::vector<double>{0.9}}}, true).variant == "recon(t=89,labels)");
  const std::map<std::string, OptionValue> late{{"t_fractions", std::vector<double>{0.9}},
                                                {"num_images", std::int64_t{1024}}};
  const auto psnr_with = evaluate("psnr", late, true).value;
  const auto psnr_null = evaluate("psnr", late, false).value;
  std::cout << "class-conditional mlp: test_loss " << with_labels.value << " with labels, "
            << null_label.value << " through the null label; PSNR at t = 89 " << psnr_with
            << " dB with labels, " << psnr_null << " dB without\n";
  CHECK(with_labels.value < 0.8 * null_label.value);
  CHECK(psnr_with > psnr_null + 1.0);
}
