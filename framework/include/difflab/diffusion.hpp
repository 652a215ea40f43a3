#pragma once
// The forward process q(x_t | x_0) of a discrete-time diffusion and its closed-form tables,
// shared by losses, samplers and metrics so each plugin need not recompute them.
#include "difflab/export.hpp"
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "difflab/denoiser.hpp"

namespace difflab {

/// Tables derived from beta_1..beta_T (Ho et al. 2020, eqs. 4, 6, 7); index i holds timestep i+1.
///
/// Continuous time: a timestep t is a real number in [0, T-1] (the table index); between two
/// entries the log-SNR log(abar / (1 - abar)) is linear in t, so every quantity below is defined
/// at fractional t and equals the table at whole t. Three ways to name a noise level:
///   t       the timestep index (what the model is given);
///   sigma   Karras et al. 2022's sigma = sqrt((1 - abar) / abar), x / sqrt(abar) = x0 + sigma eps;
///   lambda  Lu et al. 2022's half log-SNR lambda = log(sqrt(abar) / sqrt(1 - abar)) = -log sigma.
/// A zero terminal SNR (abar at T-1 exactly 0, Lin et al. 2024) gives sigma = inf and
/// lambda = -inf there; fractional t in the last interval then also has abar = 0.
class DIFFLAB_API DiffusionProcess {
 public:
  /// `betas` is a float64 vector of length T with every value in (0, 1), except that the last
  /// may be exactly 1 (a zero terminal SNR, see rescale_zero_terminal_snr).
  DiffusionProcess(torch::Tensor betas, torch::Device device);

  std::int64_t timesteps() const { return betas_f64_.size(0); }
  torch::Device device() const { return device_; }

  // float64 on the CPU, for closed-form checks and reporting.
  const torch::Tensor& betas_f64() const { return betas_f64_; }
  const torch::Tensor& alpha_bars_f64() const { return alpha_bars_f64_; }

  // float32 on the device, length T.
  const torch::Tensor& betas() const { return betas_; }
  const torch::Tensor& alphas() const { return alphas_; }
  const torch::Tensor& alpha_bars() const { return alpha_bars_; }
  const torch::Tensor& alpha_bars_prev() const { return alpha_bars_prev_; }  // 1 at t=1
  const torch::Tensor& sqrt_alpha_bars() const { return sqrt_alpha_bars_; }
  const torch::Tensor& sqrt_one_minus_alpha_bars() const { return sqrt_one_minus_alpha_bars_; }
  const torch::Tensor& posterior_variance() const { return posterior_variance_; }  // beta tilde, eq. 7
  const torch::Tensor& posterior_mean_coef_x0() const { return posterior_mean_coef_x0_; }
  const torch::Tensor& posterior_mean_coef_xt() const { return posterior_mean_coef_xt_; }
  /// Karras et al. 2022 noise level sigma_t = sqrt((1 - abar_t) / abar_t).
  const torch::Tensor& sigmas() const { return sigmas_; }

  /// table[t] reshaped to broadcast against a batch shaped like `like`; t is an int64 index tensor.
  static torch::Tensor gather(const torch::Tensor& table, const torch::Tensor& t,
                              const torch::Tensor& like);

  // Continuous time, in float64 on the host (for a sampler's step sizes). t is clamped to [0, T-1].
  double alpha_bar_at(double t) const;
  double sigma_at(double t) const;   // Karras sigma; inf where abar = 0
  double lambda_at(double t) const;  // -log sigma; -inf where abar = 0
  /// The timestep whose sigma (lambda) is the given one, clamped to [0, T-1]; inverse of sigma_at.
  double t_from_sigma(double sigma) const;
  double t_from_lambda(double lambda) const;
  /// abar at T-1 is exactly 0 (the schedule was rescaled to a zero terminal SNR).
  bool zero_terminal_snr() const { return zero_terminal_snr_; }

  /// abar at the float timesteps `t` [B] (fractional allowed), float32 on t's device, shaped to
  /// broadcast against `like`; equals the table at whole t. No host synchronisation.
  torch::Tensor alpha_bar_at(const torch::Tensor& t, const torch::Tensor& like) const;

  // The methods below take t as a tensor [B]: int64 indices, or float timesteps (fractional
  // allowed, interpolated as alpha_bar_at does).

  /// x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Ho et al. 2020, eq. 4).
  torch::Tensor q_sample(const torch::Tensor& x0, const torch::Tensor& t,
                         const torch::Tensor& noise) const;

  /// What a model of the given prediction type should output for (x0, noise, t).
  torch::Tensor target(Prediction prediction, const torch::Tensor& x0, const torch::Tensor& noise,
                       const torch::Tensor& t) const;

  /// Converts a model output to epsilon and to x0 (v: Salimans & Ho 2022, eq. 2).
  torch::Tensor to_epsilon(Prediction prediction, const torch::Tensor& output,
                           const torch::Tensor& x_t, const torch::Tensor& t) const;
  torch::Tensor to_x0(Prediction prediction, const torch::Tensor& output, const torch::Tensor& x_t,
                      const torch::Tensor& t) const;

  /// Mean of q(x_{t-1} | x_t, x_0) (Ho et al. 2020, eq. 7); t must be whole.
  torch::Tensor posterior_mean(const torch::Tensor& x0, const torch::Tensor& x_t,
                               const torch::Tensor& t) const;

 private:
  // sqrt(abar) and sqrt(1 - abar) at t, shaped like `like`: the table for int64 t, else interpolated.
  std::pair<torch::Tensor, torch::Tensor> coefficients(const torch::Tensor& t, const torch::Tensor& like) const;

  torch::Device device_;
  bool zero_terminal_snr_ = false;
  torch::Tensor betas_f64_, alpha_bars_f64_;
  std::vector<double> log_snr_;  // log(abar / (1 - abar)) per timestep, float64; -inf where abar = 0
  torch::Tensor log_snr_device_;  // the same, float32 on the device
  torch::Tensor betas_, alphas_, alpha_bars_, alpha_bars_prev_, sqrt_alpha_bars_,
      sqrt_one_minus_alpha_bars_, posterior_variance_, posterior_mean_coef_x0_,
      posterior_mean_coef_xt_, sigmas_;
};

/// Epsilon and x0 predicted by `model` at (x_t, t), whatever the model outputs natively; `t` is a
/// float tensor [B] of timesteps, fractional allowed (the process interpolates its coefficients).
struct DIFFLAB_API Denoised {
  torch::Tensor epsilon;
  torch::Tensor x0;
};
DIFFLAB_API Denoised denoise(Denoiser& model, const DiffusionProcess& process, const torch::Tensor& x_t,
                 const torch::Tensor& t, const Conditioning& cond = {});

}  // namespace difflab
