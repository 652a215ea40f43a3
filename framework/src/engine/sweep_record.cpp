// A sweep's record in the store: its grid as pending runs with the plugin versions they use,
// and what happens when a file's grid differs from the one recorded under its name.
#include <map>
#include <set>

#include <spdlog/spdlog.h>

#include "difflab/errors.hpp"
#include "engine/engine.hpp"
#include "engine/run_context.hpp"

namespace difflab {
namespace fs = std::filesystem;

namespace {

// Leaf values by key path ("train.lr" -> "0.001"); lists are leaves.
void flatten(const nlohmann::json& j, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
  } else {
    out[prefix] = j.dump();
  }
}

using ValuesByKey = std::map<std::string, std::set<std::string>>;

void collect(const nlohmann::json& config, ValuesByKey& values, std::set<std::string>& keys) {
  std::map<std::string, std::string> flat;
  flatten(config, "", flat);
  flat.erase("name");
  for (const auto& [k, v] : flat) {
    values[k].insert(v);
    keys.insert(k);
  }
}

std::string describe_values(const std::set<std::string>& values) {
  return join(std::vector<std::string>(values.begin(), values.end()), ", ");
}

// A run's config without its name and training length: what a longer run must share with a
// recorded one to continue it.
std::string without_length(nlohmann::json config) {
  config.erase("name");
  if (auto train = config.find("train"); train != config.end() && train->is_object()) {
    train->erase("epochs");
    train->erase("steps");
  }
  return config.dump();
}

// "train.epochs 100 -> 200" or "train.steps 1000 -> 5000", when `run` trains longer than
// `recorded` did by its epochs (no step count on either) or by its step count; else "".
std::string lengthening(const nlohmann::json& recorded, const TrainConfig& run) {
  const auto epochs = recorded.value("epochs", std::int64_t{0});
  const auto steps = recorded.value("steps", std::int64_t{0});
  if (steps == 0 && run.steps == 0 && run.epochs > epochs) {
    return "train.epochs " + std::to_string(epochs) + " -> " + std::to_string(run.epochs);
  }
  if (steps > 0 && run.steps > steps && run.epochs == epochs) {
    return "train.steps " + std::to_string(steps) + " -> " + std::to_string(run.steps);
  }
  return "";
}

// Continues each recorded run of the sweep that a grid point trains longer with nothing else
// changed: the store keeps one run whose checkpoints go further. A learning rate that decays over
// the whole length (cosine) gave the recorded epochs other rates than the longer run's: refused.
void continue_longer_runs(const SweepGrid& grid, RunStore& store) {
  const auto recorded = store.runs(grid.name);
  std::set<std::string> stored, wanted;
  for (const auto& r : recorded) stored.insert(r.config_hash);
  for (const auto& r : grid.runs) wanted.insert(r.config_hash);
  std::map<std::string, const RunRecord*> by_rest;  // recorded runs the file no longer has
  for (const auto& r : recorded) {
    if (!wanted.count(r.config_hash)) by_rest.emplace(without_length(nlohmann::json::parse(r.config_json)), &r);
  }
  for (const auto& run : grid.runs) {
    if (stored.count(run.config_hash)) continue;
    const auto found = by_rest.find(without_length(run.json));
    if (found == by_rest.end()) continue;
    const RunRecord& old = *found->second;
    const auto change = lengthening(nlohmann::json::parse(old.config_json).value("train", nlohmann::json::object()),
                                    run.train);
    if (change.empty()) continue;
    if (run.train.lr_schedule == "cosine") {
      throw InputError(grid.file + ": grid point " + std::to_string(run.index) + " (" + axes_text(run) + "): " +
                       change + " would continue a recorded run whose cosine learning-rate schedule decayed over "
                       "its shorter length, so it would not equal a run trained this long from the start; add "
                       "--new-sweep to train it again as a new sweep");
    }
    RunRecord longer = old;
    longer.grid_index = run.index;
    longer.config_json = run.json.dump();
    longer.config_hash = run.config_hash;
    longer.train_hash = run.train_hash;
    longer.axes_json = run.axes.dump();
    store.continue_run(old.id, longer);
    spdlog::info("run {} [{}]: continuing its recorded training ({}) from its last checkpoint", run.index,
                 axes_text(run), change);
    by_rest.erase(found);
  }
}

std::string next_free_name(const RunStore& store, const std::string& name) {
  for (int i = 2;; ++i) {
    const auto candidate = name + "-" + std::to_string(i);
    if (!store.find_sweep(candidate)) return candidate;
  }
}

}  // namespace

