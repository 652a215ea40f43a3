#include "config/sweep_fields.hpp"

#include <algorithm>

#include "api/did_you_mean.hpp"

namespace difflab {
namespace {

using nlohmann::json;

OptionValue element_value(const Locator& loc, const YAML::Node& n, OptionType type,
                          const std::string& path) {
  const auto expect = [&](const char* what) -> OptionValue {
    loc.fail(n, path,
             std::string("expected ") + what + ", got " +
                 (n.IsScalar() ? "'" + n.Scalar() + "'" : std::string(node_kind(n))));
  };
  switch (type) {
    case OptionType::boolean: {
      bool b = false;
      return parse_scalar(n, &b) ? OptionValue(b) : expect("true or false");
    }
    case OptionType::integer:
    case OptionType::integer_list: {
      std::int64_t i = 0;
      return parse_scalar(n, &i) ? OptionValue(i) : expect("an integer");
    }
    case OptionType::real:
    case OptionType::real_list: {
      double d = 0;
      return parse_scalar(n, &d) ? OptionValue(d) : expect("a number");
    }
    case OptionType::text:
    case OptionType::text_list:
      return n.IsScalar() ? OptionValue(n.Scalar()) : expect("a string");
  }
  return expect("a value");
}

}  // namespace

// "line:column", 1-based, of a place in the YAML text.
std::string mark_text(const YAML::Mark& mark) {
  return std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

std::string sub_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

// A map key as text; a list or map used as a key (`[a]: 1`) is an InputError, not a crash.
std::string key_text(const Locator& loc, const YAML::Node& key, const std::string& path) {
  if (!key.IsScalar() && !key.IsNull()) {
    loc.fail(key, path, std::string("expected a plain key, got ") +
                            (key.IsMap() ? "a map" : "a list") + " used as a key");
  }
  return key.as<std::string>();
}

void check_keys(const Locator& loc, const YAML::Node& map, const std::string& path,
                const std::vector<std::string>& known) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    const auto key = key_text(loc, it->first, path);
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string msg = "unknown key '" + key + "'";
    if (auto guess = did_you_mean(key, known); !guess.empty()) {
      msg += " (did you mean '" + guess + "'?)";
    } else {
      msg += " (expected one of: " + join(known, ", ") + ")";
    }
    loc.fail(it->first, sub_path(path, key), msg);
  }
}

const char* node_kind(const YAML::Node& n) {
  if (n.IsMap()) return "a map";
  if (n.IsSequence()) return "a list";
  if (n.IsNull()) return "nothing";
  return "a scalar";
}

OptionValue node_value(const Locator& loc, const YAML::Node& n, const OptionSpec& spec,
                       const std::string& path) {
  switch (spec.type) {
    case OptionType::real_list:
    case OptionType::integer_list:
    case OptionType::text_list: {
      if (!n.IsSequence()) {
        loc.fail(n, path, std::string("expected a list, got ") + node_kind(n));
      }
      std::vector<double> reals;
      std::vector<std::int64_t> ints;
      std::vector<std::string> texts;
      for (std::size_t i = 0; i < n.size(); ++i) {
        auto v = element_value(loc, n[i], spec.type, path + "[" + std::to_string(i) + "]");
        if (auto* d = std::get_if<double>(&v)) reals.push_back(*d);
        if (auto* k = std::get_if<std::int64_t>(&v)) ints.push_back(*k);
        if (auto* s = std::get_if<std::string>(&v)) texts.push_back(*s);
      }
      if (spec.type == OptionType::real_list) return reals;
      if (spec.type == OptionType::integer_list) return ints;
      return texts;
    }
    default:
      return element_value(loc, n, spec.type, path);
  }
}

json option_json(const OptionValue& v) {
  return std::visit([](const auto& x) { return json(x); }, v);
}

