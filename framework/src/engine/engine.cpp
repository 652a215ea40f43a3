#include "engine/engine.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "training/checkpoint.hpp"
#include "engine/batched_training.hpp"
#include "training/crash_point.hpp"
#include "accel/cuda_graphs.hpp"
#include "difflab/errors.hpp"
#include "io/image_io.hpp"
#include "io/npy.hpp"
#include "engine/point_pictures.hpp"
#include "training/train_step.hpp"
#include "training/training_schedule.hpp"

namespace difflab {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
constexpr auto kProgressInterval = std::chrono::milliseconds(200);  // between step reports

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string file_label(const std::string& label) {
  std::string out;
  for (char c : label) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    out += keep ? c : (c == '=' ? '-' : '_');
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

std::string axes_text(const RunConfig& run) {
  const auto text = format_axes(run.axes);
  return text.empty() ? "(no axes)" : text;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& train, Denoiser& model) {
  if (train.optimizer == "adamw") {
    return std::make_unique<torch::optim::AdamW>(
        model.parameters(), torch::optim::AdamWOptions(train.lr).weight_decay(train.weight_decay));
  }
  return std::make_unique<torch::optim::Adam>(
      model.parameters(), torch::optim::AdamOptions(train.lr).weight_decay(train.weight_decay));
}

DataSplit to_device(const DataSplit& split, torch::Device device) {
  return {split.x.to(device), split.labels.defined() ? split.labels.to(device) : split.labels};
}

// Everything one run needs, made from its config.
struct RunContext {
  const RunConfig& run;
  torch::Device device;
  std::shared_ptr<Dataset> dataset;
  std::shared_ptr<NoiseSchedule> schedule;
  std::shared_ptr<Denoiser> model;
  std::vector<std::shared_ptr<Sampler>> samplers;
  std::vector<std::shared_ptr<Metric>> metrics;
  DataSplit train, test;
  std::unique_ptr<DiffusionProcess> process;
  fs::path run_dir;   // checkpoints: shared by every run of the same training
  fs::path eval_dir;  // samples and pictures: this run's own
  std::unique_ptr<WeightAverage> ema;  // when train.ema_decay > 0
  SamplerGraphs sampler_graphs;        // CUDA graphs of the samplers' loops (cuda_graphs.hpp)

  /// The weights evaluation uses: the moving average when there is one.
  Denoiser& evaluated() { return ema ? ema->weights() : *model; }
  std::string evaluated_name() const {
    return ema ? fmt::format("ema({})", ema->decay()) : std::string("model");
  }
};

// Pictures of image samples: a grid of the first kGridSamples, kGridColumns to a row, and a
// strip of about kProgressionFrames states of the first sample, x_T first and x_0 last.
constexpr std::int64_t kGridSamples = 64;
constexpr std::int64_t kGridColumns = 8;
constexpr std::int64_t kProgressionFrames = 10;

// Keeps the first sample's state after a few evenly spaced reverse steps, so that the strip
// shows x_T, kProgressionFrames - 2 states between, and the final sample. Other steps cost one
// lookup; a kept state copies one sample, not the batch.
class ProgressionRecorder {
 public:
  ProgressionRecorder(std::int64_t steps, const torch::Tensor& x_T)
      : keep_(std::max<std::int64_t>(steps, 0), false) {
    // on_step(p - 1) comes after p of the S steps: keep p = round(k S / (F - 1)), 0 < p < S.
    const std::int64_t intervals = kProgressionFrames - 1;
    for (std::int64_t k = 1; k < intervals; ++k) {
      const std::int64_t taken = (2 * k * steps + intervals) / (2 * intervals);
      if (taken >= 1 && taken < steps) keep_[taken - 1] = true;  // the last step is the result
    }
    frames_.push_back(first(x_T));
  }

  StepCallback callback() {
    return [this](std::int64_t step, const torch::Tensor& x) {
      if (step >= 0 && step < static_cast<std::int64_t>(keep_.size()) && keep_[step]) {
        keep_[step] = false;  // once, should a sampler report a step twice
        frames_.push_back(first(x));
      }
    };
  }

  /// The kept states with the final sample appended: [frames, C, H, W] on the CPU.
  torch::Tensor frames(const torch::Tensor& samples) {
    frames_.push_back(first(samples));
    return torch::cat(frames_, 0).to(torch::kCPU);
  }

 private:
  // A copy on the sampling device: no host synchronisation in the middle of sampling.
  static torch::Tensor first(const torch::Tensor& x) { return x.slice(0, 0, 1).clone(); }

  std::vector<bool> keep_;
  std::vector<torch::Tensor> frames_;
};

std::mutex& global_seed_mutex() {
  static std::mutex* m = new std::mutex;  // parameter init draws from torch's global generator
  return *m;
}

void evaluate_checkpoint(RunContext& ctx, RunStore& store, const CheckpointRecord& checkpoint) {
  torch::NoGradGuard no_grad;
  Denoiser& model = ctx.evaluated();
  model.eval();
  const auto& run = ctx.run;
  // The run's own folder: a run that reuses another's checkpoints must not overwrite its samples.
  const auto dir = ctx.eval_dir / fmt::format("epoch-{:06d}", checkpoint.epoch);
  fs::create_directories(dir);
  std::vector<MetricRecord> rows;
  std::vector<ArtifactRecord> artifacts;
  const auto record = [&](const std::vector<MetricValue>& values, const PluginConfig& sampler) {
    for (const auto& v : values) {
      MetricRecord row{checkpoint.id, sampler.label, sampler.json.dump(), v.name, v.variant, v.value};
      row.better = v.better == Better::higher ? "higher" : "lower";  // as the plugin declares
      rows.push_back(std::move(row));
    }
  };
  const PluginConfig no_sampler{"", Options{}, "", nlohmann::json::object()};
  for (std::size_t m = 0; m < ctx.metrics.size(); ++m) {
    if (ctx.metrics[m]->scope() == Metric::Scope::samples) continue;
    const auto& label = run.evaluation.metrics[m].label;
    MetricContext mc{model, *ctx.process, ctx.train, ctx.test, torch::Tensor(),
                     make_generator(ctx.device, derive_seed(run.seed, "metric:" + label, checkpoint.step)),
                     Conditioning{}, run.evaluation.class_conditional};
    record(ctx.metrics[m]->evaluate(mc), no_sampler);
  }
  auto sample_shape = ctx.train.x.sizes().vec();
  sample_shape[0] = run.evaluation.num_samples;
  Conditioning cond;
  if (run.evaluation.class_conditional) {  // balanced labels 0, 1, ..., K-1, 0, 1, ...
    cond.labels = torch::arange(run.evaluation.num_samples, torch::TensorOptions().dtype(torch::kLong).device(ctx.device)) %
                  ctx.dataset->num_classes();
    cond.guidance_scale = run.evaluation.guidance_scale;
  }
  const bool images = is_image_batch(sample_shape);  // 2-D points get no pictures
  for (std::size_t s = 0; s < ctx.samplers.size(); ++s) {
    const auto& sampler = run.evaluation.samplers[s];
    auto gen = make_generator(ctx.device, derive_seed(run.seed, "sampler:" + sampler.label, checkpoint.step));
    const auto x_T = torch::randn(sample_shape, gen, ctx.train.x.options());
    std::optional<ProgressionRecorder> progression;
    if (images) progression.emplace(ctx.samplers[s]->steps(ctx.process->timesteps()), x_T);
    std::optional<ReverseRecorder> reverse;  // 2-D points: the first sampler's animation
    if (s == 0 && is_point_batch(sample_shape)) reverse.emplace(ctx.samplers[s]->steps(ctx.process->timesteps()), x_T);
    SamplingContext sc{model, *ctx.process, gen, cond,
                       progression ? progression->callback() : reverse ? reverse->callback() : StepCallback{}};
    torch::Tensor samples;
    try {
      samples = ctx.sampler_graphs.sample(*ctx.samplers[s], sc, x_T);
    } catch (const c10::Error& e) {
      throw RunError("sampler '" + sampler.label + "' failed: " + e.what_without_backtrace());
    } catch (const InputError& e) {
      throw RunError("sampler '" + sampler.label + "': " + e.what());
    }
    const auto name = file_label(sampler.label);
    const auto npy = (dir / ("samples-" + name + ".npy")).string();
    write_npy(npy, samples);
    artifacts.push_back({checkpoint.id, sampler.label, "samples_npy", npy});
    if (progression && is_image_batch(samples.sizes())) {
      const auto grid = (dir / ("samples-" + name + ".png")).string();
      write_png(grid, image_grid(samples.slice(0, 0, kGridSamples), kGridColumns));
      artifacts.push_back({checkpoint.id, sampler.label, "samples_grid_png", grid});
      const auto strip = (dir / ("progression-" + name + ".png")).string();
      const auto frames = progression->frames(samples);
      write_png(strip, image_grid(frames, frames.size(0)));
      artifacts.push_back({checkpoint.id, sampler.label, "progression_png", strip});
    }
    if (is_point_batch(sample_shape) && is_point_batch(samples.sizes())) {
      for (auto& a : write_point_pictures(dir, name, ctx.train.x, samples, reverse ? &*reverse : nullptr,
                                          checkpoint.id, sampler.label)) {
        artifacts.push_back(std::move(a));
      }
    }
    for (std::size_t m = 0; m < ctx.metrics.size(); ++m) {
      if (ctx.metrics[m]->scope() == Metric::Scope::checkpoint) continue;
      const auto& label = run.evaluation.metrics[m].label;
      MetricContext mc{model, *ctx.process, ctx.train, ctx.test, samples,
                       make_generator(ctx.device, derive_seed(run.seed, "metric:" + label, checkpoint.step)),
                       cond, run.evaluation.class_conditional};
      record(ctx.metrics[m]->evaluate(mc), sampler);
    }
  }
  crash_point("evaluation");
  store.transaction([&] {
    for (const auto& r : rows) store.add_metric(r);
    for (const auto& a : artifacts) store.add_artifact(a);
  });
  model.train();
}

}  // namespace

namespace {

RunContext make_context(const Registry& registry, const RunConfig& run, const fs::path& out_dir) {
  RunContext ctx{run, resolve_device(run.device), {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
  ctx.dataset = registry.make_dataset(run.dataset.plugin, run.dataset.options);
  ctx.schedule = registry.make_schedule(run.schedule.plugin, run.schedule.options);
  {
    std::lock_guard<std::mutex> lock(global_seed_mutex());
    torch::manual_seed(derive_seed(run.seed, "model-init"));
    ctx.model = registry.make_model(run.model.plugin, run.model.options);
  }
  ctx.model->to(ctx.device);
  if (run.train.ema_decay > 0) {
    auto shadow = registry.make_model(run.model.plugin, run.model.options);
    shadow->to(ctx.device);
    ctx.ema = std::make_unique<WeightAverage>(*ctx.model, std::move(shadow), run.train.ema_decay);
  }
  for (const auto& s : run.evaluation.samplers) {
    ctx.samplers.push_back(registry.make_sampler(s.plugin, s.options));
  }
  for (const auto& m : run.evaluation.metrics) {
    ctx.metrics.push_back(registry.make_metric(m.plugin, m.options));
  }
  ctx.train = to_device(ctx.dataset->load(Split::train, derive_seed(run.seed, "data")), ctx.device);
  ctx.test = to_device(ctx.dataset->load(Split::test, derive_seed(run.seed, "data")), ctx.device);
  if (ctx.train.x.size(0) < 1) throw RunError("the dataset's train split is empty");
  ctx.process = std::make_unique<DiffusionProcess>(ctx.schedule->betas(), ctx.device);
  ctx.run_dir = out_dir / run.sweep / run.train_hash;
  ctx.eval_dir = evaluation_dir(out_dir, run);
  return ctx;
}

}  // namespace

fs::path evaluation_dir(const fs::path& out_dir, const RunConfig& run) {
  return out_dir / run.sweep / "evaluations" / run.config_hash;
}

torch::Device resolve_device(const std::string& device) {
  if (device == "auto") return torch::cuda::is_available() ? torch::Device("cuda") : torch::Device("cpu");
  torch::Device d(device);
  if (d.is_cuda()) {
    if (!torch::cuda::is_available()) {
      throw InputError("device '" + device + "': this build of torch has no usable CUDA device");
    }
    if (d.has_index() && d.index() >= static_cast<int>(torch::cuda::device_count())) {
      throw InputError("device '" + device + "': only " + std::to_string(torch::cuda::device_count()) +
                       " CUDA devices are present");
    }
  }
  return d;
}

torch::Generator make_generator(torch::Device device, std::uint64_t seed) {
  auto gen = device.is_cpu() ? at::detail::createCPUGenerator(seed)
                             : at::globalContext().defaultGenerator(device).clone();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_current_seed(seed);
  return gen;
}

std::uint64_t derive_seed(std::int64_t seed, const std::string& purpose, std::int64_t step) {
  const auto h = stable_hash(std::to_string(seed) + "/" + purpose + "/" + std::to_string(step));
  return std::stoull(h.substr(0, 15), nullptr, 16);  // 60 bits: fits torch's int64 seeds
}

void validate_run(const Registry& registry, const RunConfig& run) {
  const auto where = "run " + std::to_string(run.index) + ": ";
  const auto schedule = registry.make_schedule(run.schedule.plugin, run.schedule.options);
  std::int64_t timesteps = 0;
  try {  // the process's own checks (betas in (0, 1)) on the CPU
    timesteps = DiffusionProcess(schedule->betas(), torch::kCPU).timesteps();
  } catch (const InputError& e) {
    throw InputError(where + "schedule '" + run.schedule.label + "': " + e.what());
  }
  for (const auto& s : run.evaluation.samplers) {
    const auto sampler = registry.make_sampler(s.plugin, s.options);
    if (sampler->steps(timesteps) > timesteps) {
      throw InputError(where + "evaluation.samplers '" + s.label + "' takes " +
                       std::to_string(sampler->steps(timesteps)) +
                       " steps, more than the schedule's " + std::to_string(timesteps) + " timesteps");
    }
  }
  registry.make_model(run.model.plugin, run.model.options);  // option errors (groups, sizes) now
  const auto dataset = registry.make_dataset(run.dataset.plugin, run.dataset.options);
  if (run.evaluation.class_conditional && dataset->num_classes() < 1) {
    throw InputError(where + "evaluation.class_conditional: the dataset '" + run.dataset.label +
                     "' has no class labels");
  }
  if (run.train.label_dropout > 0 && dataset->num_classes() < 1) {  // it would drop nothing
    throw InputError(where + "train.label_dropout: the dataset '" + run.dataset.label +
                     "' has no class labels to drop");
  }
  for (const auto& m : run.evaluation.metrics) registry.make_metric(m.plugin, m.options);
  resolve_device(run.device);
}

RunExecutor::RunExecutor(const Registry& registry, RunStore& store, EngineOptions options)
    : registry_(registry), store_(store), options_(std::move(options)) {}

void RunExecutor::execute(const RunConfig& run, std::int64_t run_id) {
  RunContext ctx = make_context(registry_, run, options_.out_dir);
  remove_dead_temporaries(ctx.run_dir);
  remove_dead_temporaries(ctx.eval_dir);
  const auto tag = "run " + std::to_string(run.index) + " [" + axes_text(run) + "]";
  auto optimizer = make_optimizer(run.train, *ctx.model);
  auto gen = make_generator(ctx.device, derive_seed(run.seed, "train"));
  // Training time goes on from the checkpoint a resume starts from; a run that reuses another's
  // checkpoints has trained nothing (their records keep the time that training took).
  double train_seconds = 0, eval_seconds = store_.run(run_id)->eval_seconds;
  bool reused = false;

  // Resume from our own last readable checkpoint, or reuse an identical training's checkpoints.
  auto checkpoints = store_.checkpoints(run_id);
  if (checkpoints.empty()) {
    if (auto trained = store_.find_trained(run.train_hash); trained && trained->id != run_id) {
      spdlog::info("{}: reusing the checkpoints of run {} (same training config)", tag, trained->id);
      store_.transaction([&] {
        store_.add_losses(run_id, store_.losses(trained->id));
        for (auto c : store_.checkpoints(trained->id)) {
          c.id = 0;
          c.run_id = run_id;
          store_.add_checkpoint(c);
        }
      });
      checkpoints = store_.checkpoints(run_id);
      reused = true;
    }
  }
  const std::int64_t n = ctx.train.x.size(0);
  const std::int64_t batch = std::min(run.train.batch_size, n);
  const std::int64_t steps_per_epoch = n / batch;  // drop the ragged tail: static shapes
  const std::int64_t total_steps =
      run.train.steps > 0 ? run.train.steps : run.train.epochs * steps_per_epoch;
  const std::int64_t total_epochs = (total_steps + steps_per_epoch - 1) / steps_per_epoch;

  CheckpointPosition position;
  bool fully_trained = false;
  for (auto it = checkpoints.rbegin(); it != checkpoints.rend(); ++it) {
    if (!fs::exists(it->file)) continue;
    // A file cut short by a crash of the machine (zero bytes, a truncated archive) is set aside:
    // the run goes on from the checkpoint before it, or from the start.
    if (const auto why = unreadable_checkpoint(it->file)) {
      const auto aside = set_aside(it->file);
      spdlog::warn("{}: checkpoint {} cannot be read ({}); moved to {}, resuming from the one before", tag,
                   it->file, *why, aside);
      continue;
    }
    const auto loaded = load_checkpoint(it->file, *ctx.model, optimizer.get(), &gen, ctx.device,
                                        ctx.ema ? &ctx.ema->weights() : nullptr);
    if (ctx.ema && !loaded.has_ema) ctx.ema->reset();
    position = loaded.position;
    if (!reused) train_seconds = it->wall_seconds;
    fully_trained = position.step >= total_steps;
    if (position.step > 0) spdlog::info("{}: resuming from epoch {} (step {})", tag, position.epoch, position.step);
    break;
  }

  ctx.model->train();
  // On CUDA the step is captured in a CUDA graph (cuda_graphs.hpp); elsewhere it runs eagerly.
  std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, torch::Generator&)> step =
      TrainStep(*ctx.model, *ctx.process, *optimizer, run.train.grad_clip, run.train.label_dropout);
  if (ctx.device.is_cuda() && cuda_graphs_enabled() && DeviceAdam::supports(*optimizer)) {
    try {
      step = [graphed = std::make_shared<GraphedTrainStep>(*ctx.model, *ctx.process, *optimizer,
                                                           run.train.grad_clip, run.train.label_dropout)](
                 const torch::Tensor& x0, const torch::Tensor& labels, torch::Generator& g) {
        return (*graphed)(x0, labels, g);
      };
    } catch (const std::invalid_argument& e) {  // a resumed optimizer it cannot take over
      spdlog::warn("{}: training without CUDA graphs: {}", tag, e.what());
    }
  }
  std::vector<LossRecord> pending_losses;
  std::int64_t global_step = position.step;
  const bool scheduled_lr = run.train.warmup_steps > 0 || run.train.lr_schedule != "constant";
  auto last_report = Clock::now();
  std::int64_t steps_since_report = 0;
  auto* progress = options_.progress;
  if (progress)
    progress->report(ProgressEvent::started(run.index, axes_text(run), total_steps, total_epochs,
                                            position.step));
  auto next_progress = Clock::now() + kProgressInterval;
  for (std::int64_t epoch = position.epoch + 1; !fully_trained && epoch <= total_epochs; ++epoch) {
    const auto start = Clock::now();
    const auto order = torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kLong).device(ctx.device));
    torch::Tensor loss_sum = torch::zeros({}, ctx.train.x.options());
    std::int64_t steps_this_epoch = 0;
    for (std::int64_t b = 0; b < steps_per_epoch && global_step < total_steps; ++b) {
      const auto rows = order.slice(0, b * batch, (b + 1) * batch);
      const auto x0 = ctx.train.x.index_select(0, rows);
      const auto labels = ctx.train.labels.defined() ? ctx.train.labels.index_select(0, rows) : torch::Tensor();
      if (scheduled_lr) set_learning_rate(*optimizer, learning_rate(run.train, global_step, total_steps));
      try {
        loss_sum += step(x0, labels, gen);
        if (ctx.ema) ctx.ema->update();
      } catch (const c10::Error& e) {
        throw RunError("training step failed at epoch " + std::to_string(epoch) + ": " +
                       e.what_without_backtrace());
      }
      ++global_step;
      ++steps_this_epoch;
      crash_point("train-step");
      if (progress && Clock::now() >= next_progress) {  // a host read at most every 0.2 s
        next_progress = Clock::now() + kProgressInterval;
        progress->report(ProgressEvent::stepped(run.index, epoch, global_step,
                                                loss_sum.item<double>() / steps_this_epoch));
      }
    }
    const double loss = loss_sum.item<double>() / static_cast<double>(std::max<std::int64_t>(1, steps_this_epoch));
    train_seconds += seconds_since(start);
    steps_since_report += steps_this_epoch;
    if (!std::isfinite(loss)) {
      store_.add_losses(run_id, pending_losses);
      throw RunError("the training loss became " + std::string(std::isnan(loss) ? "NaN" : "infinite") +
                     " at epoch " + std::to_string(epoch) + " (step " + std::to_string(global_step) +
                     "); lower train.lr or set train.grad_clip");
    }
    pending_losses.push_back({global_step, epoch, loss});
    spdlog::debug("{}: epoch {}/{} step {} loss {:.4f}", tag, epoch, total_epochs, global_step,
                  loss);
    const bool last = epoch == total_epochs;
    if (epoch % run.train.checkpoint_every != 0 && !last) continue;