std::string describe_grid_change(const std::vector<RunRecord>& recorded, const SweepGrid& grid) {
  std::set<std::string> old_hashes, new_hashes;
  ValuesByKey old_values, new_values;
  std::set<std::string> keys;
  for (const auto& r : recorded) {
    old_hashes.insert(r.config_hash);
    collect(nlohmann::json::parse(r.config_json), old_values, keys);
  }
  for (const auto& r : grid.runs) {
    new_hashes.insert(r.config_hash);
    collect(r.json, new_values, keys);
  }
  std::size_t common = 0;
  for (const auto& h : new_hashes) common += old_hashes.count(h);
  std::vector<std::string> parts{std::to_string(old_hashes.size() - common) + " recorded run" +
                                 (old_hashes.size() - common == 1 ? "" : "s") + " not in the file, " +
                                 std::to_string(new_hashes.size() - common) + " new"};
  std::vector<std::string> changes;
  for (const auto& key : keys) {
    const auto& before = old_values[key];
    const auto& after = new_values[key];
    if (before == after) continue;
    if (before.empty()) {
      changes.push_back(key + ": added (" + describe_values(after) + ")");
    } else if (after.empty()) {
      changes.push_back(key + ": removed (was " + describe_values(before) + ")");
    } else if (before.size() == 1 && after.size() == 1) {
      changes.push_back(key + ": " + *before.begin() + " -> " + *after.begin());
    } else {
      std::vector<std::string> added, removed;
      for (const auto& v : after) if (!before.count(v)) added.push_back(v);
      for (const auto& v : before) if (!after.count(v)) removed.push_back(v);
      std::vector<std::string> what;
      if (!added.empty()) what.push_back("added " + join(added, ", "));
      if (!removed.empty()) what.push_back("removed " + join(removed, ", "));
      changes.push_back(key + ": " + join(what, "; "));
    }
  }
  constexpr std::size_t kShown = 4;
  if (changes.size() > kShown) {
    const auto more = changes.size() - kShown;
    changes.resize(kShown);
    changes.push_back("and " + std::to_string(more) + " more key" + (more == 1 ? "" : "s"));
  }
  parts.insert(parts.end(), changes.begin(), changes.end());
  return join(parts, "; ");
}

std::int64_t record_sweep(SweepGrid& grid, RunStore& store, const Registry& registry,
                          GridChange change) {
  std::map<std::string, double> abar_T;  // by schedule label: grids repeat a few schedules
  for (const auto& run : grid.runs) {
    if (run.task == Task::diffusion && !abar_T.count(run.schedule.label)) abar_T[run.schedule.label] = terminal_alpha_bar(registry, run.schedule);
  }
  std::int64_t sweep_id = 0;
  store.transaction([&] {
    auto existing = store.find_sweep(grid.name);
    if (existing && change != GridChange::new_sweep) continue_longer_runs(grid, store);
    if (existing) {
      const auto runs = store.runs(grid.name);
      std::set<std::string> stored, wanted;
      for (const auto& r : runs) stored.insert(r.config_hash);
      for (const auto& r : grid.runs) wanted.insert(r.config_hash);
      if (!runs.empty() && stored != wanted) {
        const auto difference = describe_grid_change(runs, grid);
        if (change == GridChange::refuse) {
          throw InputError(grid.file + ": the sweep '" + grid.name + "' in " + store.path() +
                           " was recorded with a different grid (" + difference +
                           "); add --extend to add the new runs to it, --new-sweep to record a new "
                           "sweep, or rename it (name: or --set name=...)");
        }
        if (change == GridChange::new_sweep) {
          const auto name = next_free_name(store, grid.name);
          spdlog::info("the sweep '{}' was recorded with a different grid ({}); recording this one as '{}'",
                       grid.name, difference, name);
          grid.name = name;
          for (auto& run : grid.runs) {
            run.sweep = name;
            run.json["name"] = name;
          }
          existing.reset();
        } else {
          spdlog::info("extending the sweep '{}' ({})", grid.name, difference);
        }
      }
    }
    if (existing) {
      sweep_id = existing->id;
      store.update_sweep_file(sweep_id, grid.file, grid.text);
    } else {
      sweep_id = store.add_sweep(grid.name, grid.file, grid.text);
    }
    for (const auto& run : grid.runs) {
      nlohmann::json versions = nlohmann::json::object();
      const auto note = [&](PluginKind kind, const PluginConfig& p) {
        if (const auto* e = registry.find(kind, p.plugin)) {
          versions[std::string(plugin_kind_name(kind)) + "/" + p.plugin] =
              e->info.version + " (" + fs::path(e->library).filename().string() + ")";
        }
      };
      note(PluginKind::dataset, run.dataset);
      note(PluginKind::model, run.model);
      note(PluginKind::schedule, run.schedule);
      note(PluginKind::autoencoder, run.autoencoder);
      for (const auto& s : run.evaluation.samplers) note(PluginKind::sampler, s);
      for (const auto& m : run.evaluation.metrics) note(PluginKind::metric, m);
      RunRecord record;
      record.sweep_id = sweep_id;
      record.grid_index = run.index;
      record.config_json = run.json.dump();
      record.config_hash = run.config_hash;
      record.train_hash = run.train_hash;
      record.axes_json = run.axes.dump();
      record.seed = run.seed;
      record.device = run.device;
      record.framework_version = DIFFLAB_VERSION;
      record.plugin_versions_json = versions.dump();
      if (run.task == Task::diffusion) record.abar_T = abar_T.at(run.schedule.label);
      store.add_run(record);
    }
  });
  return sweep_id;
}

}  // namespace difflab
