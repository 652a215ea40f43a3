#pragma once
// The key torch::optim::Optimizer::state() files a parameter's state under. LibTorch 1.13 uses
// the parameter's TensorImpl address printed as a string; LibTorch 2.x uses the address itself.
#include <sstream>
#include <string>
#include <type_traits>

#include <torch/torch.h>

namespace difflab {

using OptimizerStateKey =
    std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;

template <typename Key = OptimizerStateKey>
Key optimizer_state_key(const torch::Tensor& param) {
  auto* impl = param.unsafeGetTensorImpl();
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;  // what c10::guts::to_string(impl) writes
    key << impl;
    return key.str();
  } else {
    return static_cast<Key>(impl);
  }
}

}  // namespace difflab