    const auto dir = ctx.run_dir / fmt::format("epoch-{:06d}", epoch);
    fs::create_directories(dir);
    const auto file = (dir / "checkpoint.pt").string();
    save_checkpoint(file, *ctx.model, *optimizer, gen, {epoch, global_step},
                    ctx.ema ? &ctx.ema->weights() : nullptr);
    CheckpointRecord record{0, run_id, epoch, global_step, file, train_seconds, ctx.evaluated_name()};
    crash_point("checkpoint-record");
    store_.transaction([&] {
      store_.add_losses(run_id, pending_losses);
      record.id = store_.add_checkpoint(record);
    });
    pending_losses.clear();
    const double rate = steps_since_report / std::max(1e-9, seconds_since(last_report));
    spdlog::info("{}: epoch {}/{} step {} loss {:.4f} ({:.0f} steps/s)", tag, epoch, total_epochs,
                 global_step, loss, rate);
    const auto eval_start = Clock::now();
    if (progress) progress->report(ProgressEvent::stepped(run.index, epoch, global_step, loss));
    if (progress) progress->report(ProgressEvent::evaluating(run.index, epoch));
    evaluate_checkpoint(ctx, store_, record);
    if (progress) progress->report(ProgressEvent::evaluated(run.index, epoch));
    eval_seconds += seconds_since(eval_start);
    last_report = Clock::now();
    steps_since_report = 0;
  }

