#include "difflab/diffusion.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "difflab/errors.hpp"
#include "difflab/sampler.hpp"

namespace difflab {

DiffusionProcess::DiffusionProcess(torch::Tensor betas, torch::Device device) : device_(device) {
  betas_f64_ = betas.to(torch::kCPU, torch::kFloat64).contiguous();
  if (betas_f64_.dim() != 1 || betas_f64_.size(0) < 1) {
    throw InputError("a noise schedule must give at least one beta");
  }
  const std::int64_t T = betas_f64_.size(0);
  const auto before_last = betas_f64_.slice(0, 0, T - 1);
  if (!(betas_f64_.gt(0).all().item<bool>() && before_last.lt(1).all().item<bool>() &&
        betas_f64_[T - 1].le(1).item<bool>())) {
    throw InputError("every beta of a noise schedule must lie in (0, 1) (the last may be 1: a zero terminal SNR)");
  }
  const auto alphas = 1.0 - betas_f64_;
  alpha_bars_f64_ = torch::cumprod(alphas, 0);
  zero_terminal_snr_ = alpha_bars_f64_[T - 1].item<double>() == 0.0;
  const auto log_snr = (alpha_bars_f64_ / (1.0 - alpha_bars_f64_)).log();  // -inf where abar = 0
  log_snr_.assign(log_snr.data_ptr<double>(), log_snr.data_ptr<double>() + T);
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
  log_snr_device_ = on_device(log_snr);
}

namespace {

// The log-SNR at fractional t: linear between table entries (a -inf end gives -inf inside).
double interpolate(const std::vector<double>& table, double t) {
  const double last = static_cast<double>(table.size() - 1);
  t = std::clamp(t, 0.0, last);
  const auto i = static_cast<std::size_t>(std::floor(t));
  const double w = t - static_cast<double>(i);
  if (w == 0.0) return table[i];
  return table[i] + w * (table[i + 1] - table[i]);
}

// The fractional index where a decreasing table takes `value`, clamped to [0, size - 1].
double invert(const std::vector<double>& table, double value) {
  if (!(value < table.front())) return 0.0;
  if (!(value > table.back())) return static_cast<double>(table.size() - 1);
  // First entry at or below value (the table decreases), then the linear inverse in its interval.
  const auto it = std::lower_bound(table.begin(), table.end(), value, std::greater<double>());
  const auto i = static_cast<std::size_t>(it - table.begin());
  if (*it == value) return static_cast<double>(i);
  if (std::isinf(table[i])) return static_cast<double>(i - 1);  // the interval ending at abar = 0
  return static_cast<double>(i - 1) + (value - table[i - 1]) / (table[i] - table[i - 1]);
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace

double DiffusionProcess::alpha_bar_at(double t) const {
  const double whole = std::round(t);
  if (t == whole && whole >= 0 && whole < static_cast<double>(timesteps())) {
    return alpha_bars_f64_[static_cast<std::int64_t>(whole)].item<double>();  // the table itself
  }
  return sigmoid(interpolate(log_snr_, t));
}

double DiffusionProcess::sigma_at(double t) const {
  const double abar = alpha_bar_at(t);
  return abar == 0.0 ? std::numeric_limits<double>::infinity() : std::sqrt((1.0 - abar) / abar);
}

double DiffusionProcess::lambda_at(double t) const { return 0.5 * interpolate(log_snr_, t); }

double DiffusionProcess::t_from_lambda(double lambda) const { return invert(log_snr_, 2.0 * lambda); }

double DiffusionProcess::t_from_sigma(double sigma) const {
  if (sigma <= 0) return 0.0;
  return t_from_lambda(-std::log(sigma));
}

namespace {

// A float timestep tensor split for interpolation: lower index, upper index, weight of the upper.
struct Bracket {
  torch::Tensor lower, upper, weight;
};

Bracket bracket(const torch::Tensor& t, std::int64_t timesteps, torch::Device device) {
  const auto time = t.to(device, torch::kFloat32).clamp(0, double(timesteps - 1));
  const auto floor = time.floor();
  const auto lower = floor.to(torch::kLong);
  return {lower, (lower + 1).clamp_max(timesteps - 1), time - floor};
}

// abar [B] at the bracketed timesteps: the table at whole t (abar = 0 included), between entries
// the sigmoid of the linearly interpolated log-SNR.
torch::Tensor interpolate_alpha_bar(const Bracket& b, const torch::Tensor& log_snr,
                                    const torch::Tensor& alpha_bars) {
  const auto l0 = log_snr.index_select(0, b.lower);
  const auto l1 = log_snr.index_select(0, b.upper);
  const auto between = torch::sigmoid(l0 + b.weight * (l1 - l0));
  return torch::where(b.weight == 0, alpha_bars.index_select(0, b.lower), between);
}

std::vector<std::int64_t> batch_shape(const torch::Tensor& t, const torch::Tensor& like) {
  std::vector<std::int64_t> shape(like.dim(), 1);
  shape[0] = t.size(0);
  return shape;
}

}  // namespace

torch::Tensor DiffusionProcess::alpha_bar_at(const torch::Tensor& t, const torch::Tensor& like) const {
  const auto b = bracket(t, timesteps(), device_);
  return interpolate_alpha_bar(b, log_snr_device_, alpha_bars_).view(batch_shape(t, like));
}

std::pair<torch::Tensor, torch::Tensor> DiffusionProcess::coefficients(const torch::Tensor& t,
                                                                       const torch::Tensor& like) const {
  if (!t.is_floating_point()) {
    return {gather(sqrt_alpha_bars_, t, like), gather(sqrt_one_minus_alpha_bars_, t, like)};
  }
  // At whole t the float64-derived tables, so fractional support changes no existing result.
  const auto b = bracket(t, timesteps(), device_);
  const auto abar = interpolate_alpha_bar(b, log_snr_device_, alpha_bars_);
  const auto whole = b.weight == 0;
  const auto shape = batch_shape(t, like);
  return {torch::where(whole, sqrt_alpha_bars_.index_select(0, b.lower), abar.sqrt()).view(shape),
          torch::where(whole, sqrt_one_minus_alpha_bars_.index_select(0, b.lower), (1.0 - abar).sqrt())
              .view(shape)};
}

torch::Tensor DiffusionProcess::gather(const torch::Tensor& table, const torch::Tensor& t,
                                       const torch::Tensor& like) {
  std::vector<std::int64_t> shape(like.dim(), 1);
  shape[0] = t.size(0);
  return table.index_select(0, t.to(table.device(), torch::kLong)).view(shape);
}

torch::Tensor DiffusionProcess::q_sample(const torch::Tensor& x0, const torch::Tensor& t,
                                         const torch::Tensor& noise) const {
  const auto [a, s] = coefficients(t, x0);
  return a * x0 + s * noise;
}

torch::Tensor DiffusionProcess::target(Prediction prediction, const torch::Tensor& x0,
                                       const torch::Tensor& noise, const torch::Tensor& t) const {
  switch (prediction) {
    case Prediction::epsilon: return noise;
    case Prediction::x0: return x0;
    case Prediction::v: {  // Salimans & Ho 2022: v = sqrt(abar) eps - sqrt(1 - abar) x0
      const auto [a, s] = coefficients(t, x0);
      return a * noise - s * x0;
    }
  }
  return noise;
}

torch::Tensor DiffusionProcess::to_epsilon(Prediction prediction, const torch::Tensor& output,
                                           const torch::Tensor& x_t, const torch::Tensor& t) const {
  const auto [a, s] = coefficients(t, x_t);
  switch (prediction) {
    case Prediction::epsilon: return output;
    case Prediction::x0: return (x_t - a * output) / s;
    case Prediction::v: return s * x_t + a * output;
  }
  return output;
}

torch::Tensor DiffusionProcess::to_x0(Prediction prediction, const torch::Tensor& output,
                                      const torch::Tensor& x_t, const torch::Tensor& t) const {
  const auto [a, s] = coefficients(t, x_t);
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
  auto output = model.forward(x_t, t.to(torch::kFloat32), cond);
  if (cond.labels.defined() && cond.guidance_scale != 1.0) {
    // Classifier-free guidance (Ho & Salimans 2022): extrapolate from the unconditional output.
    const auto unconditional = model.forward(x_t, t.to(torch::kFloat32), Conditioning{});
    output = unconditional + cond.guidance_scale * (output - unconditional);
  }
  const auto prediction = model.prediction();
  // Fractional t: the coefficients at t itself, not at a truncated index.
  const auto time = t.to(torch::kFloat32);
  return {process.to_epsilon(prediction, output, x_t, time), process.to_x0(prediction, output, x_t, time)};
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

torch::Tensor timestep_batch(const torch::Tensor& x, double t) {
  // One value viewed x.size(0) times (stride 0): a model may compute what depends on t once.
  return torch::full({1}, t, x.options().dtype(torch::kFloat32)).expand({x.size(0)});
}

Denoised denoise_at(const SamplingContext& ctx, const torch::Tensor& x, double t) {
  return denoise(ctx.model, ctx.process, x, timestep_batch(x, t), ctx.cond);
}

torch::Tensor timestep_embedding(const torch::Tensor& t, std::int64_t dim) {
  const std::int64_t half = dim / 2;
  const auto k = torch::arange(half, t.options().dtype(torch::kFloat32));
  const auto frequencies = torch::exp(k * (-std::log(10000.0) / static_cast<double>(half)));
  const auto angles = t.to(torch::kFloat32).reshape({-1, 1}) * frequencies.reshape({1, -1});
  return torch::cat({angles.sin(), angles.cos()}, 1);
}

}  // namespace difflab
