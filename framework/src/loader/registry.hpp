#pragma once
// The loader layer: the plugin registry and the loader of plugin libraries (descriptor checks
// before registration, one load per library, DIFFLAB_PLUGIN_PATH). It uses the api layer only.
//
// The one registry of plugins, in libdifflab; filled by loading plugin libraries.
#include "difflab/export.hpp"
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/did_you_mean.hpp"
#include "difflab/plugin.hpp"

namespace difflab {

/// One registered plugin.
struct PluginEntry {
  PluginKind kind;
  PluginInfo info;
  std::string library;  // path of the .so it came from ("" when registered in-process)
};

class DIFFLAB_API Registry {
 public:
  /// The process-wide registry; created on first use and never destroyed.
  static Registry& instance();

  /// Loads one plugin library; throws PluginError naming the file when it is not a usable
  /// plugin (no entry point, other API or torch version, registration throws, duplicate name).
  void load_library(const std::filesystem::path& file);
  /// Loads every lib*.so in a folder (sorted by name); a missing folder is an InputError.
  void load_directory(const std::filesystem::path& dir);
  /// The build's plugin folder (or the installed one), then `extra_dirs`, then each folder of
  /// DIFFLAB_PLUGIN_PATH. Each library is loaded once, however often it is named.
  void load_default(const std::vector<std::filesystem::path>& extra_dirs = {});

  /// Registers plugins from a function in this process (tests, embedders).
  void register_plugins(void (*register_fn)(Registrar&), const std::string& library = "");

  const PluginEntry* find(PluginKind kind, const std::string& name) const;
  /// Throws InputError "unknown <kind> plugin 'x' (did you mean 'y'?)".
  const PluginEntry& get(PluginKind kind, const std::string& name) const;
  std::vector<const PluginEntry*> list(std::optional<PluginKind> kind = std::nullopt) const;
  std::vector<std::string> names(PluginKind kind) const;

  // Objects made here keep their plugin library loaded for as long as they live.
  std::shared_ptr<NoiseSchedule> make_schedule(const std::string& name, const Options& o) const;
  std::shared_ptr<Denoiser> make_model(const std::string& name, const Options& o) const;
  std::shared_ptr<Sampler> make_sampler(const std::string& name, const Options& o) const;
  std::shared_ptr<Dataset> make_dataset(const std::string& name, const Options& o) const;
  std::shared_ptr<Metric> make_metric(const std::string& name, const Options& o) const;
  std::shared_ptr<Autoencoder> make_autoencoder(const std::string& name, const Options& o) const;

  struct Impl;

 private:
  Registry();
  Impl* impl_;  // never freed, like the registry itself
};

}  // namespace difflab