  // Checkpoints written but not evaluated (a crash mid-evaluation, or reused ones).
  for (const auto& c : store_.checkpoints(run_id)) {
    if (store_.metric_count(c.id) > 0 || run.evaluation.metrics.empty()) continue;
    if (!fs::exists(c.file) && fs::exists(c.file + kSetAsideSuffix)) {
      throw RunError("checkpoint file " + c.file + " could not be read and was set aside; delete the run to retrain");
    }
    if (!fs::exists(c.file)) throw RunError("checkpoint file " + c.file + " is missing; delete the run to retrain");
    const auto loaded = load_checkpoint(c.file, *ctx.model, nullptr, nullptr, ctx.device,
                                        ctx.ema ? &ctx.ema->weights() : nullptr);
    if (ctx.ema && !loaded.has_ema) ctx.ema->reset();
    const auto eval_start = Clock::now();
    if (progress) progress->report(ProgressEvent::evaluating(run.index, c.epoch));
    evaluate_checkpoint(ctx, store_, c);
    if (progress) progress->report(ProgressEvent::evaluated(run.index, c.epoch));
    eval_seconds += seconds_since(eval_start);
    spdlog::info("{}: evaluated epoch {}", tag, c.epoch);
  }
  crash_point("run-done");
  store_.mark_done(run_id, train_seconds, eval_seconds);
}

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

