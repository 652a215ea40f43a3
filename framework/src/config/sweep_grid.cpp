#include "config/sweep_grid.hpp"

#include <algorithm>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "config/sections.hpp"
#include "config/sweep_fields.hpp"
#include "difflab/errors.hpp"

namespace difflab {
namespace {

using nlohmann::json;

const std::vector<std::string> kTopLevelKeys = {"name",     "seed",  "device",      "task",
                                                "dataset",  "model", "schedule",    "autoencoder",
                                                "train",    "evaluation", "sweep"};
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

TrainConfig read_train(const Options& o) {
  TrainConfig train;
  train.epochs = o.integer("epochs");
  train.steps = o.integer("steps");
  train.batch_size = o.integer("batch_size");
  train.lr = o.real("lr");
  train.optimizer = o.text("optimizer");
  train.weight_decay = o.real("weight_decay");
  train.grad_clip = o.real("grad_clip");
  train.checkpoint_every = o.integer("checkpoint_every");
  train.lr_schedule = o.text("lr_schedule");
  train.warmup_steps = o.integer("warmup_steps");
  train.min_lr = o.real("min_lr");
  train.ema_decay = o.real("ema_decay");
  train.label_dropout = o.real("label_dropout");
  train.loss_weighting = o.text("loss_weighting");
  train.min_snr_gamma = o.real("min_snr_gamma");
  return train;
}

json train_json(const Options& o) {
  json out = json::object();
  for (const auto& [k, v] : o.values()) out[k] = option_json(v);
  // Unweighted runs recorded before loss weighting existed keep their identity (train_hash).
  if (o.text("loss_weighting") == "none") {
    out.erase("loss_weighting");
    out.erase("min_snr_gamma");
  }
  return out;
}

// The evaluation section under `parent` ("" or "autoencoder") of `root`.
EvaluationConfig read_evaluation(const Locator& loc, const YAML::Node& root, const std::string& parent,
                                 const Registry& registry) {
  EvaluationConfig evaluation;
  const auto o = resolve_framework_section(loc, root, evaluation_section(), parent);
  evaluation.num_samples = o.integer("num_samples");
  evaluation.class_conditional = o.boolean("class_conditional");
  evaluation.guidance_scale = o.real("guidance_scale");
  evaluation.common_noise = o.boolean("common_noise");
  const YAML::Node& node = root["evaluation"];
  const auto path = sub_path(parent, "evaluation");
  if (node.IsDefined() && node.IsMap()) {
    // Guidance needs labels to guide with; unconditional sampling would ignore it silently.
    if (evaluation.guidance_scale != 1.0 && !evaluation.class_conditional) {
      loc.fail(node["guidance_scale"], sub_path(path, "guidance_scale"),
               "guidance needs class labels: set evaluation.class_conditional: true, or leave guidance_scale out");
    }
    evaluation.samplers =
        resolve_plugin_list(loc, node["samplers"], sub_path(path, "samplers"), PluginKind::sampler, registry);
    evaluation.metrics =
        resolve_plugin_list(loc, node["metrics"], sub_path(path, "metrics"), PluginKind::metric, registry);
  }
  return evaluation;
}

json metrics_json(const std::vector<PluginConfig>& plugins) {
  json out = json::array();
  for (const auto& p : plugins) out.push_back(p.json);
  return out;
}

// An autoencoder run: `network` trained with the train and evaluation sections of `sections`
// (the file's top level for task: autoencoder, the autoencoder section in a latent sweep, whose
// path is `parent`). Its identity is the same either way, so both share its training.
RunConfig resolve_autoencoder_run(const Locator& loc, const YAML::Node& sections, const std::string& parent,
                                  const YAML::Node& network, const Registry& registry, const RunConfig& base) {
  RunConfig run;
  run.sweep = base.sweep;
  run.seed = base.seed;
  run.device = base.device;
  run.dataset = base.dataset;
  run.task = Task::autoencoder;
  run.autoencoder = resolve_plugin(loc, network, "autoencoder", PluginKind::autoencoder, registry,
                                   autoencoder_framework_options(),
                                   parent.empty() ? std::set<std::string>{} : std::set<std::string>{"train", "evaluation"});
  const auto train_options = resolve_framework_section(loc, sections, train_section(), parent);
  run.train = read_train(train_options);
  const auto train_path = sub_path(parent, "train");
  if (run.train.label_dropout > 0 || run.train.loss_weighting != "none") {
    const auto key = run.train.label_dropout > 0 ? "label_dropout" : "loss_weighting";
    loc.fail(sections["train"][key], sub_path(train_path, key),
             "an autoencoder trains no denoiser: leave the denoising keys out of its train section");
  }
  run.evaluation = read_evaluation(loc, sections, parent, registry);
  const auto evaluation_path = sub_path(parent, "evaluation");
  if (!run.evaluation.samplers.empty()) {
    loc.fail(sections["evaluation"]["samplers"], sub_path(evaluation_path, "samplers"),
             "an autoencoder run draws no samples: it is measured on its reconstructions of the test split "
             "(list metrics only)");
  }
  if (run.evaluation.class_conditional) {
    loc.fail(sections["evaluation"]["class_conditional"], sub_path(evaluation_path, "class_conditional"),
             "an autoencoder run draws no samples to condition");
  }
  const json training = {{"seed", run.seed},
                         {"device", run.device},
                         {"task", "autoencoder"},
                         {"dataset", run.dataset.json},
                         {"autoencoder", run.autoencoder.json},
                         {"train", train_json(train_options)}};
  run.train_hash = stable_hash(training.dump());
  run.json = training;
  run.json["evaluation"] = {{"num_samples", run.evaluation.num_samples},
                            {"metrics", metrics_json(run.evaluation.metrics)}};
  run.config_hash = stable_hash(run.json.dump());
  run.json["name"] = run.sweep;
  return run;
}

// One grid point; a latent diffusion run also returns the autoencoder run it needs.
RunConfig resolve_run(const Locator& loc, const YAML::Node& root, const Registry& registry,
                      std::optional<RunConfig>* autoencoder_run) {
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
  if (const YAML::Node& task = root["task"]; task.IsDefined()) {
    if (!task.IsScalar() || (task.Scalar() != "diffusion" && task.Scalar() != "autoencoder")) {
      loc.fail(task, "task", "expected diffusion or autoencoder, got " +
                                 (task.IsScalar() ? "'" + task.Scalar() + "'" : node_kind(task)));
    }
    if (task.Scalar() == "autoencoder") run.task = Task::autoencoder;
  }
  run.dataset = resolve_plugin(loc, root["dataset"], "dataset", PluginKind::dataset, registry);
  if (run.task == Task::autoencoder) {
    for (const char* key : {"model", "schedule"}) {
      if (root[key].IsDefined()) {
        loc.fail(root[key], key, std::string("a task: autoencoder run trains no denoiser: remove the ") + key +
                                     " section, or train the autoencoder inside a diffusion sweep's "
                                     "autoencoder section");
      }
    }
    auto autoencoder = resolve_autoencoder_run(loc, root, "", root["autoencoder"], registry, run);
    return autoencoder;
  }
  run.model = resolve_plugin(loc, root["model"], "model", PluginKind::model, registry);
  run.schedule = resolve_plugin(loc, root["schedule"], "schedule", PluginKind::schedule, registry,
                                schedule_framework_options());
  run.zero_terminal_snr = run.schedule.options.boolean("rescale_zero_terminal_snr");
  if (const YAML::Node& section = root["autoencoder"]; section.IsDefined()) {
    if (!section.IsMap()) loc.fail(section, "autoencoder", std::string("expected a map, got ") + node_kind(section));
    *autoencoder_run = resolve_autoencoder_run(loc, section, "autoencoder", section, registry, run);
    run.autoencoder = (*autoencoder_run)->autoencoder;
    run.autoencoder_hash = (*autoencoder_run)->train_hash;
    run.autoencoder_where = loc.where(section, "autoencoder");
  }

  const auto train_options = resolve_framework_section(loc, root, train_section());
  run.train = read_train(train_options);
  run.evaluation = read_evaluation(loc, root, "", registry);

  json training = {{"seed", run.seed},          {"device", run.device},
                   {"dataset", run.dataset.json}, {"model", run.model.json},
                   {"schedule", run.schedule.json}, {"train", train_json(train_options)}};
  // A latent run's training depends on its autoencoder's: a different autoencoder, a new identity.
  if (is_latent(run)) {
    training["autoencoder"] = {{"network", run.autoencoder.json}, {"train_hash", run.autoencoder_hash}};
  }
  run.train_hash = stable_hash(training.dump());
  run.json = training;
  run.json["evaluation"] = {{"num_samples", run.evaluation.num_samples},
                            {"class_conditional", run.evaluation.class_conditional},
                            {"guidance_scale", run.evaluation.guidance_scale},
                            {"common_noise", run.evaluation.common_noise},
                            {"samplers", metrics_json(run.evaluation.samplers)},
                            {"metrics", metrics_json(run.evaluation.metrics)}};
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

// The autoencoder runs a latent sweep needs become its first grid points, so that a sequential
// sweep trains each before the latent runs that wait for it; the latent runs follow, renumbered.
void place_autoencoder_runs(SweepGrid& grid, std::map<std::string, RunConfig>& autoencoders,
                            const std::vector<std::string>& order) {
  if (order.empty()) return;
  std::vector<RunConfig> runs;
  std::map<std::string, std::int64_t> index_of_training;
  for (const auto& hash : order) {
    auto& autoencoder = autoencoders.at(hash);
    autoencoder.index = static_cast<std::int64_t>(runs.size());
    index_of_training.emplace(autoencoder.train_hash, autoencoder.index);
    runs.push_back(std::move(autoencoder));
  }
  for (auto& run : grid.runs) {
    run.index += static_cast<std::int64_t>(order.size());
    run.autoencoder_index = index_of_training.at(run.autoencoder_hash);
    runs.push_back(std::move(run));
  }
  grid.runs = std::move(runs);
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
  std::map<std::string, RunConfig> autoencoders;  // the latent runs' autoencoder runs, by config hash
  std::vector<std::string> autoencoder_order;     // in the order the grid first needs them
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
    std::optional<RunConfig> autoencoder_run;
    RunConfig run = resolve_run(loc, point, registry, &autoencoder_run);
    run.index = static_cast<std::int64_t>(index);
    run.axes = axis_values;
    if (!hashes.insert(run.config_hash).second) {  // at once: a big grid of repeats fails fast
      throw InputError(file + ": grid point " + std::to_string(run.index) +
                       " repeats an earlier one (two axis values resolve to the same config)");
    }
    if (autoencoder_run && !autoencoders.count(autoencoder_run->config_hash)) {
      // Its axes: the values that chose it (the autoencoder's own keys, seed, dataset, device).
      autoencoder_run->axes = json::object();
      for (const auto& [key, value] : axis_values.items()) {
        for (const char* root_key : {"autoencoder", "seed", "dataset", "device"}) {
          if (key == root_key || key.rfind(std::string(root_key) + ".", 0) == 0) autoencoder_run->axes[key] = value;
        }
      }
      autoencoder_order.push_back(autoencoder_run->config_hash);
      autoencoders.emplace(autoencoder_run->config_hash, std::move(*autoencoder_run));
    }
    grid.runs.push_back(std::move(run));
  }
  place_autoencoder_runs(grid, autoencoders, autoencoder_order);
  grid.name = grid.runs.front().sweep;
  return grid;
}

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (const auto& part : parts) out += (out.empty() ? "" : separator) + part;
  return out;
}

}  // namespace difflab
