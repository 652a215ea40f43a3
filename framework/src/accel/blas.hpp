#pragma once
// Which BLAS torch got from libblas.so.3, and keeping it from fighting torch's threads.
#include <string>

namespace difflab {

struct BlasInfo {
  std::string library;  // path of the loaded libblas / libopenblas, or "unknown"
  std::string config;   // openblas_get_config() when OpenBLAS, else ""
  std::string threading;  // "sequential", "pthreads", "openmp" or "unknown"
  bool limited = false;   // openblas_set_num_threads(1) was called
};

/// Inspects the loaded BLAS and, for OpenBLAS's pthreads build (which oversubscribes the cores
/// against torch's OpenMP threads), pins it to one thread.
BlasInfo configure_blas();

/// Sets torch's intra-op threads (0: all hardware threads) and returns the number set.
int configure_threads(int threads);

}  // namespace difflab
