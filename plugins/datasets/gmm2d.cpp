// gmm2d: an equal-weight mixture of isotropic Gaussians with means on a circle (the 2D GMM study).
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class Gmm2d final : public Dataset {
 public:
  explicit Gmm2d(const Options& o)
      : components_(o.integer("components")),
        radius_(o.real("radius")),
        std_(o.real("std")),
        train_size_(o.integer("train_size")),
        test_size_(o.integer("test_size")) {}

  DataSplit load(Split split, std::uint64_t seed) const override {
    auto gen = split_generator(seed, split);
    const auto n = split == Split::train ? train_size_ : test_size_;
    const auto labels = torch::randint(0, components_, {n}, gen, torch::kLong);
    // mu_k = r (cos 2 pi k / K, sin 2 pi k / K); x = mu_label + std * N(0, I)
    const auto angles = torch::arange(components_, torch::kFloat64) * (2.0 * M_PI / components_);
    const auto means = radius_ * torch::stack({angles.cos(), angles.sin()}, 1);
    const auto noise = torch::randn({n, 2}, gen, torch::kFloat64);
    const auto x = means.index_select(0, labels) + std_ * noise;
    return {x.to(torch::kFloat32).contiguous(), labels};
  }

  std::int64_t num_classes() const override { return components_; }

 private:
  std::int64_t components_;
  double radius_, std_;
  std::int64_t train_size_, test_size_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_dataset(
      {"gmm2d", "1.0.0", "Equal-weight mixture of 2D Gaussians with means on a circle",
       {OptionSpec::integer("components", 8, "number of mixture components (labels 0..K-1)")
            .at_least(1),
        OptionSpec::real("radius", 5.0, "radius of the circle of means (data units)")
            .greater_than(0),
        OptionSpec::real("std", 0.2, "standard deviation of each component, per axis (data units)")
            .greater_than(0),
        OptionSpec::integer("train_size", 12800, "points in the train split").at_least(1),
        OptionSpec::integer("test_size", 2000, "points in the test split").at_least(1)}},
      [](const Options& o) { return std::make_unique<Gmm2d>(o); });
}
