#include "config/sweep_grid.hpp"

#include <algorithm>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "config/sections.hpp"
#include "config/sweep_fields.hpp"
#include "difflab/errors.hpp"

namespace difflab {
namespace {

using nlohmann::json;

const std::vector<std::string> kTopLevelKeys = {"name",  "seed",     "device",     "dataset",
                                                "model", "schedule", "train",      "evaluation",
                                                "sweep"};
constexpr std::size_t kMaxNameLength = 200;    // the name is a folder under --out (NAME_MAX 255)
constexpr std::int64_t kMaxDeviceIndex = 127;  // torch's DeviceIndex is an int8

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream in(path);
  std::string part;
  while (std::getline(in, part, '.')) parts.push_back(part);
  return parts;
}

// What torch::Device parses (cuda:N with N as `0|[1-9][0-9]*`), checked here so that torch never
// throws. No std::regex: libstdc++'s matcher recurses per character and overflows on long input.
void check_device(const Locator& loc, const YAML::Node& node, const std::string& device) {
  if (device == "auto" || device == "cpu" || device == "cuda") return;
  const std::string prefix = "cuda:";
  const auto index = device.substr(std::min(device.size(), prefix.size()));
  const bool number =
      !index.empty() && (index == "0" || index[0] != '0') &&
      std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (device.rfind(prefix, 0) != 0 || !number) {
    loc.fail(node, "device", "unknown device '" + device + "' (expected auto, cpu, cuda or cuda:N)");
  }
  if (index.size() > 3 || std::stoi(index) > kMaxDeviceIndex) {
    loc.fail(node, "device", "device index " + index + " is out of range (0 to " +
                                 std::to_string(kMaxDeviceIndex) + ")");
  }
}

bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

RunConfig resolve_run(const Locator& loc, const YAML::Node& root, const Registry& registry) {
  check_keys(loc, root, "", kTopLevelKeys);
  RunConfig run;
  const YAML::Node& name = root["name"];
  if (!name.IsDefined() || !name.IsScalar() || name.Scalar().empty()) {
    loc.fail(name.IsDefined() ? name : root, "name", "the sweep needs a name: 'name: my_sweep'");
  }
  run.sweep = name.Scalar();
  if (!std::all_of(run.sweep.begin(), run.sweep.end(), is_name_char)) {
    loc.fail(name, "name", "use only letters, digits, '_', '-' and '.' (it names a folder)");
  }
  if (run.sweep.size() > kMaxNameLength) {
    loc.fail(name, "name", "the name has " + std::to_string(run.sweep.size()) +
                               " characters, more than " + std::to_string(kMaxNameLength) +
                               " (it names a folder)");
  }
  if (const YAML::Node& seed = root["seed"]; seed.IsDefined()) {
    if (!parse_scalar(seed, &run.seed) || run.seed < 0) {
      loc.fail(seed, "seed", "expected a non-negative integer, got " +
                                 (seed.IsScalar() ? "'" + seed.Scalar() + "'" : node_kind(seed)));
    }
  }
  run.device = "auto";
  if (const YAML::Node& device = root["device"]; device.IsDefined()) {
    if (!device.IsScalar()) loc.fail(device, "device", "expected auto, cpu, cuda or cuda:N");
    run.device = device.Scalar();
    check_device(loc, device, run.device);
  }
  run.dataset = resolve_plugin(loc, root["dataset"], "dataset", PluginKind::dataset, registry);
  run.model = resolve_plugin(loc, root["model"], "model", PluginKind::model, registry);
  run.schedule = resolve_plugin(loc, root["schedule"], "schedule", PluginKind::schedule, registry,
                                schedule_framework_options());
  run.zero_terminal_snr = run.schedule.options.boolean("rescale_zero_terminal_snr");

  const auto train_options = resolve_framework_section(loc, root, train_section());
  run.train.epochs = train_options.integer("epochs");
  run.train.steps = train_options.integer("steps");
  run.train.batch_size = train_options.integer("batch_size");
  run.train.lr = train_options.real("lr");
  run.train.optimizer = train_options.text("optimizer");
  run.train.weight_decay = train_options.real("weight_decay");
  run.train.grad_clip = train_options.real("grad_clip");
  run.train.checkpoint_every = train_options.integer("checkpoint_every");
  run.train.lr_schedule = train_options.text("lr_schedule");
  run.train.warmup_steps = train_options.integer("warmup_steps");
  run.train.min_lr = train_options.real("min_lr");
  run.train.ema_decay = train_options.real("ema_decay");
  run.train.label_dropout = train_options.real("label_dropout");
  run.train.loss_weighting = train_options.text("loss_weighting");
  run.train.min_snr_gamma = train_options.real("min_snr_gamma");

  const auto evaluation_options = resolve_framework_section(loc, root, evaluation_section());
  run.evaluation.num_samples = evaluation_options.integer("num_samples");
  run.evaluation.class_conditional = evaluation_options.boolean("class_conditional");
  run.evaluation.guidance_scale = evaluation_options.real("guidance_scale");
  run.evaluation.common_noise = evaluation_options.boolean("common_noise");
  const YAML::Node& evaluation = root["evaluation"];
  if (evaluation.IsDefined() && evaluation.IsMap()) {
    // Guidance needs labels to guide with; unconditional sampling would ignore it silently.
    if (run.evaluation.guidance_scale != 1.0 && !run.evaluation.class_conditional) {
      loc.fail(evaluation["guidance_scale"], "evaluation.guidance_scale",
               "guidance needs class labels: set evaluation.class_conditional: true, or leave guidance_scale out");
    }
    run.evaluation.samplers = resolve_plugin_list(loc, evaluation["samplers"], "evaluation.samplers",
                                                  PluginKind::sampler, registry);
    run.evaluation.metrics = resolve_plugin_list(loc, evaluation["metrics"], "evaluation.metrics",
                                                 PluginKind::metric, registry);
  }

  json train_json = json::object();
  for (const auto& [k, v] : train_options.values()) train_json[k] = option_json(v);
  // Unweighted runs recorded before loss weighting existed keep their identity (train_hash).
  if (run.train.loss_weighting == "none") {
    train_json.erase("loss_weighting");
    train_json.erase("min_snr_gamma");
  }
  json samplers = json::array(), metrics = json::array();
  for (const auto& s : run.evaluation.samplers) samplers.push_back(s.json);
  for (const auto& m : run.evaluation.metrics) metrics.push_back(m.json);
  const json training = {{"seed", run.seed},          {"device", run.device},
                         {"dataset", run.dataset.json}, {"model", run.model.json},
                         {"schedule", run.schedule.json}, {"train", train_json}};
  run.train_hash = stable_hash(training.dump());
  run.json = training;
  run.json["evaluation"] = {{"num_samples", run.evaluation.num_samples},
                            {"class_conditional", run.evaluation.class_conditional},
                            {"guidance_scale", run.evaluation.guidance_scale},
                            {"common_noise", run.evaluation.common_noise},
                            {"samplers", samplers},
                            {"metrics", metrics}};
  run.config_hash = stable_hash(run.json.dump());
  run.json["name"] = run.sweep;
  return run;
}

// Returns a child of a map without creating it (yaml-cpp's non-const operator[] would).
YAML::Node child(const YAML::Node& map, const std::string& key) {
  const YAML::Node& const_map = map;
  return const_map[key];
}

void set_path(YAML::Node node, const std::vector<std::string>& parts, std::size_t i,
              const YAML::Node& value) {
  if (i + 1 == parts.size()) {
    node[parts[i]] = value;
    return;
  }
  const auto existing = child(node, parts[i]);
  if (!existing.IsDefined() || !existing.IsMap()) node[parts[i]] = YAML::Node(YAML::NodeType::Map);
  set_path(node[parts[i]], parts, i + 1, value);
}

// YAML forbids a key twice in one mapping, yet yaml-cpp keeps both and `node[key]` returns one
// of them: refuse it, naming both places. `where` prefixes the message ("file" or "--set K=V").
void check_unique_keys(const YAML::Node& node, const std::string& where, const std::string& path) {
  if (node.IsSequence()) {
    for (std::size_t i = 0; i < node.size(); ++i) {
      check_unique_keys(node[i], where, path + "[" + std::to_string(i) + "]");
    }
    return;
  }
  if (!node.IsMap()) return;
  std::map<std::string, YAML::Mark> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const auto& key = it->first;
    const auto text = key.IsScalar() ? key.Scalar() : std::string();
    const auto key_path = path.empty() ? text : path + "." + text;
    if (key.IsScalar()) {
      const auto [first, inserted] = seen.emplace(text, key.Mark());
      if (!inserted) {
        const bool located = !key.Mark().is_null() && !first->second.is_null();
        throw InputError(where + (located ? ":" + mark_text(key.Mark()) : "") + ": " + key_path +
                         ": the key '" + text + "' is given twice in one mapping" +
                         (located ? " (at " + mark_text(first->second) + " and " + mark_text(key.Mark()) + ")" : "") +
                         "; YAML forbids duplicate keys: keep one");
      }
    }
    check_unique_keys(it->second, where, key_path);
  }
}

