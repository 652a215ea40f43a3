// runner describe [SECTION]: a sweep-file section's keys with types, defaults, bounds and help,
// printed from the same specs (config/sections.hpp) that validate the file.
#include <iostream>

#include "commands.hpp"
#include "config/sections.hpp"

namespace difflab::app {

int describe_command(const Args& args) {
  std::string section;
  po::options_description desc("runner describe options");
  desc.add_options()("help,h", "show this help")
      ("section", po::value(&section), "train or evaluation (default: every section)");
  po::positional_options_description positional;
  positional.add("section", 1);
  po::variables_map vm;
  if (!parse_args(args, "runner describe [SECTION]", desc, positional, vm)) return 0;
  if (!section.empty()) {
    std::cout << describe_section(find_section(section));
    return 0;
  }
  std::cout << "name (string, required): the sweep's name in the store and its folder under --out\n"
               "seed (int, default 0): the seed every random draw of a run derives from [>= 0]\n"
               "device (string, default auto): auto, cpu, cuda or cuda:N\n"
               "dataset, model, schedule: {plugin: NAME, options...}; each plugin's options: "
               "runner plugins --kind KIND\n"
               "sweep: the axes, {key.path: [values]}; the grid is their product\n"
               "task (string, default diffusion): diffusion, or autoencoder (trains the autoencoder "
               "section's network; no model or schedule)\n"
               "autoencoder: {plugin: NAME, options...}; with task: autoencoder the network the run "
               "trains; in a diffusion run, the autoencoder whose latents the model diffuses, trained "
               "first as its own run with the section's own train and evaluation (runner plugins "
               "--kind autoencoder)\n";
  std::cout << "schedule: also, whatever the plugin\n";
  for (const auto& o : schedule_framework_options()) std::cout << "  " << describe_option(o) << "\n";
  std::cout << "autoencoder: also, whatever the plugin\n";
  for (const auto& o : autoencoder_framework_options()) std::cout << "  " << describe_option(o) << "\n";
  for (const auto* s : framework_sections()) std::cout << describe_section(*s);
  return 0;
}

}  // namespace difflab::app
