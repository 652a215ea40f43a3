#include "loader/registry.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include <boost/dll/shared_library.hpp>

#include "difflab/errors.hpp"

namespace difflab {
namespace fs = std::filesystem;

namespace {

template <class T>
struct Registered {
  PluginEntry entry;
  Factory<T> make;
  std::shared_ptr<boost::dll::shared_library> library;  // null for in-process plugins
};

// Wraps an object so its deleter keeps the plugin library that holds its code alive.
template <class T>
std::shared_ptr<T> keep_library(std::unique_ptr<T> object,
                                std::shared_ptr<boost::dll::shared_library> library) {
  return std::shared_ptr<T>(object.release(), [library](T* p) { delete p; });
}

std::string compiler_id() { return DIFFLAB_COMPILER_ID; }

}  // namespace

struct Registry::Impl {
  std::map<std::string, Registered<NoiseSchedule>> schedules;
  std::map<std::string, Registered<Denoiser>> models;
  std::map<std::string, Registered<Sampler>> samplers;
  std::map<std::string, Registered<Dataset>> datasets;
  std::map<std::string, Registered<Metric>> metrics;
  std::map<std::string, Registered<Autoencoder>> autoencoders;
  std::set<std::string> loaded_files;  // canonical paths

  template <class Fn>
  void for_each_kind(Fn&& fn) const {
    fn(PluginKind::schedule, schedules);
    fn(PluginKind::model, models);
    fn(PluginKind::sampler, samplers);
    fn(PluginKind::dataset, datasets);
    fn(PluginKind::metric, metrics);
    fn(PluginKind::autoencoder, autoencoders);
  }
  auto& table(Registered<NoiseSchedule>*) { return schedules; }
  auto& table(Registered<Denoiser>*) { return models; }
  auto& table(Registered<Sampler>*) { return samplers; }
  auto& table(Registered<Dataset>*) { return datasets; }
  auto& table(Registered<Metric>*) { return metrics; }
  auto& table(Registered<Autoencoder>*) { return autoencoders; }
};

namespace {

// Collects a library's registrations; they enter the registry only if all of them succeed.
class StagingRegistrar final : public Registrar {
 public:
  StagingRegistrar(std::string library, std::shared_ptr<boost::dll::shared_library> handle)
      : library_(std::move(library)), handle_(std::move(handle)) {}

  void add_schedule(PluginInfo info, Factory<NoiseSchedule> make) override {
    stage(PluginKind::schedule, std::move(info), std::move(make), staged_.schedules);
  }
  void add_model(PluginInfo info, Factory<Denoiser> make) override {
    stage(PluginKind::model, std::move(info), std::move(make), staged_.models);
  }
  void add_sampler(PluginInfo info, Factory<Sampler> make) override {
    stage(PluginKind::sampler, std::move(info), std::move(make), staged_.samplers);
  }
  void add_dataset(PluginInfo info, Factory<Dataset> make) override {
    stage(PluginKind::dataset, std::move(info), std::move(make), staged_.datasets);
  }
  void add_metric(PluginInfo info, Factory<Metric> make) override {
    stage(PluginKind::metric, std::move(info), std::move(make), staged_.metrics);
  }
  void add_autoencoder(PluginInfo info, Factory<Autoencoder> make) override {
    stage(PluginKind::autoencoder, std::move(info), std::move(make), staged_.autoencoders);
  }

  Registry::Impl& staged() { return staged_; }

 private:
  template <class T>
  void stage(PluginKind kind, PluginInfo info, Factory<T> make,
             std::map<std::string, Registered<T>>& into) {
    const std::string where = library_.empty() ? "" : library_ + ": ";
    if (info.name.empty()) throw PluginError(where + "a plugin registered an empty name");
    if (!make) throw PluginError(where + "plugin '" + info.name + "' registered no factory");
    std::set<std::string> seen;
    for (const auto& opt : info.options) {
      if (!seen.insert(opt.name).second) {
        throw PluginError(where + "plugin '" + info.name + "' declares option '" + opt.name +
                          "' twice");
      }
    }
    if (into.count(info.name)) {
      throw PluginError(where + "registers the " + plugin_kind_name(kind) + " plugin '" +
                        info.name + "' twice");
    }
    Registered<T> r{PluginEntry{kind, std::move(info), library_}, std::move(make), handle_};
    const auto name = r.entry.info.name;
    into.emplace(name, std::move(r));
  }

