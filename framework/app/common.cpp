#include <unistd.h>

#include <algorithm>
#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "accel/allocator.hpp"
#include "accel/blas.hpp"
#include "commands.hpp"
#include "difflab/errors.hpp"
#include "difflab/linear.hpp"
#include "loader/registry.hpp"
#include "engine/engine.hpp"

namespace difflab::app {

void PluginArgs::add_to(po::options_description& desc) {
  desc.add_options()("plugin-dir", po::value(&plugin_dirs)->composing(),
                     "also load plugin libraries from DIR (repeatable)");
}

void PluginArgs::load() const {
  std::vector<std::filesystem::path> dirs(plugin_dirs.begin(), plugin_dirs.end());
  Registry::instance().load_default(dirs);
}

constexpr const char* kLogPattern = "%H:%M:%S %^%l%$ %v";

void configure_runtime(int threads, bool verbose, bool quiet) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("difflab"));
  spdlog::set_pattern(kLogPattern);
  spdlog::set_level(quiet ? spdlog::level::warn : verbose ? spdlog::level::debug : spdlog::level::info);
  const auto allocator = configure_allocator();
  const auto blas = configure_blas();
  const int used = configure_threads(threads);
  spdlog::debug("allocator: {}", allocator);
  spdlog::debug("BLAS: {} ({}{}){}", blas.library, blas.threading,
                blas.config.empty() ? "" : ", " + blas.config,
                blas.limited ? "; pinned to 1 thread to leave the cores to torch" : "");
  spdlog::debug("torch threads: {}", used);
  // Reads DIFFLAB_CPU_GEMM now, so a bad value is a bad-input error before anything runs.
  spdlog::debug("CPU linear layers: {}", cpu_gemm() == CpuGemm::onednn ? "oneDNN" : "torch's BLAS");
}

std::unique_ptr<SweepProgress> make_progress(const std::string& mode, double every, bool quiet) {
  if (!(every > 0))
    throw InputError(fmt::format("--progress-every {}: must be > 0 seconds", every));
  ProgressOptions options;
  options.mode =
      parse_progress_mode(mode.empty() ? (quiet ? "none" : "auto") : mode, ::isatty(STDERR_FILENO));
  options.every = every;
  options.width = 0;  // the terminal's, at each drawing
  switch (options.mode) {
    case ProgressMode::none: return nullptr;
    case ProgressMode::json: return std::make_unique<SweepProgress>(options, std::cout);
    case ProgressMode::lines:
      options.print_line = [](const std::string& line) { spdlog::info("{}", line); };
      break;
    case ProgressMode::bars: break;
  }
  auto progress = std::make_unique<SweepProgress>(options, std::cerr);
  if (options.mode == ProgressMode::lines) {
    progress->start_ticker(std::clamp(every, 0.05, 1.0));  // periodic lines during evaluations
    return progress;
  }
  auto sink = progress->log_sink();
  sink->set_pattern(kLogPattern);
  spdlog::default_logger()->sinks().assign({sink});
  progress->start_ticker(0.5);  // ETAs move on during an evaluation
  return progress;
}

SweepGrid load_and_validate(const std::string& file, const std::vector<std::string>& overrides) {
  auto grid = load_sweep(file, overrides, Registry::instance());
  for (const auto& run : grid.runs) validate_run(Registry::instance(), run);
  return grid;
}

}  // namespace difflab::app
