#include "engine/evaluator.hpp"

#include <algorithm>
#include <optional>

#include "difflab/errors.hpp"
#include "engine/distribution_view.hpp"
#include "engine/latent_data.hpp"
#include "engine/point_pictures.hpp"
#include "io/image_io.hpp"
#include "io/npy.hpp"
#include "training/crash_point.hpp"

namespace difflab {
namespace fs = std::filesystem;

namespace {

// Pictures of image samples: a grid of the first kGridSamples, kGridColumns to a row, and a
// strip of about kProgressionFrames states of the first sample, x_T first and x_0 last.
constexpr std::int64_t kGridSamples = 64;
constexpr std::int64_t kGridColumns = 8;
constexpr std::int64_t kProgressionFrames = 10;
// Real images the distribution view fits its principal components on.
constexpr std::int64_t kDistributionReal = 2000;

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

const PluginConfig kNoSampler{"", Options{}, "", nlohmann::json::object()};  // checkpoint-scope values

// A protocol entry as JSON: decimal integers as numbers, "true"/"false" as booleans.
nlohmann::json protocol_value(const std::string& text) {
  if (text == "true" || text == "false") return text == "true";
  if (!text.empty() && text.size() < 19 &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::stoll(text);
  }
  return text;
}

// The store's rows of a metric's values, measured with `sampler` (kNoSampler for checkpoint-scope
// values and an autoencoder's reconstructions) at `nfe` model calls per sample (0 for those).
// Each value's protocol: what the metric says it compared against, then `measured` (what the
// framework fed it: the number of samples, common noise, NFE), keys sorted.
void append_metric_rows(std::vector<MetricRecord>& rows, const std::vector<MetricValue>& values,
                        std::int64_t checkpoint_id, const PluginConfig& sampler, std::int64_t nfe,
                        const nlohmann::json& measured) {
  for (const auto& v : values) {
    MetricRecord row{checkpoint_id, sampler.label, sampler.json.dump(), v.name, v.variant, v.value};
    row.better = v.better == Better::higher ? "higher" : "lower";  // as the plugin declares
    row.nfe = nfe;
    nlohmann::json protocol = measured;
    for (const auto& [key, value] : v.protocol) protocol[key] = protocol_value(value);
    row.protocol_json = protocol.dump();
    rows.push_back(std::move(row));
  }
}

// What the framework fed a sample metric: how many samples, drawn from common noise or not, at
// how many model calls each.
nlohmann::json sample_protocol(std::int64_t samples, bool common_noise, std::int64_t nfe) {
  return {{"samples", samples}, {"common_noise", common_noise}, {"nfe", nfe}};
}

}  // namespace

void Evaluator::evaluate(const CheckpointRecord& checkpoint) {
  if (ctx_.run.task == Task::autoencoder) {
    evaluate_autoencoder(checkpoint);
    return;
  }
  auto& ctx = ctx_;
  auto& store = store_;
  torch::NoGradGuard no_grad;
  Denoiser& model = ctx.evaluated();
  model.eval();
  const auto& run = ctx.run;
  const bool latent = is_latent(run);
  // What sample metrics compare with: the dataset's images, which a latent run decodes into.
  const DataSplit& data_train = latent ? ctx.images_train : ctx.train;
  const DataSplit& data_test = latent ? ctx.images_test : ctx.test;
  // The run's own folder: a run that reuses another's checkpoints must not overwrite its samples.
  const auto dir = ctx.eval_dir / fmt::format("epoch-{:06d}", checkpoint.epoch);
  fs::create_directories(dir);
  std::vector<MetricRecord> rows;
  std::vector<ArtifactRecord> artifacts;
  const auto record = [&](const std::vector<MetricValue>& values, const PluginConfig& sampler, std::int64_t nfe,
                          const nlohmann::json& measured) {
    append_metric_rows(rows, values, checkpoint.id, sampler, nfe, measured);
  };
  for (std::size_t m = 0; m < ctx.metrics.size(); ++m) {
    const auto scope = ctx.metrics[m]->scope();
    // In a latent run the model's own quantities (test loss) are measured on the latents; a
    // metric that also measures samples measures them decoded, as images, and only so.
    if (scope == Metric::Scope::samples || (latent && scope == Metric::Scope::both)) continue;
    const auto& label = run.evaluation.metrics[m].label;
    MetricContext mc{model, *ctx.process, ctx.train, ctx.test, torch::Tensor(),
                     make_generator(ctx.device, derive_seed(run.seed, "metric:" + label, checkpoint.step)),
                     Conditioning{}, run.evaluation.class_conditional};
    record(ctx.metrics[m]->evaluate(mc), kNoSampler, 0, nlohmann::json::object());
  }
  auto sample_shape = ctx.train.x.sizes().vec();
  sample_shape[0] = run.evaluation.num_samples;
  Conditioning cond;
  if (run.evaluation.class_conditional) {  // balanced labels 0, 1, ..., K-1, 0, 1, ...
    cond.labels = torch::arange(run.evaluation.num_samples, torch::TensorOptions().dtype(torch::kLong).device(ctx.device)) %
                  ctx.dataset->num_classes();
    cond.guidance_scale = run.evaluation.guidance_scale;
  }
  const bool images = latent || is_image_batch(sample_shape);  // 2-D points get no pictures
  // Latents to images; the identity for a run on the data itself.
  const auto to_data = [&](const torch::Tensor& x) {
    return latent ? decode_latents(*ctx.autoencoder, x, ctx.latent_scale) : x;
  };
  for (std::size_t s = 0; s < ctx.samplers.size(); ++s) {
    const auto& sampler = run.evaluation.samplers[s];
    // The sampler's own stream for its later noise; x_T from the run's common stream, so two
    // samplers or two checkpoints differ by themselves, not by their noise (common random numbers).
    auto gen = make_generator(ctx.device, derive_seed(run.seed, "sampler:" + sampler.label, checkpoint.step));
    auto x_T_gen = run.evaluation.common_noise ? make_generator(ctx.device, derive_seed(run.seed, "x_T")) : gen;
    const auto x_T = torch::randn(sample_shape, x_T_gen, ctx.train.x.options());
    std::optional<ProgressionRecorder> progression;
    if (images) progression.emplace(ctx.samplers[s]->steps(ctx.process->timesteps()), x_T);
    std::optional<ReverseRecorder> reverse;  // 2-D points: the first sampler's animation
    if (s == 0 && is_point_batch(sample_shape)) reverse.emplace(ctx.samplers[s]->steps(ctx.process->timesteps()), x_T);
    SamplingContext sc{model, *ctx.process, gen, cond,
                       progression ? progression->callback() : reverse ? reverse->callback() : StepCallback{}};
    torch::Tensor drawn;
    try {
      drawn = ctx.sampler_graphs.sample(*ctx.samplers[s], sc, x_T);
    } catch (const c10::Error& e) {
      throw RunError("sampler '" + sampler.label + "' failed: " + e.what_without_backtrace());
    } catch (const InputError& e) {
      throw RunError("sampler '" + sampler.label + "': " + e.what());
    }
    const auto name = file_label(sampler.label);
    if (latent) {
      const auto npy = (dir / ("latents-" + name + ".npy")).string();
      write_npy(npy, drawn);
      artifacts.push_back({checkpoint.id, sampler.label, "latents_npy", npy});
    }
    const auto samples = to_data(drawn);
    const auto npy = (dir / ("samples-" + name + ".npy")).string();
    write_npy(npy, samples);
    artifacts.push_back({checkpoint.id, sampler.label, "samples_npy", npy});
    if (progression && is_image_batch(samples.sizes())) {
      const auto grid = (dir / ("samples-" + name + ".png")).string();
      write_png(grid, image_grid(samples.slice(0, 0, kGridSamples), kGridColumns));
      artifacts.push_back({checkpoint.id, sampler.label, "samples_grid_png", grid});
      const auto strip = (dir / ("progression-" + name + ".png")).string();
      const auto frames = to_data(progression->frames(drawn).to(ctx.device)).to(torch::kCPU);
      write_png(strip, image_grid(frames, frames.size(0)));
      artifacts.push_back({checkpoint.id, sampler.label, "progression_png", strip});
      const auto real = data_test.x.slice(0, 0, kDistributionReal);
      // Fitted on the real images only, so one fit serves every sampler and checkpoint.
      if (!distribution_pca_) distribution_pca_ = fit_pca(real, kDistributionComponents);
      const auto labels = data_test.labels.defined() ? data_test.labels.slice(0, 0, kDistributionReal) : torch::Tensor();
      for (auto& a : write_distribution_view(dir, name, *distribution_pca_, real, labels, samples, checkpoint.id,
                                             sampler.label)) {
        artifacts.push_back(std::move(a));
      }
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
      MetricContext mc{model, *ctx.process, data_train, data_test, samples,
                       make_generator(ctx.device, derive_seed(run.seed, "metric:" + label, checkpoint.step)),
                       cond, run.evaluation.class_conditional};
      const auto nfe = ctx.samplers[s]->nfe(ctx.process->timesteps());
      record(ctx.metrics[m]->evaluate(mc), sampler, nfe,
             sample_protocol(samples.size(0), run.evaluation.common_noise, nfe));
    }
  }
  crash_point("evaluation");
  store.transaction([&] {
    for (const auto& r : rows) store.add_metric(r);
    for (const auto& a : artifacts) store.add_artifact(a);
  });
  model.train();
}

void Evaluator::evaluate_autoencoder(const CheckpointRecord& checkpoint) {
  auto& ctx = ctx_;
  torch::NoGradGuard no_grad;
  auto& autoencoder = *ctx.autoencoder;
  autoencoder.eval();
  const auto& run = ctx.run;
  const auto dir = ctx.eval_dir / fmt::format("epoch-{:06d}", checkpoint.epoch);
  fs::create_directories(dir);
  // The first num_samples test rows, encoded to their means and decoded (latent_data.hpp).
  const auto rows = std::min(run.evaluation.num_samples, ctx.test.x.size(0));
  const auto originals = ctx.test.x.slice(0, 0, rows);
  const auto labels = ctx.test.labels.defined() ? ctx.test.labels.slice(0, 0, rows) : torch::Tensor();
  const auto means = encode_means(autoencoder, originals);
  const auto reconstructions = decode_latents(autoencoder, means, 1.0);
  std::vector<MetricRecord> metric_rows;
  for (std::size_t m = 0; m < ctx.metrics.size(); ++m) {
    const auto& metric = run.evaluation.metrics[m];
    ReconstructionContext rc{ctx.train, ctx.test, originals, reconstructions,
                             make_generator(ctx.device, derive_seed(run.seed, "metric:" + metric.label, checkpoint.step))};
    append_metric_rows(metric_rows, ctx.metrics[m]->evaluate_reconstructions(rc), checkpoint.id, kNoSampler, 0,
                       {{"samples", rows}});
  }
  std::vector<ArtifactRecord> artifacts;
  // Rows of originals, each followed by their reconstructions.
  const auto shown = std::min<std::int64_t>(rows, kGridSamples / 2) / kGridColumns * kGridColumns;
  if (shown > 0 && is_image_batch(originals.sizes())) {
    const auto pairs = torch::stack({originals.slice(0, 0, shown).reshape({-1, kGridColumns, originals.size(1),
                                                                            originals.size(2), originals.size(3)}),
                                     reconstructions.slice(0, 0, shown).reshape({-1, kGridColumns, originals.size(1),
                                                                                  originals.size(2), originals.size(3)})},
                                    1);
    const auto png = (dir / "reconstructions.png").string();
    write_png(png, image_grid(pairs.flatten(0, 2), kGridColumns));
    artifacts.push_back({checkpoint.id, "", "reconstructions_png", png});
  }
  artifacts.push_back(write_latent_scatter(dir, means, labels, checkpoint.id));
  crash_point("evaluation");
  store_.transaction([&] {
    for (const auto& r : metric_rows) store_.add_metric(r);
    for (const auto& a : artifacts) store_.add_artifact(a);
  });
  autoencoder.train();
}

}  // namespace difflab
