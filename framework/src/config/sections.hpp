#pragma once
// The sections of a sweep file that the framework itself reads (train, evaluation), declared as
// option specs like a plugin's: one declaration gives the validation and its error messages,
// `runner describe SECTION` and the reference in docs/sweep-files.md.
#include <string>
#include <vector>

#include "difflab/options.hpp"
#include "difflab/plugin.hpp"

namespace difflab {

/// A key that holds a list of plugin instances rather than a value (evaluation.samplers).
struct PluginListKey {
  std::string name;
  PluginKind kind;
  std::string help;
};

struct SectionSpec {
  std::string name;  // the key in the sweep file
  std::string help;
  std::vector<OptionSpec> options;
  std::vector<PluginListKey> plugin_lists;
};

const SectionSpec& train_section();
const SectionSpec& evaluation_section();
/// Options of the schedule section that the framework reads, whatever the schedule plugin.
const std::vector<OptionSpec>& schedule_framework_options();
/// Options of the autoencoder section that the framework reads, whatever the autoencoder plugin.
const std::vector<OptionSpec>& autoencoder_framework_options();
/// Every section declared here, in the order a sweep file usually gives them.
std::vector<const SectionSpec*> framework_sections();
/// The section called `name`; InputError naming the known ones (did you mean ...) otherwise.
const SectionSpec& find_section(const std::string& name);

/// "lr (float, default 0.001): learning rate [> 0]": one key as `runner plugins` and
/// `runner describe` print it, its bounds and choices after its help.
std::string describe_option(const OptionSpec& spec);
/// The section's help, then one line per key (indented by two spaces).
std::string describe_section(const SectionSpec& section);

}  // namespace difflab
