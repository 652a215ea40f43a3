// runner validate FILE: check a sweep file without running anything.
#include <iostream>

#include "commands.hpp"

namespace difflab::app {

int validate_command(const Args& args) {
  std::string file;
  std::vector<std::string> overrides;
  PluginArgs plugins;
  po::options_description desc("runner validate options");
  desc.add_options()("help,h", "show this help")
      ("file", po::value(&file)->required(), "sweep file (YAML)")
      ("set", po::value(&overrides)->composing(), "override a key: --set train.lr=1e-3");
  plugins.add_to(desc);
  po::positional_options_description positional;
  positional.add("file", 1);
  po::variables_map vm;
  if (!parse_args(args, "runner validate FILE [--set KEY=VALUE]...", desc, positional, vm)) return 0;
  configure_runtime(1, false, true);
  plugins.load();
  const auto grid = load_and_validate(file, overrides);
  std::cout << file << ": ok, sweep '" << grid.name << "' with " << grid.runs.size() << " run"
            << (grid.runs.size() == 1 ? "" : "s");
  if (!grid.axes.empty()) {
    std::cout << " (axes:";
    for (const auto& a : grid.axes) std::cout << " " << a;
    std::cout << ")";
  }
  std::cout << "\n";
  return 0;
}

}  // namespace difflab::app
