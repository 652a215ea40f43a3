// psnr: peak signal-to-noise ratio (dB) between test images and their reconstruction: the model's
// from x_t at stated timesteps, or an autoencoder's; images in [-1, 1], so the peak-to-peak
// range is 2.
#include <cmath>

#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"
#include "image_features.hpp"

namespace {
using namespace difflab;
using namespace difflab::image_metrics;

// PSNR_i = 10 log10(range^2 / MSE_i) of each row of `estimate` (clamped to [-1, 1]) against x0,
// averaged over images. MSE_i is floored at 1e-12, so a perfect reconstruction scores
// 10 log10(4e12) = 126.02 dB rather than infinity.
double mean_psnr(const torch::Tensor& estimate, const torch::Tensor& x0) {
  const auto mse = (estimate.clamp(-1, 1) - x0).pow(2).flatten(1).mean(1).clamp_min(1e-12);
  return (10.0 * torch::log10(4.0 / mse)).mean().item<double>();
}

class Psnr final : public Metric {
 public:
  explicit Psnr(const Options& o) : fractions_(o.real_list("t_fractions")), images_(o.integer("num_images")) {}

  Scope scope() const override { return Scope::checkpoint; }

  std::vector<MetricValue> evaluate(const MetricContext& ctx) const override {
    const auto rows = std::min(images_, ctx.test.x.size(0));
    const auto x0 = ctx.test.x.slice(0, 0, rows);
    const auto labels = ctx.test.labels.defined() ? ctx.test.labels.slice(0, 0, rows) : torch::Tensor();
    auto gen = ctx.generator;
    std::vector<MetricValue> out;
    for (const auto t : timesteps_at(fractions_, ctx.process.timesteps())) {
      const auto x0_hat = reconstruct(ctx.model, ctx.process, x0, t, gen, data_conditioning(ctx, labels));
      const double value = mean_psnr(x0_hat, x0);
      // ",labels": reconstructed with the test images' labels (a class-conditional run)
      out.push_back({"psnr", "recon(t=" + std::to_string(t) + (ctx.class_conditional ? ",labels" : "") + ")", value,
                     Better::higher});
    }
    add_reference(out, "test", rows);
    return out;
  }

  bool measures_reconstructions() const override { return true; }

  // Every row the autoencoder reconstructed (the run chooses them, not num_images); its variant
  // keeps these values apart from the model's reconstructions from x_t.
  std::vector<MetricValue> evaluate_reconstructions(const ReconstructionContext& ctx) const override {
    std::vector<MetricValue> values{{"psnr", "autoencoder(images=" + std::to_string(ctx.originals.size(0)) + ")",
                                     mean_psnr(ctx.reconstructions, ctx.originals), Better::higher}};
    add_reference(values, "test", ctx.originals.size(0));
    return values;
  }

 private:
  std::vector<double> fractions_;
  std::int64_t images_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_metric(
      {"psnr", "1.2.0", "PSNR of the model's reconstruction of test images from x_t, or an autoencoder's",
       {OptionSpec::real_list("t_fractions", {0.1, 0.5, 0.9}, "timesteps as fractions of T-1").at_least(0).at_most(1),
        OptionSpec::integer("num_images", 256, "test images reconstructed from x_t").at_least(1)}},
      [](const Options& o) { return std::make_unique<Psnr>(o); });
}