double terminal_alpha_bar(const Registry& registry, const PluginConfig& schedule) {
  const auto betas = registry.make_schedule(schedule.plugin, schedule.options)->betas().to(torch::kFloat64);
  return torch::prod(1.0 - betas).item<double>();  // abar_T = prod_t (1 - beta_t), Ho et al. eq. 4
}

std::int64_t record_sweep(SweepGrid& grid, RunStore& store, const Registry& registry,
                          GridChange change) {
  std::map<std::string, double> abar_T;  // by schedule label: grids repeat a few schedules
  for (const auto& run : grid.runs) {
    if (!abar_T.count(run.schedule.label)) abar_T[run.schedule.label] = terminal_alpha_bar(registry, run.schedule);
  }
  std::int64_t sweep_id = 0;
  store.transaction([&] {
    auto existing = store.find_sweep(grid.name);
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
      record.abar_T = abar_T.at(run.schedule.label);
      store.add_run(record);
    }
  });
  return sweep_id;
}

void note_refused_claim(const ClaimResult& claim, const RunConfig& run, SweepSummary& summary,
                        ProgressSink* progress) {
  switch (claim.outcome) {
    case Claim::done:
      ++summary.done;
      ++summary.skipped;
      if (progress) progress->report(ProgressEvent::finished(run.index, "skipped", "done before"));
      break;
    case Claim::running_elsewhere:  // a live process owns it; a dead one's run is taken over by a claim
      spdlog::warn("run {} is being run by process {}; skipped", run.index, claim.other_pid);
      if (progress)
        progress->report(
            ProgressEvent::finished(run.index, "skipped", "run by process " + std::to_string(claim.other_pid)));
      break;
    case Claim::failed_before:
      spdlog::warn("run {} failed before ({}); skipped, use --retry-failed to run it again", run.index,
                   claim.run.reason);
      ++summary.failed;
      if (progress)
        progress->report(ProgressEvent::finished(run.index, "failed", "failed before: " + claim.run.reason));
      break;
    case Claim::claimed:
    case Claim::training_elsewhere:
      break;  // the caller's to handle
  }
}

