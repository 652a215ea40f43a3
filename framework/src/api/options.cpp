#include "difflab/options.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "difflab/errors.hpp"
#include "api/did_you_mean.hpp"

namespace difflab {
namespace {

OptionSpec make_spec(std::string name, OptionType type, OptionValue def, std::string help) {
  OptionSpec spec;
  spec.name = std::move(name);
  spec.type = type;
  spec.default_value = std::move(def);
  spec.help = std::move(help);
  return spec;
}

std::string format_number(double v) {
  std::ostringstream out;
  out.precision(10);
  out << v;
  return out.str();
}

std::string check_number(const OptionSpec& spec, double v) {
  if (!std::isfinite(v)) return "must be a finite number, got " + format_number(v);
  if (spec.min) {
    const bool bad = spec.min_exclusive ? !(v > *spec.min) : !(v >= *spec.min);
    if (bad) {
      return std::string("must be ") + (spec.min_exclusive ? "> " : ">= ") +
             format_number(*spec.min) + ", got " + format_number(v);
    }
  }
  if (spec.max) {
    const bool bad = spec.max_exclusive ? !(v < *spec.max) : !(v <= *spec.max);
    if (bad) {
      return std::string("must be ") + (spec.max_exclusive ? "< " : "<= ") +
             format_number(*spec.max) + ", got " + format_number(v);
    }
  }
  return "";
}

// Widens ints to floats where a float is expected; any other mismatch is an error.
OptionValue coerce(const OptionSpec& spec, const OptionValue& value, const std::string& prefix) {
  if (spec.type == OptionType::real) {
    if (const auto* i = std::get_if<std::int64_t>(&value)) return double(*i);
  }
  if (spec.type == OptionType::real_list) {
    if (const auto* l = std::get_if<std::vector<std::int64_t>>(&value)) {
      return std::vector<double>(l->begin(), l->end());
    }
  }
  static constexpr OptionType kIndexType[] = {
      OptionType::boolean,   OptionType::integer,      OptionType::real,     OptionType::text,
      OptionType::real_list, OptionType::integer_list, OptionType::text_list};
  if (kIndexType[value.index()] != spec.type) {
    throw InputError(prefix + "option '" + spec.name + "' must be a " +
                     option_type_name(spec.type) + ", got " + option_type_name(kIndexType[value.index()]) +
                     " " + format_option(value));
  }
  return value;
}

}  // namespace

OptionSpec OptionSpec::boolean(std::string name, bool def, std::string help) {
  return make_spec(std::move(name), OptionType::boolean, def, std::move(help));
}
OptionSpec OptionSpec::integer(std::string name, std::int64_t def, std::string help) {
  return make_spec(std::move(name), OptionType::integer, def, std::move(help));
}
OptionSpec OptionSpec::real(std::string name, double def, std::string help) {
  return make_spec(std::move(name), OptionType::real, def, std::move(help));
}
OptionSpec OptionSpec::text(std::string name, std::string def, std::string help,
                            std::vector<std::string> choices) {
  auto spec = make_spec(std::move(name), OptionType::text, std::move(def), std::move(help));
  spec.choices = std::move(choices);
  return spec;
}
OptionSpec OptionSpec::real_list(std::string name, std::vector<double> def, std::string help) {
  return make_spec(std::move(name), OptionType::real_list, std::move(def), std::move(help));
}
OptionSpec OptionSpec::integer_list(std::string name, std::vector<std::int64_t> def,
                                    std::string help) {
  return make_spec(std::move(name), OptionType::integer_list, std::move(def), std::move(help));
}
OptionSpec OptionSpec::text_list(std::string name, std::vector<std::string> def,
                                 std::string help) {
  return make_spec(std::move(name), OptionType::text_list, std::move(def), std::move(help));
}
OptionSpec& OptionSpec::required() {
  default_value.reset();
  return *this;
}
OptionSpec& OptionSpec::at_least(double v) {
  min = v;
  min_exclusive = false;
  return *this;
}
OptionSpec& OptionSpec::greater_than(double v) {
  min = v;
  min_exclusive = true;
  return *this;
}
OptionSpec& OptionSpec::at_most(double v) {
  max = v;
  max_exclusive = false;
  return *this;
}
OptionSpec& OptionSpec::less_than(double v) {
  max = v;
  max_exclusive = true;
  return *this;
}

std::string check_option(const OptionSpec& spec, const OptionValue& value) {
  if (const auto* i = std::get_if<std::int64_t>(&value)) return check_number(spec, double(*i));
  if (const auto* d = std::get_if<double>(&value)) return check_number(spec, *d);
  if (const auto* s = std::get_if<std::string>(&value)) {
    if (spec.choices.empty()) return "";
    for (const auto& c : spec.choices) {
      if (c == *s) return "";
    }
    std::string all;
    for (const auto& c : spec.choices) all += (all.empty() ? "" : ", ") + c;
    return "must be one of " + all + ", got '" + *s + "'";
  }
  if (const auto* l = std::get_if<std::vector<double>>(&value)) {
    for (double v : *l) {
      if (auto e = check_number(spec, v); !e.empty()) return "every element " + e;
    }
  }
  if (const auto* l = std::get_if<std::vector<std::int64_t>>(&value)) {
    for (auto v : *l) {
      if (auto e = check_number(spec, double(v)); !e.empty()) return "every element " + e;
    }
  }
  return "";
}

struct FormatVisitor {
  std::string operator()(bool b) const { return b ? "true" : "false"; }
  std::string operator()(std::int64_t i) const { return std::to_string(i); }
  std::string operator()(double d) const { return format_number(d); }
  std::string operator()(const std::string& s) const { return s; }
  template <class T>
  std::string operator()(const std::vector<T>& list) const {
    std::string out = "[";
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (i) out += ", ";
      out += (*this)(list[i]);
    }
    return out + "]";
  }
};

