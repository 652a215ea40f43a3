#pragma once
// A noise schedule: the betas of a discrete-time forward process.
#include "difflab/export.hpp"
#include <torch/torch.h>

namespace difflab {

class DIFFLAB_API NoiseSchedule {
 public:
  virtual ~NoiseSchedule() = default;
  /// beta_1..beta_T as a float64 CPU tensor of length T, each in (0, 1).
  virtual torch::Tensor betas() const = 0;
};

}  // namespace difflab
