// moons: two interleaving half circles, as sklearn's make_moons (shuffled, Gaussian noise).
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class Moons final : public Dataset {
 public:
  explicit Moons(const Options& o)
      : noise_(o.real("noise")),
        train_size_(o.integer("train_size")),
        test_size_(o.integer("test_size")) {}

  DataSplit load(Split split, std::uint64_t seed) const override {
    auto gen = split_generator(seed, split);
    const auto n = split == Split::train ? train_size_ : test_size_;
    const auto n_outer = n / 2;
    const auto n_inner = n - n_outer;
    // sklearn make_moons: outer (cos s, sin s), inner (1 - cos s, 1/2 - sin s), s evenly in [0, pi]
    const auto s_outer = torch::linspace(0, M_PI, n_outer, torch::kFloat64);
    const auto s_inner = torch::linspace(0, M_PI, n_inner, torch::kFloat64);
    const auto outer = torch::stack({s_outer.cos(), s_outer.sin()}, 1);
    const auto inner = torch::stack({1.0 - s_inner.cos(), 0.5 - s_inner.sin()}, 1);
    const auto points = torch::cat({outer, inner}, 0);
    const auto labels = torch::cat({torch::zeros({n_outer}, torch::kLong),
                                    torch::ones({n_inner}, torch::kLong)});
    const auto order = torch::randperm(n, gen, torch::kLong);
    const auto x =
        points.index_select(0, order) + noise_ * torch::randn({n, 2}, gen, torch::kFloat64);
    return {x.to(torch::kFloat32).contiguous(), labels.index_select(0, order)};
  }

  std::int64_t num_classes() const override { return 2; }

 private:
  double noise_;
  std::int64_t train_size_, test_size_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_dataset(
      {"moons", "1.0.0", "Two interleaving half circles (sklearn make_moons); label = moon",
       {OptionSpec::real("noise", 0.05, "std of the Gaussian noise on each point (data units)")
            .at_least(0),
        OptionSpec::integer("train_size", 10000, "points in the train split").at_least(1),
        OptionSpec::integer("test_size", 2000, "points in the test split").at_least(1)}},
      [](const Options& o) { return std::make_unique<Moons>(o); });
}
