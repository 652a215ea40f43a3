// libFuzzer target: the input is a sweep file, loaded and validated as `runner validate` does
// (load_sweep, then validate_run for every grid point) with the real plugins of this build, on
// grids of up to kMaxFuzzGridPoints. InputError is the answer to bad input; any other exception
// escaping is a finding.
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "difflab/errors.hpp"
#include "loader/registry.hpp"
#include "engine/engine.hpp"
#include "config/sweep_grid.hpp"

namespace {

// Grids up to this size run every code path (libFuzzer's loop-count features stop at 128); the
// per-point cost of larger ones (~3 ms here under ASan) would only trip -timeout. The 100000-point
// limit itself and big-grid speed are covered by tests/framework/config/test_sweep_grid.cpp.
constexpr std::size_t kMaxFuzzGridPoints = 256;

[[noreturn]] void finding(const std::string& what) {
  std::cerr << "sweep_fuzz: not an InputError: " << what << "\n";
  std::abort();  // libFuzzer saves the input as crash-<sha1>
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  spdlog::set_level(spdlog::level::warn);
  torch::set_num_threads(1);  // one input at a time; -jobs/-workers use the cores
  try {
    difflab::Registry::instance().load_default({});  // as runner: the build's plugin folder
  } catch (const std::exception& e) {
    std::cerr << "sweep_fuzz: cannot load the plugins: " << e.what() << "\n";
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto& registry = difflab::Registry::instance();
  try {
    const auto grid = difflab::load_sweep_text(text, "fuzz.yaml", {}, registry, kMaxFuzzGridPoints);
    for (const auto& run : grid.runs) difflab::validate_run(registry, run);
  } catch (const difflab::InputError& e) {
    if (std::string(e.what()).empty()) finding("an InputError without a message");
  } catch (const c10::Error& e) {
    finding(std::string("c10::Error: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    finding(e.what());
  } catch (...) {
    finding("an exception of unknown type");
  }
  return 0;
}
