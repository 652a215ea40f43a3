#pragma once
// y = x W^T + b, the affine layer of the MLP denoisers, with a faster CPU matrix product.
//
// On the CPU, torch's addmm/mm go to whatever libblas.so.3 the system selects (OpenBLAS on
// Debian), whose kernels lag new processors; oneDNN's JIT sgemm (the library torch already loads
// for its mkldnn ops) picks its kernel for the processor it runs on. For float32 CPU tensors this
// layer does its forward and backward products with dnnl_sgemm; anywhere else (CUDA, other
// dtypes, a build without oneDNN, or DIFFLAB_CPU_GEMM=torch) it is torch::linear.
#include "difflab/export.hpp"
#include <torch/torch.h>

namespace difflab {

/// Which matrix-product library CPU linear layers use.
enum class CpuGemm { torch, onednn };

/// The one in use: oneDNN when built with it, unless DIFFLAB_CPU_GEMM=torch (read once).
DIFFLAB_API CpuGemm cpu_gemm();
/// Overrides it for this process (benchmarks and tests compare the two); onednn needs the build.
DIFFLAB_API void set_cpu_gemm(CpuGemm gemm);
DIFFLAB_API bool onednn_available();

/// x [..., in], weight [out, in], bias [out] or undefined -> [..., out]; differentiable in all three.
DIFFLAB_API torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight,
                                 const torch::Tensor& bias);
/// K independent layers at once: x [K, n, in], weight [K, out, in], bias [K, out] or undefined
/// -> [K, n, out] (batched grid training's stacked models).
DIFFLAB_API torch::Tensor batched_linear(const torch::Tensor& x, const torch::Tensor& weight,
                                         const torch::Tensor& bias);
/// The same as linear() for a torch::nn::Linear's parameters.
DIFFLAB_API torch::Tensor linear(const torch::Tensor& x, const torch::nn::Linear& layer);

}  // namespace difflab
