#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "blas.hpp"
#include "commands.hpp"
#include "difflab/registry.hpp"
#include "engine.hpp"

namespace difflab::app {

void PluginArgs::add_to(po::options_description& desc) {
  desc.add_options()("plugin-dir", po::value(&plugin_dirs)->composing(),
                     "also load plugin libraries from DIR (repeatable)");
}

void PluginArgs::load() const {
  std::vector<std::filesystem::path> dirs(plugin_dirs.begin(), plugin_dirs.end());
  Registry::instance().load_default(dirs);
}

bool parse_args(const Args& args, const std::string& usage, const po::options_description& desc,
                const po::positional_options_description& positional, po::variables_map& vm) {
  po::store(po::command_line_parser(args).options(desc).positional(positional).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: " << usage << "\n\n" << desc;
    return false;
  }
  po::notify(vm);
  return true;
}

void configure_runtime(int threads, bool verbose, bool quiet) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("difflab"));
  spdlog::set_pattern("%H:%M:%S %^%l%$ %v");
  spdlog::set_level(quiet ? spdlog::level::warn : verbose ? spdlog::level::debug : spdlog::level::info);
  const auto blas = configure_blas();
  const int used = configure_threads(threads);
  spdlog::debug("BLAS: {} ({}{}){}", blas.library, blas.threading,
                blas.config.empty() ? "" : ", " + blas.config,
                blas.limited ? "; pinned to 1 thread to leave the cores to torch" : "");
  spdlog::debug("torch threads: {}", used);
}

SweepGrid load_and_validate(const std::string& file, const std::vector<std::string>& overrides) {
  auto grid = load_sweep(file, overrides, Registry::instance());
  for (const auto& run : grid.runs) validate_run(Registry::instance(), run);
  return grid;
}

}  // namespace difflab::app