namespace {

// Executes a run this process has claimed; a failure is recorded as the run's, never thrown.
void execute_claimed(RunExecutor& executor, RunStore& store, std::int64_t sweep_id, const RunConfig& run,
                     const RunConfig& placed, const torch::Device& device, std::int64_t run_id,
                     std::size_t grid_size, SweepSummary& summary, ProgressSink* progress) {
  spdlog::info("run {}/{} [{}] on {}", run.index + 1, grid_size, axes_text(run), device.str());
  set_crash_run(run.index);
  try {
    executor.execute(placed, run_id);
    ++summary.done;
  } catch (const InputError& e) {  // this run's own input, such as a missing data file
    spdlog::error("run {} failed: {}", run.index, e.what());
    store.mark_failed(run_id, e.what());
    ++summary.failed;
    ++summary.input_failed;
  } catch (const c10::Error& e) {  // torch's own errors: the message without its backtrace
    const std::string what = e.what_without_backtrace();
    const auto reason = what.substr(0, what.find('\n'));
    spdlog::error("run {} failed: {}", run.index, reason);
    store.mark_failed(run_id, reason);
    ++summary.failed;
  } catch (const std::exception& e) {  // NaN loss, a plugin that threw, out of memory
    spdlog::error("run {} failed: {}", run.index, e.what());
    store.mark_failed(run_id, e.what());
    ++summary.failed;
  } catch (...) {
    spdlog::error("run {} failed: a plugin threw something that is not a std::exception", run.index);
    store.mark_failed(run_id, "a plugin threw something that is not a std::exception");
    ++summary.failed;
  }
  if (progress) {  // done or failed, with the reason as recorded
    const auto after = store.find_run(sweep_id, run.config_hash);
    progress->report(ProgressEvent::finished(run.index, after->status == RunStatus::done ? "done" : "failed",
                                             after->reason));
  }
}

}  // namespace

