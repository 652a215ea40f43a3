// inception_score: exp(E KL(p(y|x) || p(y))) of a sampler's output, or of an autoencoder's
// reconstructions, under a classifier (Salimans et al. 2016): the Inception network's 1008
// classes, or the dataset's own classes with difflab's feature network (then at most the number
// of classes). p(y|x) is the softmax of the logits without the output bias, as StyleGAN2-ADA and
// torch-fidelity compute it.
#include "difflab/plugin.hpp"
#include "image_features.hpp"

namespace {
using namespace difflab;
using namespace difflab::image_metrics;

class InceptionScore final : public Metric {
 public:
  explicit InceptionScore(const Options& o)
      : slot_(o), splits_(o.integer("splits")) {}

  std::vector<MetricValue> evaluate(const MetricContext& ctx) const override {
    return score(ctx.train, ctx.samples);
  }

  bool measures_reconstructions() const override { return true; }

  // The reconstructions in place of samples.
  std::vector<MetricValue> evaluate_reconstructions(const ReconstructionContext& ctx) const override {
    return score(ctx.train, ctx.reconstructions);
  }

 private:
  // The Inception score of `images`, over splits_ splits of their rows.
  std::vector<MetricValue> score(const DataSplit& train, const torch::Tensor& images) const {
    auto& extractor = slot_.get(train);
    const double value = inception_score(extractor.probabilities(images), splits_);
    std::vector<MetricValue> values{
        {"inception_score", "splits=" + std::to_string(splits_) + ",unbiased," + extractor.name(), value, Better::higher}};
    add_extractor(values, extractor);
    return values;
  }

  mutable ExtractorSlot slot_;
  std::int64_t splits_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  auto options = inception_options("difflab's feature network's classifier");
  options.push_back(OptionSpec::integer("splits", 10, "splits of the samples, rows [i N / s, (i + 1) N / s), scores averaged").at_least(1));
  registrar.add_metric({"inception_score", "1.2.0", "Inception score of the samples (or reconstructions)", options},
                       [](const Options& o) { return std::make_unique<InceptionScore>(o); });
}
