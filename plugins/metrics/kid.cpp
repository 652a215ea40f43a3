// kid: kernel distance between the features of a sampler's output, or of an autoencoder's
// reconstructions, and of the test split (Binkowski et al. 2018): unbiased MMD^2 with the cubic
// polynomial kernel, averaged over random subsets.
#include <ATen/CPUGeneratorImpl.h>

#include "difflab/plugin.hpp"
#include "image_features.hpp"

namespace {
using namespace difflab;
using namespace difflab::image_metrics;

class Kid final : public Metric {
 public:
  explicit Kid(const Options& o)
      : slot_(o),
        subsets_(o.integer("subsets")),
        subset_size_(o.integer("subset_size")) {}

  std::vector<MetricValue> evaluate(const MetricContext& ctx) const override {
    return kid(ctx.train, ctx.test, ctx.samples, ctx.generator);
  }

  bool measures_reconstructions() const override { return true; }

  // The reconstructions in place of samples, against the test split.
  std::vector<MetricValue> evaluate_reconstructions(const ReconstructionContext& ctx) const override {
    return kid(ctx.train, ctx.test, ctx.reconstructions, ctx.generator);
  }

 private:
  // KID between the features of `images` and of the test split; the subsets are drawn on the CPU
  // from the seed of `generator` (0 when it is undefined).
  std::vector<MetricValue> kid(const DataSplit& train, const DataSplit& test, const torch::Tensor& images,
                  const torch::Generator& generator) const {
    const auto& reference = slot_.reference_features(train, test.x);
    auto& extractor = slot_.get(train);
    const auto generated = extractor.features(images);
    auto gen = at::detail::createCPUGenerator(generator.defined() ? generator.current_seed() : 0);
    const double value = kernel_inception_distance(generated, reference, subsets_, subset_size_, gen);
    std::vector<MetricValue> values{
        {"kid", "poly3,subsets=" + std::to_string(subsets_) + "x" + std::to_string(subset_size_) + "," + extractor.name(),
         value, Better::lower}};
    add_reference(values, "test", test.x.size(0));
    add_extractor(values, extractor);
    return values;
  }

  mutable ExtractorSlot slot_;
  std::int64_t subsets_, subset_size_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  auto options = inception_options("difflab's feature network trained on the dataset's labels");
  options.push_back(OptionSpec::integer("subsets", 100, "random subsets averaged").at_least(1));
  options.push_back(OptionSpec::integer("subset_size", 1000, "rows per subset (capped by the set sizes)").at_least(2));
  registrar.add_metric({"kid", "1.1.0", "kernel distance (unbiased MMD^2, cubic kernel) of features", options},
                       [](const Options& o) { return std::make_unique<Kid>(o); });
}
