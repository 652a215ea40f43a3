// lpips: perceptual distance (Zhang et al. 2018), reported three ways: between test images and the
// model's reconstruction of them from x_t at stated timesteps (once per checkpoint), as the mean
// distance between pairs of a sampler's samples (diversity), and between test images and an
// autoencoder's reconstructions of them (once per checkpoint of an autoencoder run). With
// `network:` a TorchScript LPIPS module (forward(x0, x1) on [-1, 1] images); without, the
// uncalibrated baseline: unit-normalised feature differences of difflab's feature network, summed
// over its layers as the reference's lpips=False does. Images are clamped to [-1, 1] first, the network's input range.
#include <torch/script.h>

#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"
#include "image_features.hpp"

namespace {
using namespace difflab;
using namespace difflab::image_metrics;
namespace fs = std::filesystem;

class Lpips final : public Metric {
 public:
  explicit Lpips(const Options& o)
      : network_(o.text("network")),
        features_("", feature_net_config(o)),
        fractions_(o.real_list("t_fractions")),
        images_(o.integer("num_images")),
        pairs_(o.integer("pairs")) {
    if (network_.empty()) return;
    module_ = load_torchscript(network_);
    name_ = "lpips:" + fs::path(network_).filename().string();
    std::vector<torch::Tensor> weights;
    for (const auto& p : module_.named_parameters()) weights.push_back(p.value);
    for (const auto& b : module_.named_buffers()) weights.push_back(b.value);
    weights_hash_ = hash_weights(weights);
  }

  Scope scope() const override { return Scope::both; }

  std::vector<MetricValue> evaluate(const MetricContext& ctx) const override {
    auto gen = ctx.generator;
    if (ctx.samples.defined()) {  // diversity: pairs (i, j != i) of one sampler's samples
      const auto n = ctx.samples.size(0);
      if (n < 2) throw InputError("lpips diversity needs at least 2 samples");
      const auto options = torch::TensorOptions().dtype(torch::kLong).device(gen.device());
      const auto i = torch::randint(0, n, {pairs_}, gen, options);
      const auto j = (i + torch::randint(1, n, {pairs_}, gen, options)) % n;
      const auto d = distance(ctx.train, ctx.samples.index_select(0, i.to(ctx.samples.device())),
                              ctx.samples.index_select(0, j.to(ctx.samples.device())));
      // More distance between samples is more diversity, reported as better (as the diversity
      // scores of BicycleGAN and MUNIT are); read it beside FID, since noise maximises it too.
      return described({{"lpips", "diversity(pairs=" + std::to_string(pairs_) + ")," + name(ctx.train), d, Better::higher}},
                       ctx.train);
    }
    const auto rows = std::min(images_, ctx.test.x.size(0));
    const auto x0 = ctx.test.x.slice(0, 0, rows);
    const auto labels = ctx.test.labels.defined() ? ctx.test.labels.slice(0, 0, rows) : torch::Tensor();
    std::vector<MetricValue> out;
    for (const auto t : timesteps_at(fractions_, ctx.process.timesteps())) {
      const auto x0_hat = reconstruct(ctx.model, ctx.process, x0, t, gen, data_conditioning(ctx, labels));
      out.push_back({"lpips", "recon(t=" + std::to_string(t) + (ctx.class_conditional ? ",labels" : "") + ")," + name(ctx.train),
                     distance(ctx.train, x0, x0_hat),
                     Better::lower});
    }
    add_reference(out, "test", rows);
    return described(std::move(out), ctx.train);
  }

  bool measures_reconstructions() const override { return true; }

  // Mean distance between each original and its reconstruction, over every row the autoencoder
  // reconstructed (the run chooses them, not num_images); its variant keeps these values apart
  // from the model's reconstructions from x_t and from diversity.
  std::vector<MetricValue> evaluate_reconstructions(const ReconstructionContext& ctx) const override {
    std::vector<MetricValue> values{{"lpips", "autoencoder(images=" + std::to_string(ctx.originals.size(0)) + ")," +
                                         name(ctx.train),
                                     distance(ctx.train, ctx.originals, ctx.reconstructions), Better::lower}};
    add_reference(values, "test", ctx.originals.size(0));
    return described(std::move(values), ctx.train);
  }

 private:
  // The network the distances were measured with, and its weights' hash, in each value's protocol.
  std::vector<MetricValue> described(std::vector<MetricValue> values, const DataSplit& train) const {
    if (network_.empty()) {
      add_extractor(values, features_.get(train));
    } else {
      add_protocol(values, "extractor", name_);
      add_protocol(values, "extractor_weights", weights_hash_);
    }
    return values;
  }

  // The baseline's values are named apart from those of its earlier layer mean.
  std::string name(const DataSplit& train) const {
    return network_.empty() ? "layer-sum:" + features_.get(train).name() : name_;
  }

  // Mean distance over the pairs of rows of a and b, both clamped to the networks' range [-1, 1];
  // the baseline's feature network is the one trained on `train`.
  double distance(const DataSplit& train, const torch::Tensor& a_in, const torch::Tensor& b_in) const {
    const auto a = a_in.clamp(-1, 1), b = b_in.clamp(-1, 1);
    if (!network_.empty()) {
      const auto out = batched(torch::stack({a, b}, 1), 100, [&](const torch::Tensor& ab) {
        const auto dev = ab.device();
        module_.to(dev);
        return module_.forward({ab.select(1, 0).contiguous(), ab.select(1, 1).contiguous()}).toTensor().flatten();
      });
      return out.to(torch::kDouble).mean().item<double>();
    }
    auto& extractor = features_.get(train);
    const auto per_pair = batched(torch::stack({a, b}, 1), 200, [&](const torch::Tensor& ab) {
      const auto la = extractor.layers(ab.select(1, 0));
      const auto lb = extractor.layers(ab.select(1, 1));
      // Zhang et al. 2018, eq. 1 with w = 1: sum_l mean_hw |f^l_a / |f^l_a| - f^l_b / |f^l_b||^2.
      torch::Tensor total;
      for (std::size_t l = 0; l < la.size(); ++l) {
        const auto fa = la[l] / (la[l].norm(2, 1, true) + 1e-10);
        const auto fb = lb[l] / (lb[l].norm(2, 1, true) + 1e-10);
        const auto d = (fa - fb).pow(2).sum(1).mean({1, 2});
        total = total.defined() ? total + d : d;
      }
      return total;
    });
    return per_pair.to(torch::kDouble).mean().item<double>();
  }

  std::string network_, name_, weights_hash_;
  mutable torch::jit::Module module_;
  mutable ExtractorSlot features_;
  std::vector<double> fractions_;
  std::int64_t images_, pairs_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  auto options = extractor_options("TorchScript LPIPS module, forward(x0, x1) on [-1, 1] images; empty: "
                                   "the uncalibrated baseline on difflab's feature network (layers summed)");
  options.push_back(OptionSpec::real_list("t_fractions", {0.1, 0.5, 0.9}, "reconstruction timesteps as fractions of T-1")
                        .at_least(0)
                        .at_most(1));
  options.push_back(OptionSpec::integer("num_images", 256, "test images reconstructed from x_t").at_least(1));
  options.push_back(OptionSpec::integer("pairs", 256, "sample pairs for the diversity value").at_least(1));
  registrar.add_metric({"lpips", "1.2.0", "LPIPS of reconstructions from x_t or an autoencoder, and among samples", options},
                       [](const Options& o) { return std::make_unique<Lpips>(o); });
}