  std::string library_;
  std::shared_ptr<boost::dll::shared_library> handle_;
  Registry::Impl staged_;
};

template <class T>
void merge_into(std::map<std::string, Registered<T>>& into,
                std::map<std::string, Registered<T>>& from) {
  for (auto& [name, r] : from) into.emplace(name, std::move(r));
}

void commit(Registry::Impl& impl, Registry::Impl& staged, const std::string& library) {
  // Refuse the whole library if any name is taken, so a failed load changes nothing.
  staged.for_each_kind([&](PluginKind kind, const auto& table) {
    for (const auto& entry : table) {
      const std::string& name = entry.first;  // C++17 lambdas cannot capture a structured binding
      impl.for_each_kind([&](PluginKind existing_kind, const auto& existing) {
        auto it = existing.find(name);
        if (existing_kind == kind && it != existing.end()) {
          const auto& other = it->second.entry.library;
          throw PluginError((library.empty() ? std::string() : library + ": ") +
                            "registers the " + plugin_kind_name(kind) + " plugin '" + name +
                            "', already registered by " +
                            (other.empty() ? std::string("the runner") : other) +
                            "; remove one of the two libraries from the plugin path");
        }
      });
    }
  });
  merge_into(impl.schedules, staged.schedules);
  merge_into(impl.models, staged.models);
  merge_into(impl.samplers, staged.samplers);
  merge_into(impl.datasets, staged.datasets);
  merge_into(impl.metrics, staged.metrics);
  merge_into(impl.autoencoders, staged.autoencoders);
}

fs::path this_library_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&did_you_mean), &info) && info.dli_fname) {
    return fs::path(info.dli_fname).parent_path();
  }
  return {};
}

}  // namespace

Registry::Registry() : impl_(new Impl) {}

Registry& Registry::instance() {
  static Registry* registry = new Registry;  // never destroyed: no shutdown-order hazards
  return *registry;
}

void Registry::load_library(const fs::path& file) {
  std::error_code ec;
  const auto canonical = fs::weakly_canonical(file, ec);
  const std::string shown = file.string();
  if (!fs::exists(file)) throw PluginError(shown + ": plugin library does not exist");
  if (impl_->loaded_files.count(canonical.string())) return;

  auto handle = std::make_shared<boost::dll::shared_library>();
  boost::dll::fs::error_code load_error;
  handle->load(boost::dll::fs::path(canonical.string()), boost::dll::load_mode::rtld_now |
                                                             boost::dll::load_mode::rtld_local,
               load_error);
  if (load_error) {
    const char* why = dlerror();
    throw PluginError(shown + ": cannot be loaded as a shared library (" +
                      (why ? std::string(why) : load_error.message()) + ")");
  }
  if (!handle->has(kPluginEntryPoint)) {
    throw PluginError(shown + ": not a difflab plugin (no '" + std::string(kPluginEntryPoint) +
                      "' entry point; define one with DIFFLAB_PLUGIN)");
  }
  const auto entry = handle->get<const PluginDescriptor*()>(kPluginEntryPoint);
  const PluginDescriptor* descriptor = entry();
  if (descriptor == nullptr) throw PluginError(shown + ": entry point returned no descriptor");
  if (descriptor->api_version != kPluginApiVersion) {
    throw PluginError(shown + ": built for plugin API version " +
                      std::to_string(descriptor->api_version) + ", this difflab has version " +
                      std::to_string(kPluginApiVersion) + "; rebuild the plugin");
  }
  if (std::string(descriptor->torch_version ? descriptor->torch_version : "") != TORCH_VERSION) {
    throw PluginError(shown + ": built against torch " +
                      std::string(descriptor->torch_version ? descriptor->torch_version : "?") +
                      ", this difflab uses torch " + TORCH_VERSION + "; rebuild the plugin");
  }
  if (std::string(descriptor->compiler ? descriptor->compiler : "") != compiler_id()) {
    throw PluginError(shown + ": built with '" +
                      std::string(descriptor->compiler ? descriptor->compiler : "?") +
                      "', this difflab with '" + compiler_id() + "'; rebuild the plugin");
  }
  if (descriptor->register_plugins == nullptr) {
    throw PluginError(shown + ": descriptor has no registration function");
  }
  StagingRegistrar registrar(shown, handle);
  try {
    descriptor->register_plugins(registrar);
  } catch (const PluginError&) {
    throw;
  } catch (const std::exception& e) {
    throw PluginError(shown + ": registration threw: " + e.what());
  } catch (...) {
    throw PluginError(shown + ": registration threw an unknown exception");
  }
  commit(*impl_, registrar.staged(), shown);
  impl_->loaded_files.insert(canonical.string());
}

void Registry::load_directory(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw InputError(dir.string() + ": plugin folder does not exist");
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (e.is_regular_file() && name.rfind("lib", 0) == 0 && e.path().extension() == ".so") {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) load_library(f);
}

