#pragma once
// A dataset: train and test splits of x (float32, images in [-1, 1]) and optional labels.
#include "difflab/export.hpp"
#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace difflab {

enum class Split { train, test };

struct DataSplit {
  torch::Tensor x;       // float32 [N, ...sample shape]
  torch::Tensor labels;  // int64 [N], undefined when the dataset has none
};

class DIFFLAB_API Dataset {
 public:
  virtual ~Dataset() = default;
  /// The split on the CPU. Synthetic datasets draw it from `seed`, so the same seed gives the
  /// same points; the train and test splits are independent draws.
  virtual DataSplit load(Split split, std::uint64_t seed) const = 0;
  virtual std::int64_t num_classes() const { return 0; }
};

/// A CPU generator for drawing one split of a synthetic dataset: train and test get independent
/// streams of the same seed (splitmix64 of seed and split), so the same seed gives the same data.
DIFFLAB_API torch::Generator split_generator(std::uint64_t seed, Split split);

}  // namespace difflab
