// The checks of a run that need its plugins' objects (runner validate, and every sweep before it
// records anything): what the sweep file's types and bounds cannot say.
#include "difflab/errors.hpp"
#include "engine/class_table.hpp"
#include "engine/engine.hpp"

namespace difflab {

namespace {

// The latent shape of one row of the run's data under its autoencoder section: the plugin's own
// checks of its options, then of the data's shape (InputError saying why).
std::vector<std::int64_t> latent_shape(const Registry& registry, const RunConfig& run) {
  const auto dataset = registry.make_dataset(run.dataset.plugin, run.dataset.options);
  const auto test = dataset->load(Split::test, derive_seed(run.seed, "data"));
  return registry.make_autoencoder(run.autoencoder.plugin, run.autoencoder.options)
      ->latent_shape(test.x.sizes().slice(1).vec());
}

// An autoencoder run: its network can take the data, and every metric measures reconstructions.
void validate_autoencoder_run(const Registry& registry, const RunConfig& run, const std::string& where) {
  try {
    latent_shape(registry, run);
  } catch (const InputError& e) {
    throw InputError(where + "autoencoder '" + run.autoencoder.label + "': " + e.what());
  }
  for (const auto& m : run.evaluation.metrics) {
    if (!registry.make_metric(m.plugin, m.options)->measures_reconstructions()) {
      throw InputError(where + "evaluation.metrics '" + m.label +
                       "' does not measure an autoencoder's reconstructions (fid, kid, inception_score, precision_recall, "
                       "psnr and lpips do)");
    }
  }
  if (run.train.ema_decay > 0) {
    throw InputError(where + "train.ema_decay: an autoencoder trains without a moving average; leave it out");
  }
  resolve_device(run.device);
}

// A latent run's model must take its autoencoder's latents: one forward pass on zeros says so.
void validate_latent_shape(const Registry& registry, const RunConfig& run, Denoiser& model) {
  std::vector<std::int64_t> shape;
  try {
    shape = latent_shape(registry, run);
  } catch (const InputError& e) {
    throw InputError(run.autoencoder_where + "autoencoder: " + e.what());
  }
  shape.insert(shape.begin(), 2);
  torch::NoGradGuard no_grad;
  try {
    model.forward(torch::zeros(shape), torch::zeros({2}), {});
  } catch (const std::exception& e) {
    const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
    const std::string why = torch_error ? torch_error->what_without_backtrace() : e.what();
    throw InputError(run.autoencoder_where + "autoencoder: model '" + run.model.label +
                     "' cannot take the autoencoder's latents of shape " + c10::str(at::IntArrayRef(shape).slice(1)) +
                     ": " + why.substr(0, why.find('\n')));
  }
}

}  // namespace

void validate_run(const Registry& registry, const RunConfig& run) {
  const auto where = "run " + std::to_string(run.index) + ": ";
  if (run.task == Task::autoencoder) {
    validate_autoencoder_run(registry, run, where);
    return;
  }
  std::unique_ptr<DiffusionProcess> process;
  try {  // the process's own checks (betas in (0, 1)) on the CPU
    process = std::make_unique<DiffusionProcess>(schedule_betas(registry, run.schedule), torch::kCPU);
  } catch (const InputError& e) {
    throw InputError(where + "schedule '" + run.schedule.label + "': " + e.what());
  }
  const std::int64_t timesteps = process->timesteps();
  for (const auto& s : run.evaluation.samplers) {
    const auto sampler = registry.make_sampler(s.plugin, s.options);
    if (sampler->steps(timesteps) > timesteps) {
      throw InputError(where + "evaluation.samplers '" + s.label + "' takes " +
                       std::to_string(sampler->steps(timesteps)) +
                       " steps, more than the schedule's " + std::to_string(timesteps) + " timesteps");
    }
    const bool spaced = s.options.has("spacing") && s.options.has("rho") && s.options.has("sigma_min") &&
                        s.options.has("sigma_max");
    if (spaced) {  // the shared spacing options (TimestepSpacing): sigma bounds within the schedule's
      try {
        TimestepSpacing::from(s.options).timesteps(*process, sampler->steps(timesteps), s.label);
      } catch (const InputError& e) {
        throw InputError(where + "evaluation.samplers " + e.what());
      }
    }
  }
  const auto model = registry.make_model(run.model.plugin, run.model.options);  // option errors now
  if (is_latent(run)) validate_latent_shape(registry, run, *model);
  if (run.zero_terminal_snr && model->prediction() == Prediction::epsilon) {
    // Lin et al. 2024, sec. 3.2: at abar_T = 0, x_T is pure noise, so predicting the noise says
    // nothing about x0 (x0 = (x_T - sqrt(1 - abar) eps) / sqrt(abar) divides by 0).
    throw InputError(where + "schedule.rescale_zero_terminal_snr: epsilon prediction cannot be "
                     "sampled at a zero terminal SNR (x0 = (x - sqrt(1 - abar) eps) / sqrt(abar) divides "
                     "by sqrt(abar_T) = 0); set the model's prediction: v (Lin et al. 2024, sec. 3.2)");
  }
  const auto dataset = registry.make_dataset(run.dataset.plugin, run.dataset.options);
  if (run.evaluation.class_conditional && dataset->num_classes() < 1) {
    throw InputError(where + "evaluation.class_conditional: the dataset '" + run.dataset.label +
                     "' has no class labels");
  }
  if (run.train.label_dropout > 0 && dataset->num_classes() < 1) {  // it would drop nothing
    throw InputError(where + "train.label_dropout: the dataset '" + run.dataset.label +
                     "' has no class labels to drop");
  }
  try {  // DenoisingTask checks the loaded labels again
    check_class_table(run, dataset->num_classes());
  } catch (const InputError& e) {
    throw InputError(where + e.what());
  }
  for (const auto& m : run.evaluation.metrics) registry.make_metric(m.plugin, m.options);
  resolve_device(run.device);
}

void check_class_table(const RunConfig& run, std::int64_t needed) {
  const auto classes = run.model.options.has("num_classes") ? run.model.options.integer("num_classes") : 0;
  if (classes < 1 || needed <= classes) return;  // an unconditional model ignores labels
  throw InputError("model '" + run.model.label + "' has num_classes = " + std::to_string(classes) +
                   ", but the dataset '" + run.dataset.label + "' has class labels up to " +
                   std::to_string(needed - 1) + "; set the model's num_classes to at least " +
                   std::to_string(needed));
}

torch::Tensor schedule_betas(const Registry& registry, const PluginConfig& schedule) {
  const auto betas = registry.make_schedule(schedule.plugin, schedule.options)->betas().to(torch::kFloat64);
  const bool rescale = schedule.options.has("rescale_zero_terminal_snr") &&
                       schedule.options.boolean("rescale_zero_terminal_snr");
  return rescale ? rescale_zero_terminal_snr(betas) : betas;
}

double terminal_alpha_bar(const Registry& registry, const PluginConfig& schedule) {
  const auto betas = schedule_betas(registry, schedule);
  return torch::prod(1.0 - betas).item<double>();  // abar_T = prod_t (1 - beta_t), Ho et al. eq. 4
}

}  // namespace difflab
