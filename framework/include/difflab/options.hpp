#pragma once
// Typed plugin options: a plugin declares OptionSpecs, the framework validates user input
// against them and hands the plugin an Options view with every value present and checked.
#include "difflab/export.hpp"
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace difflab {

enum class OptionType { boolean, integer, real, text, real_list, integer_list, text_list };

using OptionValue = std::variant<bool, std::int64_t, double, std::string, std::vector<double>,
                                 std::vector<std::int64_t>, std::vector<std::string>>;

/// One option a plugin (or a framework section such as `train`) accepts.
struct DIFFLAB_API OptionSpec {
  std::string name;
  OptionType type = OptionType::real;
  std::optional<OptionValue> default_value;  // nullopt: the user must give it
  std::string help;
  std::optional<double> min;  // numeric bounds, applied to list elements too
  std::optional<double> max;
  bool min_exclusive = false;
  bool max_exclusive = false;
  std::vector<std::string> choices;  // allowed values of a text option; empty: any

  static OptionSpec boolean(std::string name, bool def, std::string help);
  static OptionSpec integer(std::string name, std::int64_t def, std::string help);
  static OptionSpec real(std::string name, double def, std::string help);
  static OptionSpec text(std::string name, std::string def, std::string help,
                         std::vector<std::string> choices = {});
  static OptionSpec real_list(std::string name, std::vector<double> def, std::string help);
  static OptionSpec integer_list(std::string name, std::vector<std::int64_t> def, std::string help);
  static OptionSpec text_list(std::string name, std::vector<std::string> def, std::string help);
  /// An option with no default (the user must set it).
  OptionSpec& required();
  OptionSpec& at_least(double v);
  OptionSpec& greater_than(double v);
  OptionSpec& at_most(double v);
  OptionSpec& less_than(double v);
};

/// Checks a value against a spec's bounds and choices; returns an empty string when it fits,
/// else what is wrong ("must be > 0, got -1").
DIFFLAB_API std::string check_option(const OptionSpec& spec, const OptionValue& value);

/// Human text for a value, as YAML would spell it ("0.02", "[1, 2]", "true").
DIFFLAB_API std::string format_option(const OptionValue& value);

DIFFLAB_API const char* option_type_name(OptionType type);

/// Validated options of one plugin instance.
class DIFFLAB_API Options {
 public:
  Options() = default;
  explicit Options(std::map<std::string, OptionValue> values) : values_(std::move(values)) {}

  bool boolean(const std::string& name) const;
  std::int64_t integer(const std::string& name) const;
  double real(const std::string& name) const;  // integers widen
  const std::string& text(const std::string& name) const;
  std::vector<double> real_list(const std::string& name) const;
  const std::vector<std::int64_t>& integer_list(const std::string& name) const;
  const std::vector<std::string>& text_list(const std::string& name) const;
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  const std::map<std::string, OptionValue>& values() const { return values_; }

 private:
  const OptionValue& at(const std::string& name) const;
  std::map<std::string, OptionValue> values_;
};

/// Fills defaults into `given`, checks every value against its spec and refuses unknown or
/// missing options with an InputError ("unknown option 'x' (did you mean 'y'?)"). `where` prefixes
/// messages, e.g. "schedule 'linear'".
DIFFLAB_API Options resolve_options(const std::vector<OptionSpec>& specs,
                                    std::map<std::string, OptionValue> given,
                                    const std::string& where = "");

}  // namespace difflab
