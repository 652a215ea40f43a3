// difflab::linear: oneDNN's products must give torch::linear's values and gradients.
#include <catch2/catch.hpp>

#include "difflab/linear.hpp"

using namespace difflab;

namespace {

// Restores the process's choice when a test changed it.
class GemmChoice {
 public:
  GemmChoice() : saved_(cpu_gemm()) {}
  ~GemmChoice() { set_cpu_gemm(saved_); }

 private:
  CpuGemm saved_;
};

struct Grads {
  torch::Tensor y, x, weight, bias;
};

// y = linear(x, W, b), then the gradients of sum(y * probe) (a probe makes every gradient entry
// depend on its own output element, unlike sum(y)).
template <typename Linear>
Grads forward_backward(Linear&& layer, const torch::Tensor& x0, const torch::Tensor& w0,
                       const torch::Tensor& b0, const torch::Tensor& probe, bool x_grad) {
  auto x = x0.clone().requires_grad_(x_grad);
  auto w = w0.clone().requires_grad_(true);
  auto b = b0.defined() ? b0.clone().requires_grad_(true) : torch::Tensor();
  auto y = layer(x, w, b);
  (y * probe).sum().backward();
  return {y.detach(), x_grad ? x.grad() : torch::Tensor(), w.grad(), b.defined() ? b.grad() : torch::Tensor()};
}

void check_close(const torch::Tensor& got, const torch::Tensor& want) {
  REQUIRE(got.defined() == want.defined());
  if (!got.defined()) return;
  REQUIRE(got.sizes() == want.sizes());
  const double scale = want.abs().max().item<double>() + 1.0;
  CHECK((got - want).abs().max().item<double>() < 2e-5 * scale);
}

// The output and every gradient of `ours` against `reference`, with and without a bias.
template <typename Reference, typename Ours>
void compare(Reference&& reference, Ours&& ours, const torch::Tensor& x, const torch::Tensor& w,
             const torch::Tensor& b, const torch::Tensor& probe, bool x_grad) {
  for (const bool with_bias : {true, false}) {
    const auto bias = with_bias ? b : torch::Tensor();
    const auto want = forward_backward(reference, x, w, bias, probe, x_grad);
    const auto got = forward_backward(ours, x, w, bias, probe, x_grad);
    check_close(got.y, want.y);
    check_close(got.x, want.x);
    check_close(got.weight, want.weight);
    check_close(got.bias, want.bias);
  }
}

}  // namespace

TEST_CASE("difflab::linear matches torch::linear in value and gradients", "[linear]") {
  torch::manual_seed(3);
  const auto x = torch::randn({37, 5, 19});  // a batch of sequences: products over the last dim
  const auto w = torch::randn({23, 19});
  const auto b = torch::randn({23});
  const auto probe = torch::randn({37, 5, 23});
  const auto reference = [](const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
    return torch::linear(x, w, b);
  };
  const auto ours = [](const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
    return linear(x, w, b);
  };
  for (const bool x_grad : {true, false}) compare(reference, ours, x, w, b, probe, x_grad);
}

TEST_CASE("difflab::linear takes non-contiguous inputs and runs without autograd", "[linear]") {
  torch::manual_seed(4);
  const auto x = torch::randn({16, 40}).t();  // [40, 16], transposed storage
  const auto w = torch::randn({8, 32}).narrow(1, 0, 16);  // [8, 16], row stride 32
  const auto b = torch::randn({8});
  torch::NoGradGuard no_grad;
  check_close(linear(x, w, b), torch::linear(x, w, b));
}

TEST_CASE("the CPU GEMM switch selects torch's BLAS exactly", "[linear]") {
  GemmChoice restore;
  torch::manual_seed(5);
  const auto x = torch::randn({64, 32});
  const auto w = torch::randn({16, 32});
  const auto b = torch::randn({16});
  set_cpu_gemm(CpuGemm::torch);
  CHECK(cpu_gemm() == CpuGemm::torch);
  CHECK(torch::equal(linear(x, w, b), torch::linear(x, w, b)));
  if (onednn_available()) {
    set_cpu_gemm(CpuGemm::onednn);
    CHECK(cpu_gemm() == CpuGemm::onednn);
    check_close(linear(x, w, b), torch::linear(x, w, b));
  } else {
    CHECK_THROWS_WITH(set_cpu_gemm(CpuGemm::onednn), Catch::Contains("without oneDNN"));
  }
}


TEST_CASE("difflab::batched_linear is K independent layers", "[linear]") {
  torch::manual_seed(6);
  const auto x = torch::randn({3, 20, 12});
  const auto w = torch::randn({3, 7, 12});
  const auto b = torch::randn({3, 7});
  const auto probe = torch::randn({3, 20, 7});
  const auto reference = [](const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
    std::vector<torch::Tensor> ys;
    for (int k = 0; k < 3; ++k) ys.push_back(torch::linear(x[k], w[k], b.defined() ? b[k] : b));
    return torch::stack(ys);
  };
  const auto ours = [](const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
    return batched_linear(x, w, b);
  };
  compare(reference, ours, x, w, b, probe, true);
}

TEST_CASE("one row through difflab::linear and batched_linear leaves the bias as it was", "[linear]") {
  // A [1, out] view of the bias is contiguous: the product once went into the bias itself.
  torch::manual_seed(7);
  const auto w = torch::randn({9, 4}), b = torch::randn({9});
  const auto before = b.clone();
  const auto x = torch::randn({1, 4});
  for (int call = 0; call < 3; ++call) {
    CHECK(torch::allclose(linear(x, w, b), torch::linear(x, w, before), 1e-5, 1e-6));
    CHECK(torch::equal(b, before));
  }
  const auto wk = torch::randn({3, 9, 4}), bk = torch::randn({3, 9});
  const auto bk_before = bk.clone();
  const auto xk = torch::randn({3, 1, 4});
  for (int call = 0; call < 3; ++call) {
    const auto y = batched_linear(xk, wk, bk);
    for (int k = 0; k < 3; ++k) CHECK(torch::allclose(y[k], torch::linear(xk[k], wk[k], bk_before[k]), 1e-5, 1e-6));
    CHECK(torch::equal(bk, bk_before));
  }
}
