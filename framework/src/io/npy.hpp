#pragma once
// Writes tensors as NumPy .npy files (format version 1.0), so numpy.load reads samples directly.
#include <string>

#include <torch/torch.h>

namespace difflab {

/// Writes `tensor` (moved to the CPU, float32 kept, others converted to float32) atomically.
void write_npy(const std::string& path, const torch::Tensor& tensor);

/// Reads a float32 C-order .npy written by write_npy (or numpy.save).
torch::Tensor read_npy(const std::string& path);

}  // namespace difflab
