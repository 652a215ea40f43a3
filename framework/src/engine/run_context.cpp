#include "engine/run_context.hpp"

#include <cctype>

#include <spdlog/spdlog.h>

#include "difflab/errors.hpp"
#include "engine/latent_data.hpp"
#include "training/checkpoint.hpp"

namespace difflab {
namespace fs = std::filesystem;

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

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& train,
                                                        const std::vector<torch::Tensor>& parameters) {
  if (train.optimizer == "adamw") {
    return std::make_unique<torch::optim::AdamW>(
        parameters, torch::optim::AdamWOptions(train.lr).weight_decay(train.weight_decay));
  }
  return std::make_unique<torch::optim::Adam>(
      parameters, torch::optim::AdamOptions(train.lr).weight_decay(train.weight_decay));
}

std::mutex& global_seed_mutex() {
  static std::mutex* m = new std::mutex;  // parameter init draws from torch's global generator
  return *m;
}

std::string RunContext::evaluated_name() const {
  return ema ? fmt::format("ema({})", ema->decay()) : std::string("model");
}

namespace {

DataSplit to_device(const DataSplit& split, torch::Device device) {
  return {split.x.to(device), split.labels.defined() ? split.labels.to(device) : split.labels};
}

}  // namespace

RunContext make_context(const Registry& registry, const RunConfig& run, const fs::path& out_dir,
                        const LatentSource* latent) {
  RunContext ctx{run, resolve_device(run.device), {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, 1.0};
  ctx.dataset = registry.make_dataset(run.dataset.plugin, run.dataset.options);
  ctx.run_dir = out_dir / run.sweep / run.train_hash;
  ctx.eval_dir = evaluation_dir(out_dir, run);
  for (const auto& m : run.evaluation.metrics) {
    ctx.metrics.push_back(registry.make_metric(m.plugin, m.options));
  }
  ctx.train = to_device(ctx.dataset->load(Split::train, derive_seed(run.seed, "data")), ctx.device);
  ctx.test = to_device(ctx.dataset->load(Split::test, derive_seed(run.seed, "data")), ctx.device);
  if (ctx.train.x.size(0) < 1) throw RunError("the dataset's train split is empty");
  if (run.task == Task::autoencoder || is_latent(run)) {
    std::lock_guard<std::mutex> lock(global_seed_mutex());
    torch::manual_seed(derive_seed(run.seed, "autoencoder-init"));
    ctx.autoencoder = registry.make_autoencoder(run.autoencoder.plugin, run.autoencoder.options);
    ctx.autoencoder->to(ctx.device);
  }
  if (run.task == Task::autoencoder) return ctx;

  if (is_latent(run)) {  // the model diffuses the autoencoder's latents; images stay for metrics
    if (!latent) throw RunError("a latent diffusion run needs its autoencoder's checkpoint");
    load_checkpoint(latent->checkpoint, *ctx.autoencoder, nullptr, nullptr, ctx.device);
    ctx.autoencoder->eval();
    auto data = encode_dataset(*ctx.autoencoder, ctx.train, ctx.test, out_dir / "latents",
                               latent_cache_key(run.autoencoder_hash, latent->step), ctx.device);
    spdlog::info("run {}: latents of autoencoder run id {} (step {}) {} {} (scale {:.6g})", run.index,
                 latent->run_id, latent->step, data.reused ? "read from" : "written to", data.file.string(),
                 data.scale);
    ctx.images_train = std::move(ctx.train);
    ctx.images_test = std::move(ctx.test);
    ctx.train = std::move(data.train);
    ctx.test = std::move(data.test);
    ctx.latent_scale = data.scale;
  }
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
  ctx.process = std::make_unique<DiffusionProcess>(schedule_betas(registry, run.schedule), ctx.device);
  return ctx;
}

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

}  // namespace difflab
