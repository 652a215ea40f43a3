// kid: kernel distance between sample and data features (Binkowski et al. 2018): unbiased MMD^2
// with the cubic polynomial kernel, averaged over random subsets.
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
    const auto& reference = slot_.reference_features(ctx.train, ctx.test.x);
    auto& extractor = slot_.get(ctx.train);
    const auto generated = extractor.features(ctx.samples);
    auto gen = at::detail::createCPUGenerator(ctx.generator.defined() ? ctx.generator.current_seed() : 0);
    const double value = kernel_inception_distance(generated, reference, subsets_, subset_size_, gen);
    return {{"kid", "poly3,subsets=" + std::to_string(subsets_) + "x" + std::to_string(subset_size_) + "," +
                        extractor.name(),
             value, Better::lower}};
  }

 private:
  mutable ExtractorSlot slot_;
  std::int64_t subsets_, subset_size_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  auto options = inception_options("difflab's feature network trained on the dataset's labels");
  options.push_back(OptionSpec::integer("subsets", 100, "random subsets averaged").at_least(1));
  options.push_back(OptionSpec::integer("subset_size", 1000, "rows per subset (capped by the set sizes)").at_least(2));
  registrar.add_metric({"kid", "1.0.0", "kernel distance (unbiased MMD^2, cubic kernel) of features", options},
                       [](const Options& o) { return std::make_unique<Kid>(o); });
}