std::string format_option(const OptionValue& value) { return std::visit(FormatVisitor{}, value); }

const char* option_type_name(OptionType type) {
  switch (type) {
    case OptionType::boolean: return "bool";
    case OptionType::integer: return "int";
    case OptionType::real: return "float";
    case OptionType::text: return "string";
    case OptionType::real_list: return "list of float";
    case OptionType::integer_list: return "list of int";
    case OptionType::text_list: return "list of string";
  }
  return "?";
}

const OptionValue& Options::at(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw InputError("option '" + name + "' was not set");
  return it->second;
}

bool Options::boolean(const std::string& name) const { return std::get<bool>(at(name)); }
std::int64_t Options::integer(const std::string& name) const {
  return std::get<std::int64_t>(at(name));
}
double Options::real(const std::string& name) const {
  const auto& v = at(name);
  if (const auto* i = std::get_if<std::int64_t>(&v)) return double(*i);
  return std::get<double>(v);
}
const std::string& Options::text(const std::string& name) const {
  return std::get<std::string>(at(name));
}
std::vector<double> Options::real_list(const std::string& name) const {
  const auto& v = at(name);
  if (const auto* i = std::get_if<std::vector<std::int64_t>>(&v)) {
    return std::vector<double>(i->begin(), i->end());
  }
  return std::get<std::vector<double>>(v);
}
const std::vector<std::int64_t>& Options::integer_list(const std::string& name) const {
  return std::get<std::vector<std::int64_t>>(at(name));
}
const std::vector<std::string>& Options::text_list(const std::string& name) const {
  return std::get<std::vector<std::string>>(at(name));
}

Options resolve_options(const std::vector<OptionSpec>& specs,
                        std::map<std::string, OptionValue> given, const std::string& where) {
  const std::string prefix = where.empty() ? "" : where + ": ";
  std::vector<std::string> names;
  for (const auto& spec : specs) names.push_back(spec.name);
  for (auto& [key, value] : given) {
    const std::string& name = key;  // C++17 lambdas cannot capture a structured binding
    const auto it = std::find_if(specs.begin(), specs.end(),
                                 [&](const OptionSpec& s) { return s.name == name; });
    if (it == specs.end()) {
      std::string msg = prefix + "unknown option '" + name + "'";
      if (auto guess = did_you_mean(name, names); !guess.empty()) {
        msg += " (did you mean '" + guess + "'?)";
      }
      throw InputError(msg);
    }
    value = coerce(*it, value, prefix);
    if (auto problem = check_option(*it, value); !problem.empty()) {
      throw InputError(prefix + "option '" + name + "' " + problem);
    }
  }
  for (const auto& spec : specs) {
    if (given.count(spec.name)) continue;
    if (!spec.default_value) throw InputError(prefix + "option '" + spec.name + "' is required");
    given.emplace(spec.name, *spec.default_value);
  }
  return Options(std::move(given));
}

}  // namespace difflab
