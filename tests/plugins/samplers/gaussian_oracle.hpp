#pragma once
// The exact denoiser of Gaussian data and the helpers the sampler tests share: samplers are
// checked against mathematics (closed forms of Gaussian data), not against each other.
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "difflab/plugin.hpp"
#include "support.hpp"

namespace difflab::test {

/// The exact denoiser for data N(mean, s^2 I), s = 0 being the single point `mean`. From
/// x_t = sqrt(a) x0 + sqrt(1 - a) eps (a = abar_t, at fractional t as the process interpolates):
///   E[x0 | x_t] = mean + sqrt(a) s^2 (x_t - sqrt(a) mean) / (a s^2 + 1 - a),
///   E[eps | x_t] = sqrt(1 - a) (x_t - sqrt(a) mean) / (a s^2 + 1 - a),
/// both finite at a = 0 (a zero terminal SNR). It answers in the form `prediction` and records
/// the timestep of each call (every row of a call shares one timestep).
class GaussianOracle final : public Denoiser {
 public:
  GaussianOracle(const DiffusionProcess& process, std::vector<double> mean, double std,
                 Prediction prediction = Prediction::epsilon)
      : process_(process), mean_(torch::tensor(mean, torch::kFloat64)), variance_(std * std),
        prediction_(prediction) {}

  torch::Tensor forward(const torch::Tensor& x_t, const torch::Tensor& t, const Conditioning&) override {
    const double time = t[0].item<double>();
    seen.push_back(time);
    const double a = process_.alpha_bar_at(time);
    const auto x = x_t.to(torch::kFloat64);
    const auto centred = (x - std::sqrt(a) * mean_) / (a * variance_ + 1 - a);
    const auto eps = std::sqrt(1 - a) * centred;
    const auto x0 = mean_ + std::sqrt(a) * variance_ * centred;
    switch (prediction_) {
      case Prediction::epsilon: return eps.to(x_t.dtype());
      case Prediction::x0: return x0.to(x_t.dtype());
      case Prediction::v: return (std::sqrt(a) * eps - std::sqrt(1 - a) * x0).to(x_t.dtype());
    }
    return eps;
  }
  Prediction prediction() const override { return prediction_; }

  /// Where the probability-flow ODE takes x from timestep `from` to timestep `to` (-1: the data).
  /// In y = x / sqrt(abar), dy/dsigma = (y - mean) sigma / (s^2 + sigma^2), so y - mean scales
  /// with sqrt(s^2 + sigma^2); in x: x_to = sqrt(a_to) mean + (x - sqrt(a) mean) sqrt(a_to s^2 +
  /// 1 - a_to) / sqrt(a s^2 + 1 - a). Float64.
  torch::Tensor ode_solution(const torch::Tensor& x, double from, double to = -1) const {
    const double a = process_.alpha_bar_at(from);
    const double a_to = to < 0 ? 1.0 : process_.alpha_bar_at(to);
    const auto x64 = x.to(torch::kFloat64);
    return std::sqrt(a_to) * mean_ + (x64 - std::sqrt(a) * mean_) * std::sqrt(a_to * variance_ + 1 - a_to) /
                                         std::sqrt(a * variance_ + 1 - a);
  }

  std::vector<double> seen;  // timestep of each call, in order

 private:
  const DiffusionProcess& process_;
  torch::Tensor mean_;
  double variance_;
  Prediction prediction_;
};

inline std::shared_ptr<Sampler> make_sampler(const std::string& name,
                                             std::map<std::string, OptionValue> given = {}) {
  auto& registry = plugins();
  const auto& entry = registry.get(PluginKind::sampler, name);
  return registry.make_sampler(name, resolve_options(entry.info.options, std::move(given), name));
}

/// A process from a real schedule plugin with the given options, rescaled to a zero terminal
/// SNR when asked.
inline DiffusionProcess schedule_process(const std::string& name, std::map<std::string, OptionValue> given = {},
                                         bool zero_terminal_snr = false) {
  auto& registry = plugins();
  const auto& entry = registry.get(PluginKind::schedule, name);
  const auto betas = registry.make_schedule(name, resolve_options(entry.info.options, std::move(given)))->betas();
  return DiffusionProcess(zero_terminal_snr ? rescale_zero_terminal_snr(betas) : betas, torch::kCPU);
}

inline DiffusionProcess linear_process(std::int64_t timesteps, double beta_end) {
  return schedule_process("linear", {{"timesteps", timesteps}, {"beta_start", 1e-4}, {"beta_end", beta_end}});
}

inline torch::Tensor standard_noise(std::int64_t n, std::int64_t dim, std::uint64_t seed) {
  return torch::randn({n, dim}, at::detail::createCPUGenerator(seed));
}

inline torch::Tensor run(const Sampler& sampler, Denoiser& model, const DiffusionProcess& process,
                         const torch::Tensor& x_T, std::uint64_t seed, StepCallback on_step = {}) {
  SingleThread single_thread;
  torch::NoGradGuard no_grad;
  SamplingContext ctx{model, process, at::detail::createCPUGenerator(seed), {}, std::move(on_step)};
  return sampler.sample(ctx, x_T);
}

struct SamplerCase {
  std::string name;
  std::map<std::string, OptionValue> options;

  std::string describe() const {
    std::string out = name;
    for (const auto& [key, value] : options) out += " " + key + "=" + format_option(value);
    return out;
  }
};

}  // namespace difflab::test
