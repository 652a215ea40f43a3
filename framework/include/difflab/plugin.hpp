#pragma once
// How a plugin library describes itself: one exported C entry point returns a descriptor
// that the loader checks before it lets the library register anything (cf. LLVM PassPlugin).
#include "difflab/export.hpp"
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "difflab/autoencoder.hpp"
#include "difflab/dataset.hpp"
#include "difflab/denoiser.hpp"
#include "difflab/metric.hpp"
#include "difflab/noise_schedule.hpp"
#include "difflab/options.hpp"
#include "difflab/sampler.hpp"

namespace difflab {

/// Bumped whenever an interface in framework/include/difflab changes incompatibly.
constexpr std::uint32_t kPluginApiVersion = 6;  // 6: metric values carry their protocol
constexpr const char* kPluginEntryPoint = "difflab_plugin_descriptor";

enum class PluginKind { schedule, model, sampler, dataset, metric, autoencoder };
DIFFLAB_API const char* plugin_kind_name(PluginKind kind);  // "schedule", "model", ...
constexpr PluginKind kAllPluginKinds[] = {PluginKind::schedule, PluginKind::model,
                                          PluginKind::sampler, PluginKind::dataset,
                                          PluginKind::metric, PluginKind::autoencoder};

/// What a plugin says about itself.
struct PluginInfo {
  std::string name;
  std::string version;
  std::string summary;
  std::vector<OptionSpec> options;
};

template <class T>
using Factory = std::function<std::unique_ptr<T>(const Options&)>;

/// Handed to a plugin's registration function; the loader implements it.
class DIFFLAB_API Registrar {
 public:
  virtual ~Registrar() = default;
  virtual void add_schedule(PluginInfo info, Factory<NoiseSchedule> make) = 0;
  virtual void add_model(PluginInfo info, Factory<Denoiser> make) = 0;
  virtual void add_sampler(PluginInfo info, Factory<Sampler> make) = 0;
  virtual void add_dataset(PluginInfo info, Factory<Dataset> make) = 0;
  virtual void add_metric(PluginInfo info, Factory<Metric> make) = 0;
  virtual void add_autoencoder(PluginInfo info, Factory<Autoencoder> make) = 0;
};

/// Plain-data descriptor; `api_version` comes first so any version can be read safely.
struct PluginDescriptor {
  std::uint32_t api_version;
  const char* torch_version;  // TORCH_VERSION the library was built against
  const char* compiler;       // compiler and C++ ABI, see kCompilerId
  void (*register_plugins)(Registrar& registrar);
};

#define DIFFLAB_STRINGIFY_(x) #x
#define DIFFLAB_STRINGIFY(x) DIFFLAB_STRINGIFY_(x)
#if defined(__clang__)
#define DIFFLAB_COMPILER_FAMILY "clang"
#elif defined(__GNUC__)
#define DIFFLAB_COMPILER_FAMILY "gcc"
#else
#define DIFFLAB_COMPILER_FAMILY "other"
#endif
/// Compiler family and libstdc++ ABI: libraries must agree on it to share std::string.
#define DIFFLAB_COMPILER_ID \
  DIFFLAB_COMPILER_FAMILY " cxx11abi=" DIFFLAB_STRINGIFY(_GLIBCXX_USE_CXX11_ABI)

}  // namespace difflab

/// Defines the library's entry point; the body registers its plugins:
///   DIFFLAB_PLUGIN(registrar) { registrar.add_schedule({...}, [](const Options& o) {...}); }
#define DIFFLAB_PLUGIN(registrar_name)                                                     \
  static void difflab_register_plugins_(::difflab::Registrar& registrar_name);            \
  extern "C" __attribute__((visibility("default"))) const ::difflab::PluginDescriptor*    \
  difflab_plugin_descriptor() {                                                            \
    static const ::difflab::PluginDescriptor descriptor{                                   \
        ::difflab::kPluginApiVersion, TORCH_VERSION, DIFFLAB_COMPILER_ID,                  \
        &difflab_register_plugins_};                                                       \
    return &descriptor;                                                                    \
  }                                                                                        \
  static void difflab_register_plugins_(::difflab::Registrar& registrar_name)
