// fid: Frechet distance between the features of a sampler's output, or of an autoencoder's
// reconstructions, and of a data split (Heusel et al. 2017), with the standard TorchScript
// Inception or difflab's feature network; with per_class, also per class of a class-conditional
// run's samples.
#include <algorithm>

#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"
#include "image_features.hpp"

namespace {
using namespace difflab;
using namespace difflab::image_metrics;

class Fid final : public Metric {
 public:
  explicit Fid(const Options& o)
      : slot_(o), reference_(o.text("reference")), per_class_(o.boolean("per_class")) {}

  std::vector<MetricValue> evaluate(const MetricContext& ctx) const override {
    return fid(ctx.train, ctx.test, ctx.samples, per_class_ ? ctx.sampling.labels : torch::Tensor());
  }

  bool measures_reconstructions() const override { return true; }

  // The reconstructions in place of samples, against the same reference split (no per-class values:
  // the reconstructions were drawn with no labels).
  std::vector<MetricValue> evaluate_reconstructions(const ReconstructionContext& ctx) const override {
    return fid(ctx.train, ctx.test, ctx.reconstructions, torch::Tensor());
  }

 private:
  // Frechet distance between the Gaussians of the features of `images` and of the reference split.
  // With `labels` (the class each image was drawn with) and a labelled reference split, also the
  // distance per class k between the images drawn with k and the reference rows of class k
  // (classes with fewer than 2 rows on either side skipped), and the mean of those distances.
  std::vector<MetricValue> fid(const DataSplit& train, const DataSplit& test, const torch::Tensor& images,
                               const torch::Tensor& labels) const {
    const auto& split = reference_ == "train" ? train : test;
    const auto reference_features = slot_.reference_features(train, split.x);
    const auto reference = fit_gaussian(reference_features);
    auto& extractor = slot_.get(train);
    const auto features = extractor.features(images);
    const auto generated = fit_gaussian(features);
    const auto variant = extractor.name() + ",ref=" + reference_;
    std::vector<MetricValue> values{{"fid", variant, frechet_distance(generated, reference), Better::lower}};
    const auto described = [&](std::vector<MetricValue> v) {
      add_reference(v, reference_, split.x.size(0));
      add_extractor(v, extractor);
      return v;
    };
    if (!labels.defined() || !split.labels.defined()) return described(std::move(values));

    const auto fake_labels = labels.to(torch::kCPU, torch::kLong);
    const auto real_labels = split.labels.to(torch::kCPU, torch::kLong);
    if (fake_labels.dim() != 1 || fake_labels.size(0) != features.size(0)) {
      throw InputError("fid per_class: " + std::to_string(fake_labels.numel()) + " sampling labels for " +
                       std::to_string(features.size(0)) + " samples");
    }
    if (fake_labels.numel() == 0 || real_labels.numel() == 0) return described(std::move(values));
    const auto classes =
        std::max(fake_labels.max().item<std::int64_t>(), real_labels.max().item<std::int64_t>()) + 1;
    double sum = 0;
    std::int64_t measured = 0;
    for (std::int64_t k = 0; k < classes; ++k) {
      const auto fake_rows = (fake_labels == k).nonzero().squeeze(1);
      const auto real_rows = (real_labels == k).nonzero().squeeze(1);
      if (fake_rows.size(0) < 2 || real_rows.size(0) < 2) continue;
      const double value = frechet_distance(fit_gaussian(features.index_select(0, fake_rows)),
                                            fit_gaussian(reference_features.index_select(0, real_rows)));
      values.push_back({"fid", variant + ",class=" + std::to_string(k), value, Better::lower});
      sum += value;
      ++measured;
    }
    if (measured > 0) {
      values.push_back({"fid", variant + ",class=mean", sum / static_cast<double>(measured), Better::lower});
    }
    return described(std::move(values));
  }

  mutable ExtractorSlot slot_;
  std::string reference_;
  bool per_class_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  auto options = inception_options("difflab's feature network trained on the dataset's labels");
  options.push_back(OptionSpec::text("reference", "test", "the data split compared against", {"test", "train"}));
  options.push_back(OptionSpec::boolean(
      "per_class", false,
      "also, for samples drawn with class labels against a labelled reference split, the FID of each class k "
      "(samples drawn with k against the reference rows of class k; variant ...,class=k) and their mean "
      "(...,class=mean); classes with fewer than 2 rows on either side are skipped"));
  registrar.add_metric({"fid", "1.2.0", "Frechet distance of sample (or reconstruction) and data features", options},
                       [](const Options& o) { return std::make_unique<Fid>(o); });
}
