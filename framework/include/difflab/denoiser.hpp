#pragma once
// The network a diffusion model trains: maps (x_t, t, conditioning) to its prediction.
#include "difflab/export.hpp"
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace difflab {

/// What the network outputs; samplers and losses convert between them via DiffusionProcess.
enum class Prediction { epsilon, x0, v };

DIFFLAB_API Prediction parse_prediction(const std::string& name);  // "epsilon" | "x0" | "v"
DIFFLAB_API const char* prediction_name(Prediction prediction);

/// Sinusoidal features of timesteps (Vaswani et al. 2017, sec. 3.5, as Ho et al. 2020 use them):
/// [sin(t w_k), cos(t w_k)] with w_k = 10000^(-k / half), k = 0..half-1, half = dim / 2; [B, 2 half].
DIFFLAB_API torch::Tensor timestep_embedding(const torch::Tensor& t, std::int64_t dim);

/// Optional conditioning; an undefined `labels` tensor means unconditional.
struct Conditioning {
  torch::Tensor labels;         // int64 [B] class labels
  double guidance_scale = 1.0;  // classifier-free guidance weight (1: plain conditional)
};

class BatchedDenoiser;

/// A denoising network. `t` holds timestep indices 0..T-1 as a float tensor [B] (fractional
/// values are allowed for samplers that work in continuous time).
class DIFFLAB_API Denoiser : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x_t, const torch::Tensor& t,
                                const Conditioning& cond) = 0;
  virtual Prediction prediction() const { return Prediction::epsilon; }

  /// Why this model cannot train stacked with others of its exact options as a BatchedDenoiser
  /// (`runner sweep --batch-grid`), or "" when make_batched() serves it; "" also promises
  /// epsilon prediction and no use of labels (the batched step fits the noise, unconditioned).
  /// A phrase that follows the plugin's name: "mlp" + " with residual blocks has no batched
  /// form". The default, for models without a batched form: "has no batched form".
  virtual std::string batching_obstacle() const;

  /// The K = members.size() models as one BatchedDenoiser. Called only when batching_obstacle()
  /// is "", on one of `members`, all made by this plugin with this model's options (their
  /// weights differ). The batched form reads the members' weights at this call; it must not
  /// outlive them (they hold the plugin library). Throws RunError when it cannot stack them;
  /// the default always does.
  virtual std::unique_ptr<BatchedDenoiser> make_batched(
      const std::vector<Denoiser*>& members) const;
};

/// K denoisers of one config trained as one (batched grid training): each parameter stacked
/// along a new first dimension [K, ...], so one step trains all K with batched matrix products.
/// A plugin must make training it equal to training the K members apart: forward() does, for
/// each k, member k's arithmetic (the same operations, batched, so equal up to
/// floating-point rounding), draws no random numbers, and mixes no members, so member k's
/// gradient is its own. The engine draws each member's data, timesteps and noise from that
/// member's generator, and keeps per-member Adam moments and gradient clipping.
class DIFFLAB_API BatchedDenoiser {
 public:
  virtual ~BatchedDenoiser();

  /// x_t [K, B, ...] (x_t[k]: a batch as member k's forward takes it), t [K, B] float timesteps
  /// -> [K, B, ...] of x_t's shape: out[k] is member k's forward(x_t[k], t[k], {}).
  virtual torch::Tensor forward(const torch::Tensor& x_t, const torch::Tensor& t) = 0;

  /// The stacked leaf tensors (requires_grad) an optimizer updates: the i-th is [K, ...], its
  /// slice k member k's parameters()[i], in the order of Denoiser::parameters() (the engine
  /// slices Adam's moments by that order into each member's checkpoint).
  virtual std::vector<torch::Tensor> parameters() const = 0;

  /// Copies member k's slices of parameters() into `member` (one of the models it was made of,
  /// or another made with the same options), without recording gradients.
  virtual void unstack_into(std::int64_t k, Denoiser& member) const = 0;

  /// K, the number of members.
  virtual std::int64_t size() const = 0;
};

}  // namespace difflab
