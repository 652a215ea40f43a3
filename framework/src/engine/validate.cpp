// The checks of a run that need its plugins' objects (runner validate, and every sweep before it
// records anything): what the sweep file's types and bounds cannot say.
#include "difflab/errors.hpp"
#include "engine/engine.hpp"

namespace difflab {

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

double terminal_alpha_bar(const Registry& registry, const PluginConfig& schedule) {
  const auto betas = registry.make_schedule(schedule.plugin, schedule.options)->betas().to(torch::kFloat64);
  return torch::prod(1.0 - betas).item<double>();  // abar_T = prod_t (1 - beta_t), Ho et al. eq. 4
}

}  // namespace difflab
