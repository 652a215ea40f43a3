// runner validate FILE: check a sweep file without running anything.
#include <cmath>
#include <iostream>
#include <set>

#include <fmt/format.h>

#include "commands.hpp"
#include "engine/engine.hpp"

namespace difflab::app {

// Above this alpha bar_T, x_T keeps more than sqrt(1e-3) = 3% of x_0's scale: sampling from
// N(0, I) then starts where the model never trained (Lin et al. 2024 on Stable Diffusion's 0.0047).
constexpr double kTerminalSignalWarning = 1e-3;

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
  // The terminal signal of each schedule: what of the data is left where sampling starts.
  std::set<std::string> shown;
  for (const auto& run : grid.runs) {
    if (run.task != Task::diffusion || !shown.insert(run.schedule.label).second) continue;
    const double abar_T = terminal_alpha_bar(Registry::instance(), run.schedule);
    std::cout << fmt::format("  schedule {}: alpha bar_T = {:.3g} (sqrt {:.3g} of x_0 survives into x_T)\n",
                             run.schedule.label, abar_T, std::sqrt(abar_T));
    if (abar_T > kTerminalSignalWarning) {
      std::cout << fmt::format(
          "  warning: schedule {}: alpha bar_T = {:.3g} is far from 0: sampling starts from N(0, I), which "
          "the model never saw at t = T; raise timesteps or beta_end, or use a schedule that ends at zero "
          "signal\n",
          run.schedule.label, abar_T);
    }
  }
  return 0;
}

}  // namespace difflab::app
