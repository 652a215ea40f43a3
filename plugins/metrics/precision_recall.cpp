// precision_recall: improved precision and recall (Kynkaanniemi et al. 2019) and density and
// coverage (Naeem et al. 2020) of a sampler's output, or of an autoencoder's reconstructions,
// against the test split, on the features FID uses. The four numbers are prdc's
// (clovaai/generative-evaluation-prdc): see precision_recall_density_coverage.
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"
#include "image_features.hpp"

namespace {
using namespace difflab;
using namespace difflab::image_metrics;

// The order the reference rows are drawn in when the test split holds more than max_real: one
// fixed permutation, so every checkpoint, sampler and run compare against the same rows.
constexpr std::uint64_t kReferenceSeed = 0;

class PrecisionRecall final : public Metric {
 public:
  explicit PrecisionRecall(const Options& o)
      : slot_(o), k_(o.integer("k")), max_real_(o.integer("max_real")), max_fake_(o.integer("max_fake")) {
    if (max_real_ <= k_ || max_fake_ <= k_) {
      throw InputError("precision_recall: max_real (" + std::to_string(max_real_) + ") and max_fake (" +
                       std::to_string(max_fake_) + ") must exceed k (" + std::to_string(k_) + ")");
    }
  }

  std::vector<MetricValue> evaluate(const MetricContext& ctx) const override {
    return values(ctx.train, ctx.test, ctx.samples);
  }

  bool measures_reconstructions() const override { return true; }

  // The reconstructions in place of samples, against the same test rows.
  std::vector<MetricValue> evaluate_reconstructions(const ReconstructionContext& ctx) const override {
    return values(ctx.train, ctx.test, ctx.reconstructions);
  }

 private:
  // The four values of the first max_fake rows of `images` against the reference rows of the
  // test split. A sampler's rows are independent draws (with class labels 0..K-1 cycling, so the
  // first rows stay balanced), so the first rows are as good as any.
  std::vector<MetricValue> values(const DataSplit& train, const DataSplit& test, const torch::Tensor& images) const {
    const auto& real = slot_.reference_features(train, reference_rows(test.x));
    auto& extractor = slot_.get(train);
    const auto fake = extractor.features(images.slice(0, 0, std::min(max_fake_, images.size(0))));
    const auto v = precision_recall_density_coverage(real, fake, k_);
    const auto variant = "k=" + std::to_string(k_) + ",real=" + std::to_string(real.size(0)) +
                         ",fake=" + std::to_string(fake.size(0)) + "," + extractor.name();
    std::vector<MetricValue> values{{"precision", variant, v.precision, Better::higher},
                                    {"recall", variant, v.recall, Better::higher},
                                    {"density", variant, v.density, Better::higher},
                                    {"coverage", variant, v.coverage, Better::higher}};
    add_protocol(values, "samples", std::to_string(fake.size(0)));  // the first max_fake of them
    add_reference(values, "test", real.size(0));
    add_extractor(values, extractor);
    return values;
  }

  // The whole test split when it has at most max_real rows; else max_real of them, drawn once
  // per split by a fixed permutation (kept in the split's order) and remembered, so the slot's
  // feature cache sees the same tensor at every checkpoint.
  const torch::Tensor& reference_rows(const torch::Tensor& x) const {
    if (x.size(0) <= max_real_) return x;
    const bool same = subset_of_.defined() && subset_of_.data_ptr() == x.data_ptr() && subset_of_.sizes() == x.sizes();
    if (!same) {
      auto gen = at::detail::createCPUGenerator(kReferenceSeed);
      const auto picked = std::get<0>(torch::randperm(x.size(0), gen, torch::kLong).slice(0, 0, max_real_).sort());
      subset_ = x.index_select(0, picked.to(x.device()));
      subset_of_ = x;
    }
    return subset_;
  }

  mutable ExtractorSlot slot_;
  std::int64_t k_, max_real_, max_fake_;
  mutable torch::Tensor subset_of_, subset_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  auto options = inception_options("difflab's feature network trained on the dataset's labels");
  options.push_back(OptionSpec::integer("k", 3,
                                        "each row's radius is the distance to its k-th nearest neighbour in its own "
                                        "set (Kynkaanniemi et al. 2019 use 3, Naeem et al. 2020 use 5)")
                        .at_least(1));
  options.push_back(OptionSpec::integer("max_real", 2000,
                                        "test rows compared against; a larger split gives this many rows drawn "
                                        "once by a fixed permutation (seed 0)")
                        .at_least(2));
  options.push_back(
      OptionSpec::integer("max_fake", 2000, "samples (or reconstructions) measured: the first this many").at_least(2));
  registrar.add_metric({"precision_recall", "1.0.0",
                        "improved precision and recall, density and coverage of sample (or reconstruction) features "
                        "against the test split's",
                        options},
                       [](const Options& o) { return std::make_unique<PrecisionRecall>(o); });
}
