#pragma once
// The config layer: sweep files (YAML) read into their grid of validated run configs, their
// hashes (identity of a run and of its training) and the framework's own sections declared as
// option specs (sections.hpp). It uses the loader (plugins' option specs) and the api layer.
//
// A sweep file (YAML) expanded into its grid of fully resolved, validated run configs.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "difflab/options.hpp"
#include "loader/registry.hpp"

namespace difflab {

/// One plugin instance as configured: its name, validated options, and the label that tells
/// it apart in reports ("ddim(steps=50,eta=0)": the plugin and the options the user set).
struct PluginConfig {
  std::string plugin;
  Options options;
  std::string label;
  nlohmann::json json;  // {"plugin": ..., every option with its resolved value}
};

struct TrainConfig {
  std::int64_t epochs = 0;
  std::int64_t steps = 0;  // > 0: stop after this many optimizer steps
  std::int64_t batch_size = 0;
  double lr = 0;
  std::string optimizer;  // adam | adamw
  double weight_decay = 0;
  double grad_clip = 0;  // max global gradient norm; 0: off
  std::int64_t checkpoint_every = 0;  // epochs
  std::string lr_schedule;            // constant | cosine (after warm-up)
  std::int64_t warmup_steps = 0;
  double min_lr = 0;     // end of the cosine decay
  double ema_decay = 0;  // 0: no EMA
  double label_dropout = 0;  // share of labels trained as "no label" (classifier-free guidance)
  std::string loss_weighting;  // none | min_snr (Hang et al. 2023)
  double min_snr_gamma = 5;
};

struct EvaluationConfig {
  std::int64_t num_samples = 0;
  bool class_conditional = false;  // sample with balanced class labels (the dataset's classes)
  double guidance_scale = 1.0;     // classifier-free guidance weight when class_conditional
  bool common_noise = true;        // one x_T for every sampler and checkpoint of the run
  std::vector<PluginConfig> samplers;
  std::vector<PluginConfig> metrics;
};

/// What a run trains: a denoiser (on the data, or on an autoencoder's latents), or an autoencoder.
enum class Task { diffusion, autoencoder };

/// One grid point.
struct RunConfig {
  std::int64_t index = 0;
  std::string sweep;
  std::int64_t seed = 0;
  std::string device;  // auto | cpu | cuda | cuda:N
  Task task = Task::diffusion;
  PluginConfig dataset, model, schedule;  // model and schedule: diffusion runs only
  /// Task autoencoder: the network it trains (options include kl_weight). A latent diffusion run:
  /// the autoencoder whose latents it diffuses. Plugin "" otherwise.
  PluginConfig autoencoder;
  /// A latent diffusion run: the train_hash of the autoencoder run that trains its autoencoder,
  /// and that run's grid index in this sweep; "" and -1 otherwise.
  std::string autoencoder_hash;
  std::int64_t autoencoder_index = -1;
  std::string autoencoder_where;  // "file:line:column: " of a latent run's autoencoder section
  bool zero_terminal_snr = false;  // schedule.rescale_zero_terminal_snr
  TrainConfig train;
  EvaluationConfig evaluation;
  nlohmann::json json;  // the resolved config (what the store records)
  nlohmann::json axes;  // {"schedule.plugin": "linear", ...}
  std::string config_hash;  // identity of the run
  std::string train_hash;   // identity of its training: runs sharing it share checkpoints
};

struct SweepGrid {
  std::string name;
  std::string file;
  std::string text;  // the file's contents
  std::vector<std::string> axes;
  std::vector<RunConfig> runs;
};

/// A bigger grid is a mistake (an axis listed twice, a stray list), not an experiment; the limit
/// also bounds the time and memory that `runner validate` spends on one file.
constexpr std::size_t kMaxGridPoints = 100000;

/// Reads, expands and validates a sweep file. `overrides` are "key.path=value" strings (YAML
/// values) applied before expansion; setting an axis key replaces that axis. Throws InputError
/// with "file:line:column: key.path: what is wrong (did you mean ...)", also for a grid of more
/// than kMaxGridPoints points.
SweepGrid load_sweep(const std::string& file, const std::vector<std::string>& overrides,
                     const Registry& registry);

/// load_sweep on text already in memory; `file` names it in error messages and in the grid.
/// `max_points` lowers the grid limit (the fuzz target keeps each input quick with it).
SweepGrid load_sweep_text(const std::string& text, const std::string& file,
                          const std::vector<std::string>& overrides, const Registry& registry,
                          std::size_t max_points = kMaxGridPoints);

/// "schedule.plugin=linear seed=0": a grid point's axis values joined by `separator`.
std::string format_axes(const nlohmann::json& axes, const std::string& separator = " ");

/// The non-empty `parts` with `separator` between them: join({"a", "b"}, ", ") is "a, b".
std::string join(const std::vector<std::string>& parts, const std::string& separator);

/// Whether `run` diffuses an autoencoder's latents.
inline bool is_latent(const RunConfig& run) { return !run.autoencoder_hash.empty(); }

/// Stable 64-bit FNV-1a hash of a string, as 16 hex digits.
std::string stable_hash(const std::string& text);

}  // namespace difflab
