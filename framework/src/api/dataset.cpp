#include "difflab/dataset.hpp"

#include <ATen/CPUGeneratorImpl.h>

namespace difflab {

torch::Generator split_generator(std::uint64_t seed, Split split) {
  std::uint64_t z = seed * 2 + (split == Split::test ? 1 : 0) + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;  // splitmix64 finaliser
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return at::detail::createCPUGenerator(z ^ (z >> 31));
}

}  // namespace difflab
