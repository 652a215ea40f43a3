#include "difflab/denoiser.hpp"

#include "difflab/errors.hpp"

namespace difflab {

std::string Denoiser::batching_obstacle() const { return "has no batched form"; }

std::unique_ptr<BatchedDenoiser> Denoiser::make_batched(const std::vector<Denoiser*>&) const {
  throw RunError("Denoiser::make_batched: this model has no batched form (its plugin does not "
                 "override make_batched); ask batching_obstacle() first");
}

BatchedDenoiser::~BatchedDenoiser() = default;

}  // namespace difflab
