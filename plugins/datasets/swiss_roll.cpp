// swiss_roll: the 2D Swiss roll of sklearn's make_swiss_roll (x and z columns), scaled.
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

class SwissRoll final : public Dataset {
 public:
  explicit SwissRoll(const Options& o)
      : noise_(o.real("noise")),
        scale_(o.real("scale")),
        train_size_(o.integer("train_size")),
        test_size_(o.integer("test_size")) {}

  DataSplit load(Split split, std::uint64_t seed) const override {
    auto gen = split_generator(seed, split);
    const auto n = split == Split::train ? train_size_ : test_size_;
    // sklearn make_swiss_roll: t = 1.5 pi (1 + 2u), (x, y) = (t cos t, t sin t) + noise * N(0, I)
    const auto t = 1.5 * M_PI * (1.0 + 2.0 * torch::rand({n}, gen, torch::kFloat64));
    const auto roll = torch::stack({t * t.cos(), t * t.sin()}, 1);
    const auto x = scale_ * (roll + noise_ * torch::randn({n, 2}, gen, torch::kFloat64));
    return {x.to(torch::kFloat32).contiguous(), torch::Tensor()};
  }

 private:
  double noise_, scale_;
  std::int64_t train_size_, test_size_;
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_dataset(
      {"swiss_roll", "1.0.0",
       "2D Swiss roll (sklearn make_swiss_roll, x/z plane), scaled to about [-1.5, 1.5]",
       {OptionSpec::real("noise", 0.5, "std of the Gaussian noise, before scaling (roll units)")
            .at_least(0),
        OptionSpec::real("scale", 0.1, "factor applied to the roll; 0.1 maps radius 14.1 to 1.41")
            .greater_than(0),
        OptionSpec::integer("train_size", 10000, "points in the train split").at_least(1),
        OptionSpec::integer("test_size", 2000, "points in the test split").at_least(1)}},
      [](const Options& o) { return std::make_unique<SwissRoll>(o); });
}
