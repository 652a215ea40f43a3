// mmd: squared maximum mean discrepancy between generated samples and test data, RBF kernels.
#include <ATen/CPUGeneratorImpl.h>

#include <sstream>

#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

// At most `limit` rows of `x`, picked without replacement by the generator when there are more.
torch::Tensor subsample(const torch::Tensor& x, std::int64_t limit, torch::Generator& gen) {
  if (x.size(0) <= limit) return x;
  const auto order =
      torch::randperm(x.size(0), gen, torch::TensorOptions(gen.device()).dtype(torch::kLong));
  return x.index_select(0, order.slice(0, 0, limit).to(x.device()));
}

class Mmd final : public Metric {
 public:
  explicit Mmd(const Options& o)
      : bandwidths_(o.real_list("bandwidths")), max_points_(o.integer("max_points")) {
    if (bandwidths_.empty()) throw InputError("mmd: 'bandwidths' needs at least one value");
  }

  std::vector<MetricValue> evaluate(const MetricContext& ctx) const override {
    auto gen = ctx.generator.defined() ? ctx.generator : at::detail::createCPUGenerator(0);
    const auto device = ctx.test.x.device();
    const auto x =
        subsample(ctx.samples.to(device), max_points_, gen).flatten(1).to(torch::kFloat64);
    const auto y = subsample(ctx.test.x, max_points_, gen).flatten(1).to(torch::kFloat64);
    if (x.size(0) < 2 || y.size(0) < 2) {
      throw InputError("mmd needs at least 2 samples and 2 test points, got " +
                       std::to_string(x.size(0)) + " and " + std::to_string(y.size(0)));
    }
    std::vector<MetricValue> values{{"mmd", variant(), mmd2_unbiased(x, y), Better::lower}};
    add_protocol(values, "samples", std::to_string(x.size(0)));  // at most max_points of them
    add_reference(values, "test", y.size(0));
    return values;
  }

 private:
  // Sum over all pairs of k(a, b) = sum_s exp(-|a - b|^2 / (2 s^2)).
  double kernel_sum(const torch::Tensor& a, const torch::Tensor& b) const {
    // |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, exact enough in float64 and one matrix product.
    const auto d2 =
        (a.square().sum(1, true) + b.square().sum(1).unsqueeze(0) - 2.0 * a.matmul(b.t()))
            .clamp_min(0.0);
    double total = 0.0;
    for (const double s : bandwidths_) {
      total += torch::exp(d2 / (-2.0 * s * s)).sum().item<double>();
    }
    return total;
  }

  // Gretton et al. 2012 (JMLR), eq. 3: the unbiased MMD^2_u, diagonal terms left out of k(x, x')
  double mmd2_unbiased(const torch::Tensor& x, const torch::Tensor& y) const {
    const double m = double(x.size(0)), n = double(y.size(0));
    const double k_self = double(bandwidths_.size());  // k(a, a): every exp term is 1
    const double kxx = kernel_sum(x, x) - m * k_self;
    const double kyy = kernel_sum(y, y) - n * k_self;
    const double kxy = kernel_sum(x, y);
    return kxx / (m * (m - 1)) + kyy / (n * (n - 1)) - 2.0 * kxy / (m * n);
  }

  std::string variant() const {
    std::ostringstream out;
    out << "rbf(bandwidths=";
    for (std::size_t i = 0; i < bandwidths_.size(); ++i) out << (i ? "," : "") << bandwidths_[i];
    out << ")";
    return out.str();
  }

  std::vector<double> bandwidths_;
  std::int64_t max_points_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_metric(
      {"mmd", "1.0.0",
       "Unbiased squared MMD between samples and test data, sum of RBF kernels (Gretton 2012)",
       {OptionSpec::real_list("bandwidths", {0.1, 0.2, 0.5, 1.0, 2.0, 5.0},
                              "RBF bandwidths s in data units, k = sum_s exp(-d^2 / 2 s^2)")
            .greater_than(0),
        OptionSpec::integer("max_points", 2000,
                            "points of each set used; larger sets are subsampled")
            .at_least(2)}},
      [](const Options& o) { return std::make_unique<Mmd>(o); });
}