// Validates a map against specs; returns the resolved options and the label of user-set keys.
Options resolve_section(const Locator& loc, const YAML::Node& map, const std::string& path,
                        const std::vector<OptionSpec>& specs, const std::set<std::string>& skip,
                        std::string* label_args) {
  std::vector<std::string> names, candidates(skip.begin(), skip.end());
  for (const auto& s : specs) names.push_back(s.name);
  candidates.insert(candidates.end(), names.begin(), names.end());
  std::map<std::string, OptionValue> given;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const auto key = key_text(loc, it->first, path);
    if (skip.count(key)) continue;
    const auto key_path = sub_path(path, key);
    const auto spec = std::find_if(specs.begin(), specs.end(),
                                   [&](const OptionSpec& s) { return s.name == key; });
    if (spec == specs.end()) {
      std::string msg = "unknown key '" + key + "'";
      if (auto guess = did_you_mean(key, candidates); !guess.empty()) {
        msg += " (did you mean '" + guess + "'?)";
      } else if (!names.empty()) {
        msg += " (known: " + join(names, ", ") + ")";
      } else {
        msg += " (this plugin takes no options)";
      }
      loc.fail(it->first, key_path, msg);
    }
    auto value = node_value(loc, it->second, *spec, key_path);
    if (auto problem = check_option(*spec, value); !problem.empty()) {
      loc.fail(it->second, key_path, problem);
    }
    if (label_args) {
      *label_args += (label_args->empty() ? "" : ",") + key + "=" + format_option(value);
    }
    given.emplace(key, std::move(value));
  }
  for (const auto& s : specs) {
    if (!given.count(s.name) && !s.default_value) {
      loc.fail(map, path, "missing required key '" + s.name + "' (" + s.help + ")");
    }
  }
  return resolve_options(specs, std::move(given), path);
}

PluginConfig resolve_plugin(const Locator& loc, const YAML::Node& node, const std::string& path,
                            PluginKind kind, const Registry& registry,
                            const std::vector<OptionSpec>& framework, const std::set<std::string>& nested) {
  if (!node.IsDefined() || node.IsNull()) {
    loc.fail(node, path, std::string("missing the ") + plugin_kind_name(kind) +
                             " section (a map with a 'plugin' key)");
  }
  if (!node.IsMap()) {
    loc.fail(node, path, std::string("expected a map with a 'plugin' key, got ") + node_kind(node));
  }
  const YAML::Node& name_node = node["plugin"];
  if (!name_node.IsDefined() || !name_node.IsScalar()) {
    loc.fail(node, path, std::string("missing 'plugin: <name>' (available ") +
                             plugin_kind_name(kind) + " plugins: " + join(registry.names(kind), ", ") +
                             ")");
  }
  const auto name = name_node.Scalar();
  const PluginEntry* entry = registry.find(kind, name);
  if (!entry) {
    try {
      registry.get(kind, name);
    } catch (const InputError& e) {
      loc.fail(name_node, sub_path(path, "plugin"), e.what());
    }
  }
  PluginConfig config;
  config.plugin = name;
  std::string args;
  auto specs = entry->info.options;
  specs.insert(specs.end(), framework.begin(), framework.end());
  auto skip = nested;
  skip.insert("plugin");
  config.options = resolve_section(loc, node, path, specs, skip, &args);
  config.label = args.empty() ? name : name + "(" + args + ")";
  config.json = json::object();
  config.json["plugin"] = name;
  for (const auto& [k, v] : config.options.values()) {
    const auto own = std::find_if(framework.begin(), framework.end(), [&](const OptionSpec& o) { return o.name == k; });
    if (own != framework.end() && own->default_value && *own->default_value == v) continue;
    config.json[k] = option_json(v);
  }
  return config;
}

std::vector<PluginConfig> resolve_plugin_list(const Locator& loc, const YAML::Node& node,
                                              const std::string& path, PluginKind kind,
                                              const Registry& registry) {
  if (!node.IsDefined() || node.IsNull()) return {};
  if (!node.IsSequence()) {
    loc.fail(node, path, std::string("expected a list of {plugin: ...} maps, got ") + node_kind(node));
  }
  std::vector<PluginConfig> out;
  std::set<std::string> labels;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const auto item_path = path + "[" + std::to_string(i) + "]";
    out.push_back(resolve_plugin(loc, node[i], item_path, kind, registry));
    if (!labels.insert(out.back().label).second) {
      loc.fail(node[i], item_path, "the same " + std::string(plugin_kind_name(kind)) + " '" +
                                       out.back().label + "' is listed twice");
    }
  }
  return out;
}

// A framework section (config/sections.hpp): its options resolved like a plugin's, its plugin
// lists left to the caller. A missing or empty section takes every default.
Options resolve_framework_section(const Locator& loc, const YAML::Node& root, const SectionSpec& section,
                                  const std::string& parent) {
  const YAML::Node& node = root[section.name];
  const auto path = sub_path(parent, section.name);
  if (node.IsDefined() && !node.IsNull() && !node.IsMap()) {
    loc.fail(node, path, std::string("expected a map, got ") + node_kind(node));
  }
  std::set<std::string> lists;
  for (const auto& l : section.plugin_lists) lists.insert(l.name);
  // A missing section is a zombie node, whose IsMap() throws: test IsDefined() first.
  const bool given = node.IsDefined() && node.IsMap();
  return resolve_section(loc, given ? node : YAML::Node(YAML::NodeType::Map), path, section.options, lists,
                         nullptr);
}

}  // namespace difflab
