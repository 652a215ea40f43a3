#include "difflab/diffusion.hpp"

#include <cmath>

#include "difflab/errors.hpp"
#include "difflab/sampler.hpp"

namespace difflab {

DiffusionProcess::DiffusionProcess(torch::Tensor betas, torch::Device device) : device_(device) {
  betas_f64_ = betas.to(torch::kCPU, torch::kFloat64).contiguous();
  if (betas_f64_.dim() != 1 || betas_f64_.size(0) < 1) {
    throw InputError("a noise schedule must give at least one beta");
  }
  if (!(betas_f64_.gt(0).all().item<bool>() && betas_f64_.lt(1).all().item<bool>())) {
    throw InputError("every beta of a noise schedule must lie in (0, 1)");
  }
  const auto alphas = 1.0 - betas_f64_;
  alpha_bars_f64_ = torch::cumprod(alphas, 0);
  const auto alpha_bars_prev =
      torch::cat({torch::ones({1}, torch::kFloat64), alpha_bars_f64_.slice(0, 0, -1)});
  // Ho et al. 2020, eq. 7: beta tilde and the posterior mean's two coefficients.
  const auto posterior_variance = betas_f64_ * (1.0 - alpha_bars_prev) / (1.0 - alpha_bars_f64_);
  const auto coef_x0 = betas_f64_ * alpha_bars_prev.sqrt() / (1.0 - alpha_bars_f64_);
  const auto coef_xt = (1.0 - alpha_bars_prev) * alphas.sqrt() / (1.0 - alpha_bars_f64_);

  const auto on_device = [&](const torch::Tensor& t) {
    return t.to(device_, torch::kFloat32).contiguous();
  };
  betas_ = on_device(betas_f64_);
  alphas_ = on_device(alphas);
  alpha_bars_ = on_device(alpha_bars_f64_);
  alpha_bars_prev_ = on_device(alpha_bars_prev);
  sqrt_alpha_bars_ = on_device(alpha_bars_f64_.sqrt());
  sqrt_one_minus_alpha_bars_ = on_device((1.0 - alpha_bars_f64_).sqrt());
  posterior_variance_ = on_device(posterior_variance);
  posterior_mean_coef_x0_ = on_device(coef_x0);
  posterior_mean_coef_xt_ = on_device(coef_xt);
  sigmas_ = on_device(((1.0 - alpha_bars_f64_) / alpha_bars_f64_).sqrt());
}

torch::Tensor DiffusionProcess::gather(const torch::Tensor& table, const torch::Tensor& t,
                                       const torch::Tensor& like) {
  std::vector<std::int64_t> shape(like.dim(), 1);
  shape[0] = t.size(0);
  return table.index_select(0, t.to(table.device(), torch::kLong)).view(shape);
}

torch::Tensor DiffusionProcess::q_sample(const torch::Tensor& x0, const torch::Tensor& t,
                                         const torch::Tensor& noise) const {
  return gather(sqrt_alpha_bars_, t, x0) * x0 + gather(sqrt_one_minus_alpha_bars_, t, x0) * noise;
}

torch::Tensor DiffusionProcess::target(Prediction prediction, const torch::Tensor& x0,
                                       const torch::Tensor& noise, const torch::Tensor& t) const {
  switch (prediction) {
    case Prediction::epsilon: return noise;
    case Prediction::x0: return x0;
    case Prediction::v:  // Salimans & Ho 2022: v = sqrt(abar) eps - sqrt(1 - abar) x0
      return gather(sqrt_alpha_bars_, t, x0) * noise - gather(sqrt_one_minus_alpha_bars_, t, x0) * x0;
  }
  return noise;
}

torch::Tensor DiffusionProcess::to_epsilon(Prediction prediction, const torch::Tensor& output,
                                           const torch::Tensor& x_t, const torch::Tensor& t) const {
  const auto a = gather(sqrt_alpha_bars_, t, x_t);
  const auto s = gather(sqrt_one_minus_alpha_bars_, t, x_t);
  switch (prediction) {
    case Prediction::epsilon: return output;
    case Prediction::x0: return (x_t - a * output) / s;
    case Prediction::v: return s * x_t + a * output;
  }
  return output;
}

torch::Tensor DiffusionProcess::to_x0(Prediction prediction, const torch::Tensor& output,
                                      const torch::Tensor& x_t, const torch::Tensor& t) const {
  const auto a = gather(sqrt_alpha_bars_, t, x_t);
  const auto s = gather(sqrt_one_minus_alpha_bars_, t, x_t);
  switch (prediction) {
    case Prediction::epsilon: return (x_t - s * output) / a;
    case Prediction::x0: return output;
    case Prediction::v: return a * x_t - s * output;
  }
  return output;
}

torch::Tensor DiffusionProcess::posterior_mean(const torch::Tensor& x0, const torch::Tensor& x_t,
                                               const torch::Tensor& t) const {
  return gather(posterior_mean_coef_x0_, t, x_t) * x0 + gather(posterior_mean_coef_xt_, t, x_t) * x_t;
}

Denoised denoise(Denoiser& model, const DiffusionProcess& process, const torch::Tensor& x_t,
                 const torch::Tensor& t, const Conditioning& cond) {
  const auto t_index = t.to(torch::kLong);
  auto output = model.forward(x_t, t.to(torch::kFloat32), cond);
  if (cond.labels.defined() && cond.guidance_scale != 1.0) {
    // Classifier-free guidance (Ho & Salimans 2022): extrapolate from the unconditional output.
    const auto unconditional = model.forward(x_t, t.to(torch::kFloat32), Conditioning{});
    output = unconditional + cond.guidance_scale * (output - unconditional);
  }
  const auto prediction = model.prediction();
  return {process.to_epsilon(prediction, output, x_t, t_index),
          process.to_x0(prediction, output, x_t, t_index)};
}

Prediction parse_prediction(const std::string& name) {
  if (name == "epsilon") return Prediction::epsilon;
  if (name == "x0") return Prediction::x0;
  if (name == "v") return Prediction::v;
  throw InputError("unknown prediction type '" + name + "' (expected epsilon, x0 or v)");
}

const char* prediction_name(Prediction prediction) {
  switch (prediction) {
    case Prediction::epsilon: return "epsilon";
    case Prediction::x0: return "x0";
    case Prediction::v: return "v";
  }
  return "?";
}

torch::Tensor sampler_noise(const SamplingContext& ctx, const torch::Tensor& like) {
  return torch::randn(like.sizes(), ctx.generator, like.options());
}

torch::Tensor ancestral_step(const SamplingContext& ctx, const torch::Tensor& mean, std::int64_t t,
                             bool posterior_variance) {
  if (t == 0) return mean;
  const auto& p = ctx.process;
  const auto variance = posterior_variance ? p.posterior_variance()[t] : p.betas()[t];
  return mean + variance.sqrt() * sampler_noise(ctx, mean);
}

torch::Tensor timestep_batch(const torch::Tensor& x, std::int64_t t) {
  return torch::full({x.size(0)}, double(t), x.options().dtype(torch::kFloat32));
}

torch::Tensor timestep_embedding(const torch::Tensor& t, std::int64_t dim) {
  const std::int64_t half = dim / 2;
  const auto k = torch::arange(half, t.options().dtype(torch::kFloat32));
  const auto frequencies = torch::exp(k * (-std::log(10000.0) / static_cast<double>(half)));
  const auto angles = t.to(torch::kFloat32).reshape({-1, 1}) * frequencies.reshape({1, -1});
  return torch::cat({angles.sin(), angles.cos()}, 1);
}

}  // namespace difflab
