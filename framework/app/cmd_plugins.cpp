// runner plugins: what is loaded, from which library, with which options.
#include <filesystem>
#include <iostream>

#include "commands.hpp"
#include "config/sections.hpp"
#include "difflab/errors.hpp"
#include "loader/registry.hpp"

namespace difflab::app {

int plugins_command(const Args& args) {
  std::string kind_name;
  PluginArgs plugins;
  po::options_description desc("runner plugins options");
  desc.add_options()("help,h", "show this help")
      ("kind", po::value(&kind_name), "only this kind: schedule, model, sampler, dataset, metric, autoencoder");
  plugins.add_to(desc);
  po::variables_map vm;
  if (!parse_args(args, "runner plugins [--kind KIND] [--plugin-dir DIR]...", desc, {}, vm)) return 0;
  std::optional<PluginKind> kind;
  if (!kind_name.empty()) {
    std::vector<std::string> names;
    for (auto k : kAllPluginKinds) {
      names.push_back(plugin_kind_name(k));
      if (kind_name == plugin_kind_name(k)) kind = k;
    }
    if (!kind) {
      const auto guess = did_you_mean(kind_name, names);
      throw InputError("--kind " + kind_name + ": unknown kind" +
                       (guess.empty() ? "" : " (did you mean '" + guess + "'?)"));
    }
  }
  configure_runtime(1, false, true);
  plugins.load();
  for (const auto* e : Registry::instance().list(kind)) {
    std::cout << plugin_kind_name(e->kind) << "  " << e->info.name << "  " << e->info.version << "  "
              << std::filesystem::path(e->library).filename().string() << "\n    " << e->info.summary
              << "\n";
    for (const auto& o : e->info.options) std::cout << "    " << describe_option(o) << "\n";
  }
  return 0;
}

}  // namespace difflab::app
