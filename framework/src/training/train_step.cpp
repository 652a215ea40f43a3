#include "training/train_step.hpp"

namespace difflab {

void clip_grad_norm_on_device(const std::vector<torch::Tensor>& parameters, double max_norm) {
  std::vector<torch::Tensor> norms;
  for (const auto& p : parameters) {
    if (p.grad().defined()) norms.push_back(p.grad().norm(2));
  }
  if (norms.empty()) return;
  const auto total = torch::stack(norms).norm(2);
  const auto scale = torch::clamp_max(max_norm / (total + 1e-6), 1.0);
  for (const auto& p : parameters) {
    if (p.grad().defined()) p.grad().mul_(scale);
  }
}

TrainStep::TrainStep(Denoiser& model, const DiffusionProcess& process,
                     torch::optim::Optimizer& optimizer, double grad_clip, LossSettings loss)
    : model_(model), process_(process), optimizer_(optimizer), grad_clip_(grad_clip),
      loss_(loss), parameters_(model.parameters()) {}

torch::Tensor min_snr_weights(Prediction prediction, const torch::Tensor& snr, double gamma) {
  const auto clipped = snr.clamp_max(gamma);
  switch (prediction) {
    case Prediction::epsilon: return clipped / snr;
    case Prediction::x0: return clipped;
    case Prediction::v: return clipped / (snr + 1.0);
  }
  return clipped;
}

torch::Tensor denoising_loss(Denoiser& model, const DiffusionProcess& process, const torch::Tensor& x0,
                             const torch::Tensor& labels, torch::Generator& generator,
                             const LossSettings& loss) {
  const auto t = torch::randint(0, process.timesteps(), {x0.size(0)}, generator,
                                x0.options().dtype(torch::kLong));
  const auto noise = torch::randn(x0.sizes(), generator, x0.options());
  const auto x_t = process.q_sample(x0, t, noise);
  auto cond_labels = labels;
  if (labels.defined() && loss.label_dropout > 0) {  // drawn from the run's generator: resumable
    const auto drop = torch::rand({x0.size(0)}, generator, x0.options()) < loss.label_dropout;
    cond_labels = torch::where(drop, torch::full_like(labels, -1), labels);
  }
  const auto output = model.forward(x_t, t.to(torch::kFloat32), Conditioning{cond_labels});
  const auto target = process.target(model.prediction(), x0, noise, t);
  if (loss.min_snr_gamma <= 0) return torch::mse_loss(output, target);
  const auto abar = process.alpha_bars().index_select(0, t);
  const auto weights = min_snr_weights(model.prediction(), abar / (1.0 - abar), loss.min_snr_gamma);
  const auto per_example = (output - target).square().flatten(1).mean(1);
  return (weights * per_example).mean();
}

torch::Tensor TrainStep::operator()(const torch::Tensor& x0, const torch::Tensor& labels,
                                    torch::Generator& generator) {
  const auto loss = denoising_loss(model_, process_, x0, labels, generator, loss_);
  optimizer_.zero_grad();
  loss.backward();
  if (grad_clip_ > 0) clip_grad_norm_on_device(parameters_, grad_clip_);
  optimizer_.step();
  return loss.detach();
}

}  // namespace difflab
