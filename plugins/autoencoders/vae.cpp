// vae: the convolutional variational autoencoder of latent diffusion (Kingma & Welling 2014;
// Rombach et al. 2022, sec. 3.1, without the adversarial and perceptual losses): an encoder of
// residual blocks and stride-2 convolutions to a diagonal Gaussian q(z|x), and a mirrored decoder
// with nearest-neighbour upsampling. Each entry of channel_mult is one level that halves the
// resolution, so 1x32x32 MNIST with the defaults becomes a 2x4x4 latent.
#include <cstdint>
#include <string>
#include <vector>

#include "difflab/errors.hpp"
#include "difflab/plugin.hpp"

namespace {
using namespace difflab;

torch::nn::Conv2d conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2));
}

// GroupNorm with the largest group count up to 8 that divides the channels.
torch::nn::GroupNorm norm(std::int64_t channels) {
  std::int64_t groups = 8;
  while (channels % groups != 0) --groups;
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels));
}

// x + conv(SiLU(GN(conv(SiLU(GN(x)))))); a 1x1 conv carries x across a change of channels.
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(std::int64_t in, std::int64_t out)
      : norm1_(register_module("norm1", norm(in))),
        conv1_(register_module("conv1", conv(in, out, 3))),
        norm2_(register_module("norm2", norm(out))),
        conv2_(register_module("conv2", conv(out, out, 3))) {
    if (in != out) skip_ = register_module("skip", conv(in, out, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto h = conv2_(torch::silu(norm2_(conv1_(torch::silu(norm1_(x))))));
    return (skip_.is_empty() ? x : skip_(x)) + h;
  }

 private:
  torch::nn::GroupNorm norm1_;
  torch::nn::Conv2d conv1_;
  torch::nn::GroupNorm norm2_;
  torch::nn::Conv2d conv2_, skip_{nullptr};
};
TORCH_MODULE(Block);

class Vae final : public Autoencoder {
 public:
  explicit Vae(const Options& o)
      : in_channels_(o.integer("in_channels")),
        latent_channels_(o.integer("latent_channels")),
        blocks_(o.integer("blocks_per_level")) {
    const auto base = o.integer("base_channels");
    for (const auto m : o.integer_list("channel_mult")) channels_.push_back(base * m);
    if (channels_.empty()) throw InputError("vae: channel_mult needs at least one level");
    auto encoder = torch::nn::Sequential();
    encoder->push_back(conv(in_channels_, channels_.front(), 3));
    std::int64_t ch = channels_.front();
    for (const auto c : channels_) {  // each level: blocks, then halve the resolution
      for (std::int64_t b = 0; b < blocks_; ++b, ch = c) encoder->push_back(Block(ch, c));
      encoder->push_back(conv(c, c, 3, 2));
    }
    encoder->push_back(Block(ch, ch));
    encoder->push_back(norm(ch));
    encoder->push_back(torch::nn::SiLU());
    encoder->push_back(conv(ch, 2 * latent_channels_, 3));  // mean and log-variance
    encoder_ = register_module("encoder", encoder);

    auto decoder = torch::nn::Sequential();
    decoder->push_back(conv(latent_channels_, ch, 3));
    decoder->push_back(Block(ch, ch));
    for (auto it = channels_.rbegin(); it != channels_.rend(); ++it) {  // mirror: double, then blocks
      decoder->push_back(torch::nn::Upsample(
          torch::nn::UpsampleOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest)));
      decoder->push_back(conv(ch, *it, 3));
      ch = *it;
      for (std::int64_t b = 0; b < blocks_; ++b) decoder->push_back(Block(ch, ch));
    }
    decoder->push_back(norm(ch));
    decoder->push_back(torch::nn::SiLU());
    decoder->push_back(conv(ch, in_channels_, 3));
    decoder_ = register_module("decoder", decoder);
  }

  LatentDistribution encode(const torch::Tensor& x) override {
    check_input(x.sizes().vec());
    const auto h = encoder_->forward(x);
    auto parts = h.chunk(2, 1);
    // Clamped as Rombach et al.'s DiagonalGaussianDistribution, so exp(logvar) stays finite.
    return {parts[0], parts[1].clamp(-30.0, 20.0)};
  }

  torch::Tensor decode(const torch::Tensor& z) override {
    if (z.dim() != 4 || z.size(1) != latent_channels_) {
      throw InputError("vae: decode takes latents [B, " + std::to_string(latent_channels_) +
                       ", H, W], got " + c10::str(z.sizes()));
    }
    return decoder_->forward(z);
  }

  std::vector<std::int64_t> latent_shape(const std::vector<std::int64_t>& input) const override {
    std::vector<std::int64_t> batch{1};
    batch.insert(batch.end(), input.begin(), input.end());
    check_input(batch);
    const auto factor = std::int64_t{1} << channels_.size();
    return {latent_channels_, input[1] / factor, input[2] / factor};
  }

 private:
  void check_input(const std::vector<std::int64_t>& shape) const {
    const auto factor = std::int64_t{1} << channels_.size();
    if (shape.size() != 4 || shape[1] != in_channels_) {
      throw InputError("vae: takes images [B, " + std::to_string(in_channels_) + ", H, W] (in_channels " +
                       std::to_string(in_channels_) + "), got " + c10::str(at::IntArrayRef(shape)));
    }
    if (shape[2] % factor != 0 || shape[3] % factor != 0) {
      throw InputError("vae: an image of " + std::to_string(shape[2]) + "x" + std::to_string(shape[3]) +
                       " pixels cannot be halved " + std::to_string(channels_.size()) +
                       " times (one per channel_mult entry); use a size divisible by " + std::to_string(factor));
    }
  }

  std::int64_t in_channels_, latent_channels_, blocks_;
  std::vector<std::int64_t> channels_;
  torch::nn::Sequential encoder_{nullptr}, decoder_{nullptr};
};

}  // namespace

DIFFLAB_PLUGIN(registrar) {
  registrar.add_autoencoder(
      {"vae",
       "1.0.0",
       "convolutional VAE: residual blocks and stride-2 convolutions to a diagonal Gaussian latent, "
       "and a mirrored decoder (defaults: 1x32x32 to 2x4x4, as the latent-diffusion MNIST study)",
       {OptionSpec::integer("in_channels", 1, "image channels (1: MNIST, Fashion-MNIST)").at_least(1),
        OptionSpec::integer("base_channels", 64, "channels of the first level").at_least(1),
        OptionSpec::integer_list("channel_mult", {1, 2, 2},
                                 "channels of each level as multiples of base_channels; every level "
                                 "halves the resolution, so n entries make the latent 2^n times smaller")
            .at_least(1),
        OptionSpec::integer("blocks_per_level", 1, "residual blocks per level").at_least(1),
        OptionSpec::integer("latent_channels", 2, "channels of the latent").at_least(1)}},
      [](const Options& o) { return std::make_unique<Vae>(o); });
}
