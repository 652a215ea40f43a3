// fid: Frechet distance between the features of a sampler's output and of a data split
// (Heusel et al. 2017), with the standard TorchScript Inception or difflab's feature network.
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
    const auto& split = reference_ == "train" ? ctx.train : ctx.test;
    const auto reference = fit_gaussian(slot_.reference_features(ctx.train, split.x));
    auto& extractor = slot_.get(ctx.train);
    const auto generated = fit_gaussian(extractor.features(ctx.samples));
    return {{"fid", extractor.name() + ",ref=" + reference_, frechet_distance(generated, reference), Better::lower}};
  }

 private:
  mutable ExtractorSlot slot_;
  std::string reference_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  auto options = inception_options("difflab's feature network trained on the dataset's labels");
  options.push_back(OptionSpec::text("reference", "test", "the data split compared against", {"test", "train"}));
  registrar.add_metric({"fid", "1.0.0", "Frechet distance of sample and data features", options},
                       [](const Options& o) { return std::make_unique<Fid>(o); });
}
