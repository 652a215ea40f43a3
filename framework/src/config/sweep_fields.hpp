#pragma once
// Reading the fields of a sweep file: typed values out of YAML nodes, checked against option
// specs, with errors that say where ("file:line:column: key.path: what is wrong", or the --set
// flag that gave the value) and a "did you mean" for unknown keys. Internal to the config layer.
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "config/sections.hpp"
#include "config/sweep_grid.hpp"
#include "difflab/errors.hpp"

namespace difflab {

/// "line:column", 1-based, of a place in the YAML text.
std::string mark_text(const YAML::Mark& mark);

// Says where a node came from: "file:line:col" or the --set flag that put it there.
class Locator {
 public:
  Locator(std::string file, std::map<std::string, std::string> overrides)
      : file_(std::move(file)), overrides_(std::move(overrides)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& path,
                         const std::string& what) const {
    throw InputError(where(node, path) + (path.empty() ? "" : path + ": ") + what);
  }

  std::string where(const YAML::Node& node, const std::string& path) const {
    for (const auto& [key, value] : overrides_) {
      if (path == key || path.rfind(key + ".", 0) == 0) return "--set " + key + "=" + value + ": ";
    }
    if (!node.IsDefined()) return file_ + ": ";  // a missing key has no position
    const auto mark = node.Mark();
    if (mark.is_null()) return file_ + ": ";
    return file_ + ":" + mark_text(mark) + ": ";
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::map<std::string, std::string> overrides_;
};

/// "a.b" + "c" -> "a.b.c"; "" + "c" -> "c".
std::string sub_path(const std::string& path, const std::string& key);
/// A map key as text; a list or map used as a key (`[a]: 1`) is an InputError, not a crash.
std::string key_text(const Locator& loc, const YAML::Node& key, const std::string& path);
/// Refuses a key of `map` not in `known`, with a "did you mean".
void check_keys(const Locator& loc, const YAML::Node& map, const std::string& path,
                const std::vector<std::string>& known);
/// "a map", "a list", "nothing", "a scalar": what a node is, for messages.
const char* node_kind(const YAML::Node& n);

template <class T>
bool parse_scalar(const YAML::Node& n, T* out) {
  if (!n.IsScalar()) return false;
  try {
    *out = n.as<T>();
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}

/// The value of `n` as `spec`'s type (lists element by element); refuses another type.
OptionValue node_value(const Locator& loc, const YAML::Node& n, const OptionSpec& spec, const std::string& path);
/// An option value as JSON, as the store records it.
nlohmann::json option_json(const OptionValue& v);
/// Validates a map against specs, keys in `skip` aside; returns the resolved options and, when
/// `label_args` is given, the user-set keys as "k=v,k=v" (a plugin instance's label).
Options resolve_section(const Locator& loc, const YAML::Node& map, const std::string& path,
                        const std::vector<OptionSpec>& specs, const std::set<std::string>& skip,
                        std::string* label_args);
/// A plugin section ({plugin: NAME, options...}) resolved against the plugin's option specs and
/// `framework`'s, options the framework itself reads in every plugin of the kind (a schedule's
/// rescale_zero_terminal_snr). Those are left out of the JSON (the run's identity) while they hold
/// their default, so adding one does not change the identity of runs recorded before it. Keys in
/// `nested` hold sections of their own that the caller reads (an autoencoder's train).
PluginConfig resolve_plugin(const Locator& loc, const YAML::Node& node, const std::string& path,
                            PluginKind kind, const Registry& registry,
                            const std::vector<OptionSpec>& framework = {},
                            const std::set<std::string>& nested = {});
/// A list of plugin sections; the same instance listed twice is refused.
std::vector<PluginConfig> resolve_plugin_list(const Locator& loc, const YAML::Node& node,
                                              const std::string& path, PluginKind kind,
                                              const Registry& registry);
/// A framework section (config/sections.hpp): its options resolved like a plugin's, its plugin
/// lists left to the caller. A missing or empty section takes every default. `parent` is the
/// path of `root` ("autoencoder" for the train section inside it; "" at the top level).
Options resolve_framework_section(const Locator& loc, const YAML::Node& root, const SectionSpec& section,
                                  const std::string& parent = "");

}  // namespace difflab
