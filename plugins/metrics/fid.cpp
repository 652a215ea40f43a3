// fid: Frechet distance between the features of a sampler's output, or of an autoencoder's
// reconstructions, and of a data split (Heusel et al. 2017), with the standard TorchScript
// Inception or difflab's feature network.
#include "difflab/plugin.hpp"
#include "image_features.hpp"

namespace {
using namespace difflab;
using namespace difflab::image_metrics;

class Fid final : public Metric {
 public:
  explicit Fid(const Options& o)
      : slot_(o), reference_(o.text("reference")) {}

  std::vector<MetricValue> evaluate(const MetricContext& ctx) const override {
    return {fid(ctx.train, ctx.test, ctx.samples)};
  }

  bool measures_reconstructions() const override { return true; }

  // The reconstructions in place of samples, against the same reference split.
  std::vector<MetricValue> evaluate_reconstructions(const ReconstructionContext& ctx) const override {
    return {fid(ctx.train, ctx.test, ctx.reconstructions)};
  }

 private:
  // Frechet distance between the Gaussians of the features of `images` and of the reference split.
  MetricValue fid(const DataSplit& train, const DataSplit& test, const torch::Tensor& images) const {
    const auto& split = reference_ == "train" ? train : test;
    const auto reference = fit_gaussian(slot_.reference_features(train, split.x));
    auto& extractor = slot_.get(train);
    const auto generated = fit_gaussian(extractor.features(images));
    return {"fid", extractor.name() + ",ref=" + reference_, frechet_distance(generated, reference), Better::lower};
  }

  mutable ExtractorSlot slot_;
  std::string reference_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  auto options = inception_options("difflab's feature network trained on the dataset's labels");
  options.push_back(OptionSpec::text("reference", "test", "the data split compared against", {"test", "train"}));
  registrar.add_metric({"fid", "1.1.0", "Frechet distance of sample (or reconstruction) and data features", options},
                       [](const Options& o) { return std::make_unique<Fid>(o); });
}