YAML::Node parse_yaml(const std::string& file, const std::string& text) {
  // LoadAll, not Load: Load reads the first document of a stream and drops the rest without a word.
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::ParserException& e) {
    throw InputError(file + ":" + mark_text(e.mark) + ": invalid YAML: " + e.msg);
  }
  if (documents.size() > 1) {
    const auto mark = documents[1].Mark();
    throw InputError(file + (mark.is_null() ? "" : ":" + mark_text(mark)) +
                     ": a second YAML document ('---'): a sweep file is one document; split it into files");
  }
  const auto root = documents.empty() ? YAML::Node() : documents.front();  // empty text: null, as Load
  check_unique_keys(root, file, "");
  return root;
}

// A sweep axis: its dotted key, its list of values, and where a grid point takes the values from.
struct Axis {
  std::string key;
  YAML::Node values;
  int file_entry = -1;  // its position in the file's `sweep:` map; -1: a --set sweep.KEY
};

// The number of grid points, or an InputError naming the sweep when it exceeds `max_points`.
std::size_t grid_size(const std::string& file, const std::string& sweep,
                      const std::vector<Axis>& axes, std::size_t max_points) {
  std::size_t count = 1;
  bool over = false;
  std::string sizes;
  for (const auto& a : axes) {
    const auto n = a.values.size();
    sizes += (sizes.empty() ? "" : " x ") + std::to_string(n) + " (" + a.key + ")";
    if (count > std::numeric_limits<std::size_t>::max() / n) over = true;  // before it wraps
    if (!over) count *= n;
  }
  if (over || count > max_points) {
    throw InputError(file + ": sweep '" + sweep + "' has a grid of " +
                     (over ? std::string("more than 2^64") : std::to_string(count)) +
                     " points (" + sizes + "), more than the " + std::to_string(max_points) +
                     " a sweep may have; split it into smaller sweeps");
  }
  return count;
}

}  // namespace

