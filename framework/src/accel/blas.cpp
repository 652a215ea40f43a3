#include "accel/blas.hpp"

#include <dlfcn.h>
#include <link.h>

#include <thread>

#include <torch/torch.h>

namespace difflab {
namespace {

int find_blas(struct dl_phdr_info* info, size_t, void* data) {
  const std::string name = info->dlpi_name ? info->dlpi_name : "";
  auto* out = static_cast<std::string*>(data);
  if (name.find("libopenblas") != std::string::npos ||
      (out->empty() && name.find("libblas.so") != std::string::npos)) {
    *out = name;
  }
  return 0;
}

}  // namespace

BlasInfo configure_blas() {
  BlasInfo info;
  dl_iterate_phdr(find_blas, &info.library);
  if (info.library.empty()) info.library = "unknown";
  using GetConfig = char* (*)();
  using GetParallel = int (*)();
  using SetThreads = void (*)(int);
  auto get_config = reinterpret_cast<GetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  auto get_parallel = reinterpret_cast<GetParallel>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  auto set_threads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  info.threading = "unknown";
  if (get_config) info.config = get_config();
  if (get_parallel) {
    switch (get_parallel()) {  // OpenBLAS: 0 sequential, 1 pthreads, 2 OpenMP
      case 0: info.threading = "sequential"; break;
      case 1: info.threading = "pthreads"; break;
      case 2: info.threading = "openmp"; break;
      default: break;
    }
  }
  if (info.threading == "pthreads" && set_threads) {
    set_threads(1);
    info.limited = true;
  }
  return info;
}

int configure_threads(int threads) {
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
  torch::set_num_threads(threads);
  return threads;
}

}  // namespace difflab