void Registry::load_default(const std::vector<fs::path>& extra_dirs) {
  const auto installed = this_library_dir() / DIFFLAB_INSTALL_PLUGIN_SUBDIR;
  std::error_code ec;
  if (fs::is_directory(installed, ec)) {
    load_directory(installed);
  } else if (fs::is_directory(DIFFLAB_BUILD_PLUGIN_DIR, ec)) {
    load_directory(DIFFLAB_BUILD_PLUGIN_DIR);
  }
  for (const auto& d : extra_dirs) load_directory(d);
  if (const char* env = std::getenv("DIFFLAB_PLUGIN_PATH")) {
    std::stringstream parts(env);
    std::string dir;
    while (std::getline(parts, dir, ':')) {
      if (!dir.empty()) load_directory(dir);
    }
  }
}

void Registry::register_plugins(void (*register_fn)(Registrar&), const std::string& library) {
  StagingRegistrar registrar(library, nullptr);
  register_fn(registrar);
  commit(*impl_, registrar.staged(), library);
}

const PluginEntry* Registry::find(PluginKind kind, const std::string& name) const {
  const PluginEntry* found = nullptr;
  impl_->for_each_kind([&](PluginKind k, const auto& table) {
    if (k != kind) return;
    auto it = table.find(name);
    if (it != table.end()) found = &it->second.entry;
  });
  return found;
}

const PluginEntry& Registry::get(PluginKind kind, const std::string& name) const {
  if (const auto* e = find(kind, name)) return *e;
  const auto candidates = names(kind);
  std::string msg = std::string("unknown ") + plugin_kind_name(kind) + " plugin '" + name + "'";
  if (auto guess = did_you_mean(name, candidates); !guess.empty()) {
    msg += " (did you mean '" + guess + "'?)";
  } else {
    std::string all;
    for (const auto& c : candidates) all += (all.empty() ? "" : ", ") + c;
    msg += all.empty() ? " (no such plugins are loaded)" : " (available: " + all + ")";
  }
  throw InputError(msg);
}

std::vector<const PluginEntry*> Registry::list(std::optional<PluginKind> kind) const {
  std::vector<const PluginEntry*> out;
  impl_->for_each_kind([&](PluginKind k, const auto& table) {
    if (kind && *kind != k) return;
    for (const auto& [name, r] : table) out.push_back(&r.entry);
  });
  return out;
}

std::vector<std::string> Registry::names(PluginKind kind) const {
  std::vector<std::string> out;
  for (const auto* e : list(kind)) out.push_back(e->info.name);
  return out;
}

namespace {
template <class T>
std::shared_ptr<T> make_from(const std::map<std::string, Registered<T>>& table, PluginKind kind,
                             const Registry& registry, const std::string& name, const Options& o) {
  registry.get(kind, name);  // throws the "unknown plugin" error
  const auto& r = table.at(name);
  std::unique_ptr<T> object;
  try {
    object = r.make(o);
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(std::string(plugin_kind_name(kind)) + " plugin '" + name +
                     "' could not be created: " + e.what());
  }
  if (!object) {
    throw PluginError(std::string(plugin_kind_name(kind)) + " plugin '" + name + "' (" +
                      r.entry.library + ") returned no object");
  }
  return keep_library(std::move(object), r.library);
}
}  // namespace

std::shared_ptr<NoiseSchedule> Registry::make_schedule(const std::string& n, const Options& o) const {
  return make_from(impl_->schedules, PluginKind::schedule, *this, n, o);
}
std::shared_ptr<Denoiser> Registry::make_model(const std::string& n, const Options& o) const {
  return make_from(impl_->models, PluginKind::model, *this, n, o);
}
std::shared_ptr<Sampler> Registry::make_sampler(const std::string& n, const Options& o) const {
  return make_from(impl_->samplers, PluginKind::sampler, *this, n, o);
}
std::shared_ptr<Dataset> Registry::make_dataset(const std::string& n, const Options& o) const {
  return make_from(impl_->datasets, PluginKind::dataset, *this, n, o);
}
std::shared_ptr<Metric> Registry::make_metric(const std::string& n, const Options& o) const {
  return make_from(impl_->metrics, PluginKind::metric, *this, n, o);
}
std::shared_ptr<Autoencoder> Registry::make_autoencoder(const std::string& n, const Options& o) const {
  return make_from(impl_->autoencoders, PluginKind::autoencoder, *this, n, o);
}

const char* plugin_kind_name(PluginKind kind) {
  switch (kind) {
    case PluginKind::schedule: return "schedule";
    case PluginKind::model: return "model";
    case PluginKind::sampler: return "sampler";
    case PluginKind::dataset: return "dataset";
    case PluginKind::metric: return "metric";
    case PluginKind::autoencoder: return "autoencoder";
  }
  return "?";
}

}  // namespace difflab