SweepSummary run_sweep(SweepGrid grid, RunStore& store, const Registry& registry,
                       const SweepOptions& options) {
  const auto sweep_id = record_sweep(grid, store, registry, options.grid_change);
  if (options.batch_grid && options.only_indices.empty()) train_batched_groups(grid, store, registry, sweep_id, options);
  SweepSummary summary;
  summary.name = grid.name;
  RunExecutor executor(registry, store, options.engine);
  auto* progress = options.engine.progress;
  if (progress)
    progress->sweep_started(grid.name,
                            options.only_indices.empty() ? static_cast<std::int64_t>(grid.runs.size())
                                                         : static_cast<std::int64_t>(options.only_indices.size()));
  // Runs whose training another live process is doing now: tried again once it has finished,
  // when they reuse its checkpoints (or train themselves, should it have failed).
  std::vector<const RunConfig*> waiting;
  std::set<std::int64_t> announced;  // runs whose wait was logged
  const auto attempt = [&](const RunConfig& run) {
    const auto record = store.find_run(sweep_id, run.config_hash);
    RunConfig placed = run;
    if (options.device) placed.device = *options.device;
    const auto device = resolve_device(placed.device);
    const auto claim = store.claim_run(record->id, device.str(), ::getpid(), options.retry_failed, process_alive);
    if (claim.outcome == Claim::training_elsewhere) {
      if (announced.insert(run.index).second) {
        spdlog::info("run {} waits for run id {} (process {}), which trains the same model", run.index,
                     claim.other_run, claim.other_pid);
      }
      waiting.push_back(&run);
      return;
    }
    if (claim.outcome != Claim::claimed) {
      note_refused_claim(claim, run, summary, progress);
      return;
    }
    execute_claimed(executor, store, sweep_id, run, placed, device, record->id, grid.runs.size(), summary,
                    progress);
  };
  if (options.only_indices.empty()) {
    for (const auto& run : grid.runs) attempt(run);
  } else {
    for (const auto index : options.only_indices) attempt(grid.runs.at(static_cast<std::size_t>(index)));
  }
  while (!waiting.empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto again = std::move(waiting);
    waiting.clear();
    for (const auto* run : again) attempt(*run);
  }
  return summary;
}

}  // namespace difflab