std::string format_axes(const nlohmann::json& axes, const std::string& separator) {
  std::string out;
  for (const auto& [k, v] : axes.items()) {
    out += (out.empty() ? "" : separator) + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  }
  return out;
}

std::string stable_hash(const std::string& text) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a, 64 bit
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

SweepGrid load_sweep(const std::string& file, const std::vector<std::string>& overrides,
                     const Registry& registry) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file + ": cannot read the sweep file (does it exist?)");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return load_sweep_text(buffer.str(), file, overrides, registry);
}

SweepGrid load_sweep_text(const std::string& text, const std::string& file,
                          const std::vector<std::string>& overrides, const Registry& registry,
                          std::size_t max_points) {
  SweepGrid grid;
  grid.file = file;
  grid.text = text;
  YAML::Node root = parse_yaml(file, grid.text);
  if (!root.IsMap()) {
    throw InputError(file + ": a sweep file is a YAML map (name, dataset, model, schedule, ...)");
  }

  std::map<std::string, std::string> override_text;
  std::vector<std::pair<std::string, YAML::Node>> override_nodes;
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw InputError("--set " + o + ": expected KEY=VALUE, e.g. --set train.lr=1e-3");
    }
    const auto key = o.substr(0, eq);
    const auto value = o.substr(eq + 1);
    if (const auto earlier = override_text.find(key); earlier != override_text.end()) {
      throw InputError("--set " + o + ": " + key + " is already set by --set " + key + "=" +
                       earlier->second + "; give each key once");
    }
    YAML::Node node;
    try {
      node = YAML::Load(value);
    } catch (const YAML::ParserException& e) {
      throw InputError("--set " + o + ": invalid YAML value: " + e.msg);
    }
    check_unique_keys(node, "--set " + o, key);
    override_text[key] = value;
    override_nodes.emplace_back(key, node);
  }
  const Locator loc(file, override_text);

  // Axes first, from the file: `sweep: {dotted.key: [values]}`.
  std::vector<Axis> axes;
  const YAML::Node sweep = child(root, "sweep");
  if (sweep.IsDefined() && !sweep.IsNull()) {
    if (!sweep.IsMap()) loc.fail(sweep, "sweep", "expected a map of 'key.path: [values]'");
    int entry = 0;
    for (auto it = sweep.begin(); it != sweep.end(); ++it, ++entry) {
      const auto key = key_text(loc, it->first, "sweep");
      const auto parts = split_path(key);
      std::vector<std::string> axis_roots(kTopLevelKeys.begin(), kTopLevelKeys.end());
      axis_roots.erase(std::remove_if(axis_roots.begin(), axis_roots.end(),
                                      [](const std::string& k) { return k == "sweep" || k == "name"; }),
                       axis_roots.end());
      if (parts.empty() || std::find(axis_roots.begin(), axis_roots.end(), parts[0]) == axis_roots.end()) {
        std::string msg = "unknown key '" + (parts.empty() ? key : parts[0]) + "'";
        if (auto guess = did_you_mean(parts.empty() ? key : parts[0], axis_roots); !guess.empty()) {
          msg += " (did you mean '" + guess + "'?)";
        }
        loc.fail(it->first, "sweep." + key, msg);
      }
      if (!it->second.IsSequence() || it->second.size() == 0) {
        loc.fail(it->second, "sweep." + key, "an axis needs a non-empty list of values");
      }
      axes.push_back({key, it->second, entry});
    }
  }
  for (const auto& [key, node] : override_nodes) {
    if (key.rfind("sweep.", 0) == 0) {  // --set sweep.seed=[0,1,2] defines an axis
      const auto axis = key.substr(6);
      if (!node.IsSequence() || node.size() == 0) {
        throw InputError("--set " + key + "=" + override_text[key] +
                         ": an axis needs a non-empty list of values");
      }
      auto it =
          std::find_if(axes.begin(), axes.end(), [&](const Axis& a) { return a.key == axis; });
      if (it != axes.end()) *it = {axis, node, -1}; else axes.push_back({axis, node, -1});
      continue;
    }
    const std::string& replaced = key;  // C++17 lambdas cannot capture a structured binding
    axes.erase(std::remove_if(axes.begin(), axes.end(),
                              [&](const Axis& a) { return a.key == replaced; }),
               axes.end());
  }
  for (const auto& a : axes) grid.axes.push_back(a.key);

  // Cartesian product, first axis outermost (as itertools.product).
  std::string sweep_name = file;
  if (const auto name = child(root, "name"); name.IsDefined() && name.IsScalar()) {
    sweep_name = name.Scalar();
  }
  for (const auto& [key, node] : override_nodes) {
    if (key == "name" && node.IsScalar()) sweep_name = node.Scalar();
  }
  const std::size_t count = grid_size(file, sweep_name, axes, max_points);
  std::set<std::string> hashes;
  for (std::size_t index = 0; index < count; ++index) {
    // Each point starts from a fresh parse (YAML::Clone would drop the line:column marks) and
    // takes its axis values from that parse or from clones of --set values: a node assigned from
    // another document merges that document's memory into the point's, so one shared document
    // made every point hold all earlier ones (quadratic time and memory in the grid size).
    YAML::Node point = YAML::Load(grid.text);
    std::vector<YAML::Node> file_axes;  // this parse's `sweep:` lists, in file order
    if (const YAML::Node point_sweep = child(point, "sweep");
        point_sweep.IsDefined() && point_sweep.IsMap()) {
      for (auto it = point_sweep.begin(); it != point_sweep.end(); ++it) {
        file_axes.push_back(it->second);
      }
    }
    for (const auto& [key, node] : override_nodes) {
      if (key.rfind("sweep.", 0) != 0) set_path(point, split_path(key), 0, YAML::Clone(node));
    }
    json axis_values = json::object();
    std::size_t rest = index;
    std::vector<std::size_t> digits(axes.size());
    for (std::size_t k = axes.size(); k-- > 0;) {
      digits[k] = rest % axes[k].values.size();
      rest /= axes[k].values.size();
    }
    for (std::size_t k = 0; k < axes.size(); ++k) {
      const auto& key = axes[k].key;
      const YAML::Node value = axes[k].file_entry >= 0
                                   ? file_axes.at(axes[k].file_entry)[digits[k]]
                                   : YAML::Clone(axes[k].values[digits[k]]);
      set_path(point, split_path(key), 0, value);
      // The axis value as JSON: typed scalars, or the flow-style YAML of a structure.
      if (value.IsScalar()) {
        std::int64_t i = 0;
        double d = 0;
        bool b = false;
        if (parse_scalar(value, &i)) axis_values[key] = i;
        else if (parse_scalar(value, &d)) axis_values[key] = d;
        else if (parse_scalar(value, &b)) axis_values[key] = b;
        else axis_values[key] = value.Scalar();
      } else {
        YAML::Emitter out;
        out << YAML::Flow << value;
        axis_values[key] = std::string(out.c_str());
      }
    }
    point.remove("sweep");
    RunConfig run = resolve_run(loc, point, registry);
    run.index = static_cast<std::int64_t>(index);
    run.axes = axis_values;
    if (!hashes.insert(run.config_hash).second) {  // at once: a big grid of repeats fails fast
      throw InputError(file + ": grid point " + std::to_string(run.index) +
                       " repeats an earlier one (two axis values resolve to the same config)");
    }
    grid.runs.push_back(std::move(run));
  }
  grid.name = grid.runs.front().sweep;
  return grid;
}

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (const auto& part : parts) out += (out.empty() ? "" : separator) + part;
  return out;
}

}  // namespace difflab
