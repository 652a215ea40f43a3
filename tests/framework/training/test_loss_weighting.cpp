// The denoising loss's min-SNR-gamma weighting (Hang et al. 2023) against its closed forms.
#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>

#include "training/train_step.hpp"

using namespace difflab;

namespace {

// Outputs zeros: its loss is the (weighted) mean square of the target, easy to recompute.
class Zeros final : public Denoiser {
 public:
  explicit Zeros(Prediction prediction) : prediction_(prediction) {}
  torch::Tensor forward(const torch::Tensor& x_t, const torch::Tensor&, const Conditioning&) override {
    return torch::zeros_like(x_t);
  }
  Prediction prediction() const override { return prediction_; }

 private:
  Prediction prediction_;
};

}  // namespace

TEST_CASE("min-SNR weights are min(SNR, gamma) in each prediction type's units", "[training][loss]") {
  const auto snr = torch::tensor({0.5, 5.0, 50.0}, torch::kFloat64);
  const auto weights = [&](Prediction p) { return min_snr_weights(p, snr, 5.0); };
  // x0: min(SNR, gamma); epsilon: min(SNR, gamma) / SNR; v: min(SNR, gamma) / (SNR + 1).
  CHECK(torch::allclose(weights(Prediction::x0), torch::tensor({0.5, 5.0, 5.0}, torch::kFloat64)));
  CHECK(torch::allclose(weights(Prediction::epsilon), torch::tensor({1.0, 1.0, 0.1}, torch::kFloat64)));
  CHECK(torch::allclose(weights(Prediction::v), torch::tensor({0.5 / 1.5, 5.0 / 6.0, 5.0 / 51.0}, torch::kFloat64)));
}

TEST_CASE("the min-SNR loss weights each example's squared error, with the same draws", "[training][loss]") {
  const DiffusionProcess process(torch::linspace(1e-3, 0.2, 50, torch::kFloat64), torch::kCPU);
  const auto x0 = torch::randn({64, 3}, at::detail::createCPUGenerator(1));
  for (const auto prediction : {Prediction::epsilon, Prediction::x0, Prediction::v}) {
    INFO(prediction_name(prediction));
    Zeros model(prediction);
    auto generator = at::detail::createCPUGenerator(7);
    const double gamma = 2.0;
    const double loss = denoising_loss(model, process, x0, {}, generator, {0.0, gamma}).item<double>();
    // The same draws by hand: t, then eps, from a generator in the same state.
    auto replay = at::detail::createCPUGenerator(7);
    const auto t = torch::randint(0, 50, {64}, replay, torch::kLong);
    const auto eps = torch::randn({64, 3}, replay);
    const auto target = process.target(prediction, x0, eps, t);
    const auto abar = process.alpha_bars_f64().index_select(0, t);
    const auto snr = abar / (1 - abar);
    const auto w = min_snr_weights(prediction, snr, gamma);
    const double expected = (w * target.to(torch::kFloat64).square().mean(1)).mean().item<double>();
    CHECK(loss == Approx(expected).epsilon(1e-5));
    // Unweighted: the plain mean squared error of Ho et al. 2020, eq. 14.
    auto plain_generator = at::detail::createCPUGenerator(7);
    const double plain = denoising_loss(model, process, x0, {}, plain_generator, {}).item<double>();
    CHECK(plain == Approx(target.square().mean().item<double>()).epsilon(1e-6));
  }
}
