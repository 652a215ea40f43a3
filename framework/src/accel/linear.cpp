#include "difflab/linear.hpp"

#include <cstdlib>
#include <string>

#include "difflab/errors.hpp"

#if DIFFLAB_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

namespace difflab {
namespace {

CpuGemm initial_gemm() {
  const char* env = std::getenv("DIFFLAB_CPU_GEMM");
  const std::string wanted = env ? env : "";
  if (wanted == "torch") return CpuGemm::torch;
  if (!wanted.empty() && wanted != "onednn") {
    throw InputError("DIFFLAB_CPU_GEMM: expected 'torch' or 'onednn', got '" + wanted + "'");
  }
  return onednn_available() ? CpuGemm::onednn : CpuGemm::torch;
}

CpuGemm& gemm_choice() {
  static CpuGemm choice = initial_gemm();
  return choice;
}

#if DIFFLAB_WITH_ONEDNN
// Row-major C[m, n] = op(A) op(B) + beta C on contiguous float32 buffers.
void sgemm(char trans_a, char trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
           std::int64_t ldc) {
  const auto status = dnnl_sgemm(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
  TORCH_CHECK(status == dnnl_success, "dnnl_sgemm failed with status ", int(status));
}

// Shapes of a batch of K independent layers (K = 1 for a plain layer): x [K, n, in],
// weight [K, out, in], bias [K, out]; 2-D x, weight and 1-D bias are the K = 1 case.
struct Dims {
  std::int64_t k, n, in, out;
  explicit Dims(const torch::Tensor& x, const torch::Tensor& weight)
      : k(x.dim() == 3 ? x.size(0) : 1), n(x.size(-2)), in(x.size(-1)), out(weight.size(-2)) {}
};

// y[k] = x[k] weight[k]^T + bias[k], each product one oneDNN call.
torch::Tensor affine(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const Dims d(x, weight);
  auto sizes = x.sizes().vec();
  sizes.back() = d.out;
  // A new buffer holding the bias rows, which the product is added to (beta = 1). Not
  // bias.expand(sizes).contiguous(): for one row that is the bias itself (a [1, out] view is
  // contiguous already), and the product would be added into the layer's parameter.
  auto y = torch::empty(sizes, x.options());
  if (bias.defined()) y.copy_(bias.unsqueeze(-2).expand(sizes));
  for (std::int64_t k = 0; k < d.k; ++k) {
    sgemm('N', 'T', d.n, d.out, d.in, x.data_ptr<float>() + k * d.n * d.in, d.in,
          weight.data_ptr<float>() + k * d.out * d.in, d.in, bias.defined() ? 1.0f : 0.0f,
          y.data_ptr<float>() + k * d.n * d.out, d.out);
  }
  return y;
}

// A custom autograd node: the same three gradients torch's AddmmBackward (or, batched,
// BaddbmmBackward) computes, with oneDNN.
struct OnednnLinear : public torch::autograd::Function<OnednnLinear> {
  // Autograd nodes take defined tensors only: without a bias, `bias` is an empty placeholder.
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias, bool has_bias) {
    ctx->save_for_backward({x, weight});
    ctx->saved_data["has_bias"] = has_bias;
    return affine(x, weight, has_bias ? bias : torch::Tensor());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& weight = saved[1];
    const auto g = grads[0].contiguous();
    const Dims d(x, weight);
    torch::Tensor grad_x, grad_weight, grad_bias;
    if (ctx->needs_input_grad(0)) grad_x = torch::empty_like(x);
    if (ctx->needs_input_grad(1)) grad_weight = torch::empty_like(weight);
    for (std::int64_t k = 0; k < d.k; ++k) {
      const float* gk = g.data_ptr<float>() + k * d.n * d.out;
      if (grad_x.defined()) {  // [n, out] x [out, in]
        sgemm('N', 'N', d.n, d.in, d.out, gk, d.out, weight.data_ptr<float>() + k * d.out * d.in, d.in,
              0.0f, grad_x.data_ptr<float>() + k * d.n * d.in, d.in);
      }
      if (grad_weight.defined()) {  // [out, n] x [n, in]
        sgemm('T', 'N', d.out, d.in, d.n, gk, d.out, x.data_ptr<float>() + k * d.n * d.in, d.in, 0.0f,
              grad_weight.data_ptr<float>() + k * d.out * d.in, d.in);
      }
    }
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)) grad_bias = g.sum(-2);
    return {grad_x, grad_weight, grad_bias, torch::Tensor()};
  }
};

// The product through the autograd node when a gradient is wanted, else directly.
torch::Tensor onednn_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const bool wants_grad = torch::GradMode::is_enabled() &&
                          (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
  if (!wants_grad) return affine(x.contiguous(), weight.contiguous(), bias.defined() ? bias.contiguous() : bias);
  const auto b = bias.defined() ? bias.contiguous() : torch::empty({0}, weight.options());
  return OnednnLinear::apply(x.contiguous(), weight.contiguous(), b, bias.defined());
}

bool onednn_applies(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const auto cpu_float = [](const torch::Tensor& t) {
    return t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.layout() == torch::kStrided;
  };
  return gemm_choice() == CpuGemm::onednn && x.dim() >= 1 && cpu_float(x) && cpu_float(weight) &&
         (!bias.defined() || cpu_float(bias)) && x.size(-1) == weight.size(-1) && x.numel() > 0 &&
         weight.numel() > 0;
}
#endif

}  // namespace

bool onednn_available() { return DIFFLAB_WITH_ONEDNN != 0; }

CpuGemm cpu_gemm() { return gemm_choice(); }

void set_cpu_gemm(CpuGemm gemm) {
  if (gemm == CpuGemm::onednn && !onednn_available()) {
    throw InputError("this difflab was built without oneDNN; CPU linear layers use torch");
  }
  gemm_choice() = gemm;
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
#if DIFFLAB_WITH_ONEDNN
  if (weight.dim() == 2 && onednn_applies(x, weight, bias)) {
    const auto rows = x.reshape({-1, x.size(-1)});
    auto sizes = x.sizes().vec();
    sizes.back() = weight.size(0);
    return onednn_linear(rows, weight, bias).view(sizes);
  }
#endif
  return torch::linear(x, weight, bias);
}

torch::Tensor batched_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  TORCH_CHECK(x.dim() == 3 && weight.dim() == 3 && x.size(0) == weight.size(0) && x.size(2) == weight.size(2),
              "batched_linear: expected x [K, n, in] and weight [K, out, in], got ", x.sizes(), " and ",
              weight.sizes());
#if DIFFLAB_WITH_ONEDNN
  if (onednn_applies(x, weight, bias)) {
    return onednn_linear(x, weight, bias);
  }
#endif
  return bias.defined() ? torch::baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))
                        : torch::bmm(x, weight.transpose(1, 2));
}

torch::Tensor linear(const torch::Tensor& x, const torch::nn::Linear& layer) {
  return linear(x, layer->weight, layer->bias);
}

}  // namespace difflab
